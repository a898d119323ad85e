"""Host-side data for task4: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task4")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    w_true = np.random.default_rng([seed, 0]).standard_normal((16, 6)) * 0.5
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 16))
    y = x @ w_true + 0.3 * rng.standard_normal((n, 6)) > 1.0
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """1000 documents (N, 16) float32 and their multi-hot tags (N, 6) int64."""
    x, y = _draw(seed, 1, 1000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, 16); labels the (N, 6) multi-hot tag matrix."""
    return _draw(seed, 2, 3000)
