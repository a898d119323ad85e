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
    """1500 labelled rows (N, 20) float32, classes (N,) int64 (the script splits off its own
    validation set)."""
    x, y = _draw(seed, 1, 1500)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
