"""Host-side held-out data for task2 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 5_118_903


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py: inputs (N, 2), labels (N, 1)."""
    rng = np.random.default_rng(seed)
    x = ((rng.random((3000, 2)) * 2 - 1) * 6).astype(np.float32)
    y = (x[:, 1] + 0.3 * rng.standard_normal(3000) > 2.5 * np.sin(x[:, 0])).astype(np.int64)
    return x, y[:, None]
