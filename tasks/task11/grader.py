"""Host-side data for task11: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task11")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in [-2, 2]^2; class = inside a hidden disc + the sign of x*y in a hidden frame."""
    world = np.random.default_rng([seed, 0])
    r2, angle = world.uniform(1.2, 1.8), world.uniform(0.0, np.pi / 2)
    rng = np.random.default_rng([seed, stream])
    x = rng.random((n, 2)) * 4 - 2
    u = x @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    y = ((x ** 2).sum(axis=1) < r2).astype(np.int64) + (u[:, 0] * u[:, 1] > 0).astype(np.int64)
    return x.astype(np.float32), y


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 1000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 2000)
