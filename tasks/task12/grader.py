"""Host-side data for task12: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task12")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """10 gestures, 20 channels: gesture k shows up on one channel (which one is hidden)."""
    world = np.random.default_rng([seed, 0])
    channels = world.permutation(20)[:10]
    strength = world.uniform(3.2, 3.8, 10)
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, 10, n)
    x = rng.standard_normal((n, 20))
    x[np.arange(n), channels[labels]] += strength[labels]
    return x.astype(np.float32), labels.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 2000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 2000)
