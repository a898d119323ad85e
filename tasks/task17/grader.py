"""Host-side data for task17: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task17")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """6 user and 6 item features; clicked when a hidden mix of both groups is positive."""
    world = np.random.default_rng([seed, 0])
    u0, u1, u2 = world.permutation(6)[:3]
    i0, i1, i2 = world.permutation(6)[:3] + 6
    bias = world.uniform(0.6, 1.0)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 12))
    score = (x[:, u0] * x[:, u1] + np.sin(2 * x[:, u2]) + x[:, i0] * x[:, i1]
             - np.abs(x[:, i2]) + bias)
    return x.astype(np.float32), (score > 0).astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 4000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
