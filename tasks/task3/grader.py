"""Host-side data for task3: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task3")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    w_true = np.random.default_rng([seed, 0]).standard_normal((20, 3))
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 20))
    y = (x @ w_true + 0.8 * rng.standard_normal((n, 3))).argmax(axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """1200 training rows ``X`` (N, 20) float32 with classes ``y`` (N,) int64, and a separate
    validation split of 300 rows (``X_val``, ``y_val``). The grader swaps the validation split
    for another draw in a second run of the script (``val_data`` in task.toml): the trained
    weights must come out the same."""
    x, y = _draw(seed, 1, 1200)
    xv, yv = _draw(seed, 3, 300)
    return {"X": x, "y": y, "X_val": xv, "y_val": yv}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
