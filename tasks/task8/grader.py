"""Host-side held-out data for task8 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 8_663_104

STORE_EFFECT = np.array([-0.3, -0.1, 0.0, 0.1, 0.2, 0.4])


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh rows [store id, 3 signals] as float32 (the store id is a whole number) and the
    real-valued demand they produce, from the same process as the script."""
    rng = np.random.default_rng(seed)
    n = 3000
    store = rng.integers(0, len(STORE_EFFECT), n)
    signals = rng.normal(0.0, 0.5, (n, 3))
    demand = (STORE_EFFECT[store] + np.sin(3 * signals[:, 0]) * 0.6 + signals[:, 1] * signals[:, 2]
              + 0.5 * signals[:, 2] + 0.05 * rng.standard_normal(n))
    x = np.column_stack([store, signals]).astype(np.float32)
    return x, demand.astype(np.float64)
