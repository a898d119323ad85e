"""Host-side data for task2: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task2")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    world = np.random.default_rng([seed, 0])
    amp, freq = world.uniform(2.0, 3.0), world.uniform(0.8, 1.25)
    phase, offset = world.uniform(0.0, 2 * np.pi), world.uniform(-1.0, 1.0)
    rng = np.random.default_rng([seed, stream])
    x = (rng.random((n, 2)) * 2 - 1) * 6
    y = x[:, 1] + 0.3 * rng.standard_normal(n) > amp * np.sin(freq * x[:, 0] + phase) + offset
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """800 points (N, 2) float32 in -6..6 and their labels (N,) int64."""
    x, y = _draw(seed, 1, 800)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, 2); labels (N, 1): one binary label per sample, scored as multi-label F1."""
    x, y = _draw(seed, 2, 3000)
    return x, y[:, None]
