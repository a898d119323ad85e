"""Host-side data for task16: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task16")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """8 features; y = sin(f x_a) + s x_b x_c + l x_d + noise, features and numbers hidden."""
    world = np.random.default_rng([seed, 0])
    a, b, c, d = world.permutation(8)[:4]
    f, s, lin = world.uniform(1.6, 2.4), world.choice([-1.0, 1.0]), world.uniform(0.3, 0.7)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 8))
    y = np.sin(f * x[:, a]) + s * x[:, b] * x[:, c] + lin * x[:, d] + 0.1 * rng.standard_normal(n)
    return x.astype(np.float32), y.astype(np.float32)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 1024)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000)
