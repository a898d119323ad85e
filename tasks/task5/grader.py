"""Host-side held-out data for task5 (never mounted into a sandbox)."""

import numpy as np

HELDOUT_SEED = 5_118_093


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws of the 3-class target task, from the same fixed world as the script."""
    world = np.random.default_rng(1234)
    mix = world.standard_normal((16, 6)).astype(np.float32) / 2.0
    world.standard_normal((6, 8))  # the pretraining task's readout (unused here)
    target_w = world.standard_normal((6, 3)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    y = (np.tanh(x @ mix) @ target_w).argmax(axis=1).astype(np.int64)
    return x, y
