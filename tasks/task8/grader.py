"""Host-side data for task8: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task8")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [store id, 3 signals] float32 (the store id is a whole number), real demand."""
    world = np.random.default_rng([seed, 0])
    store_effect = world.uniform(-0.4, 0.4, 6)
    amp, freq = world.uniform(0.45, 0.75), world.uniform(2.5, 3.5)
    cross, lin = world.choice([-1.0, 1.0]), world.uniform(0.3, 0.7)
    rng = np.random.default_rng([seed, stream])
    store = rng.integers(0, 6, n)
    s = rng.normal(0.0, 0.5, (n, 3))
    demand = (store_effect[store] + amp * np.sin(freq * s[:, 0]) + cross * s[:, 1] * s[:, 2]
              + lin * s[:, 2] + 0.05 * rng.standard_normal(n))
    return np.column_stack([store, s]).astype(np.float32), demand


def training_data(seed: int, params: dict) -> dict:
    """1000 rows (N, 4) float32 and their demand (N,) float64."""
    x, y = _draw(seed, 1, 1000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
