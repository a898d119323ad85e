"""Host-side held-out data for task12 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 8_064_557


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py (the same for every variant):
    class k has mean 3.5 on feature k, unit Gaussian noise on all 20 features."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 2000).astype(np.int64)
    x = 3.5 * np.eye(20)[:10][labels] + rng.standard_normal((2000, 20))
    return x.astype(np.float32), labels
