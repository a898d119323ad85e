"""Host-side held-out data for task16 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 8_831_406


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution (clean inputs, noisy target as in training):
    8 standard-normal features, y = sin(2 x0) + x1 x2 + 0.5 x3 + 0.1 noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    y = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.5 * x[:, 3] + 0.1 * rng.standard_normal(3000)
    return x, y.astype(np.float32)
