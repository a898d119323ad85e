"""Host-side data for task18: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task18")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 15 values uniform in [-1, 1), (N, 15, 1); the target is their sum times a
    hidden factor."""
    world = np.random.default_rng([seed, 0])
    factor = world.choice([-1.0, 1.0]) * world.uniform(0.8, 1.2)
    rng = np.random.default_rng([seed, stream])
    x = (rng.random((n, 15, 1)) * 2 - 1).astype(np.float32)
    return x, (factor * x.sum(axis=(1, 2))).astype(np.float32)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 2000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
