"""Host-side held-out data for task15 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 2_604_517


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution: 2-D standard normal points, class = which
    of three concentric rings (squared radius split at 0.811 and 2.197) they fall in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 2)).astype(np.float32)
    r2 = (x.astype(np.float64) ** 2).sum(axis=1)
    y = ((r2 > 0.811).astype(np.int64) + (r2 > 2.197).astype(np.int64))
    return x, y
