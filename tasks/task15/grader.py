"""Host-side data for task15: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task15")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three concentric rings around a hidden centre, with a hidden scale."""
    world = np.random.default_rng([seed, 0])
    centre, scale = world.uniform(-0.25, 0.25, 2), world.uniform(0.85, 1.15)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 2)) * scale + centre
    r2 = (((x - centre) / scale) ** 2).sum(axis=1)
    y = (r2 > 0.811).astype(np.int64) + (r2 > 2.197).astype(np.int64)
    return x.astype(np.float32), y


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 1000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
