"""Host-side held-out data for task18 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 9_027_733


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution: sequences of 15 values uniform in [-1, 1),
    shaped (N, 15, 1); the target is their sum."""
    rng = np.random.default_rng(seed)
    x = (rng.random((3000, 15, 1)) * 2 - 1).astype(np.float32)
    return x, x.sum(axis=(1, 2)).astype(np.float32)
