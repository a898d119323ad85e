"""Host-side held-out data for task9 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 9_402_517


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh XOR draws: uniform on [-2, 2]^2, label 1 when exactly one coordinate is positive."""
    rng = np.random.default_rng(seed)
    x = (rng.random((3000, 2)) * 4 - 2).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    return x, y
