"""Host-side held-out data for task11 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 2_907_311


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py (the same for every variant)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((2000, 2)) * 4 - 2).astype(np.float32)
    inside = (x[:, 0] ** 2 + x[:, 1] ** 2) < 1.5
    same_sign = (x[:, 0] * x[:, 1]) > 0
    return x, inside.astype(np.int64) + same_sign.astype(np.int64)
