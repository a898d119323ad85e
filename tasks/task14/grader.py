"""Host-side data for task14: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task14")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """30 features; the class is the argmax of 3 hidden features plus a hidden mix of 3 more."""
    world = np.random.default_rng([seed, 0])
    cols = world.permutation(30)[:6]
    mix = world.uniform(0.3, 0.7)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 30)).astype(np.float32)
    y = (x[:, cols[:3]] + mix * x[:, cols[3:]]).argmax(axis=1)
    return x, y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 1200)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
