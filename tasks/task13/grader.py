"""Host-side held-out data for task13 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 4_470_129


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py (the same for every variant)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2000, 4))
    y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + x[:, 2] + 0.1 * rng.standard_normal(2000)
    return x.astype(np.float32), y.astype(np.float64)
