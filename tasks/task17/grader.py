"""Host-side held-out data for task17 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 4_470_359


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution: 12 standard-normal features (6 user, 6 item),
    clicked when u0*u1 + sin(2*u2) + i0*i1 - |i2| + 0.8 > 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 12)).astype(np.float32)
    u, i = x[:, :6], x[:, 6:]
    score = u[:, 0] * u[:, 1] + np.sin(2 * u[:, 2]) + i[:, 0] * i[:, 1] - np.abs(i[:, 2]) + 0.8
    return x, (score > 0).astype(np.int64)
