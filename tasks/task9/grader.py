"""Host-side data for task9: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task9")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR in a hidden frame: rotated by an angle and shifted a little."""
    world = np.random.default_rng([seed, 0])
    angle, shift = world.uniform(0.0, np.pi / 2), world.uniform(-0.3, 0.3, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rng = np.random.default_rng([seed, stream])
    x = rng.random((n, 2)) * 4 - 2
    u = (x - shift) @ rot
    y = (u[:, 0] > 0) ^ (u[:, 1] > 0)
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 600)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
