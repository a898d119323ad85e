"""Host-side held-out data for task1 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 7_340_221


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py (for the variant's scale)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2000, 4)).astype(np.float32) * params["scale"]
    true_w = np.array([1.0, -2.0, 0.5, 1.5], dtype=np.float32)
    y = (x @ true_w + 6.0 * rng.standard_normal(2000) > 10.0).astype(np.int64)
    return x, y
