"""Host-side data for task1: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode); the script gets ``training_data`` through
``whip_data.load_training_data("task1")``; ``heldout`` comes from the same hidden world.
"""

import numpy as np

# Enough sensors that a random initial weight vector is far from the hidden rule in every world
# (with 4, an untrained model sometimes already scored most of the held-out metric).
N_SENSORS = 8


def _world(seed: int) -> tuple[np.ndarray, float]:
    """The hidden rule: a weight per sensor (sign and size) and a decision threshold."""
    rng = np.random.default_rng([seed, 0])
    w = rng.choice([-1.0, 1.0], N_SENSORS) * rng.uniform(0.5, 2.0, N_SENSORS)
    w *= 2.74 / np.linalg.norm(w)  # the same signal-to-noise ratio in every world
    return w, float(rng.choice([-1.0, 1.0]) * rng.uniform(5.0, 12.0))


def _draw(seed: int, stream: int, n: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    w, threshold = _world(seed)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, N_SENSORS)) * params["scale"]
    y = x @ w + 6.0 * rng.standard_normal(n) > threshold
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """400 readings (N, N_SENSORS) float32 and their labels (N,) int64."""
    x, y = _draw(seed, 1, 400, params)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """2000 fresh readings from the same hidden world, and their class indices."""
    return _draw(seed, 2, 2000, params)
