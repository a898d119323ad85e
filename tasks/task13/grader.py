"""Host-side data for task13: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task13")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """y = a sin(f x_i) + b x_j^2 + c x_k + noise, with hidden a, f, b, c and features i, j, k."""
    world = np.random.default_rng([seed, 0])
    i, j, k = world.permutation(4)[:3]
    a, f = world.uniform(0.8, 1.2), world.uniform(1.6, 2.4)
    b, c = world.uniform(0.4, 0.6), world.choice([-1.0, 1.0]) * world.uniform(0.8, 1.2)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 4))
    y = a * np.sin(f * x[:, i]) + b * x[:, j] ** 2 + c * x[:, k] + 0.1 * rng.standard_normal(n)
    return x.astype(np.float32), y.astype(np.float32)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 1000)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    x, y = _draw(seed, 2, 2000)
    return x, y.astype(np.float64)
