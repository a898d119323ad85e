"""Host-side data for task7: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task7")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 12, 12, 3) float32, channels-last, with a coloured 3x3 patch; the colour of
    each class is hidden."""
    world = np.random.default_rng([seed, 0])
    colors = np.full((3, 3), 0.2) + 0.8 * np.eye(3)[world.permutation(3)]
    colors += world.uniform(-0.1, 0.1, (3, 3))
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, 3, n)
    images = 0.2 * rng.standard_normal((n, 12, 12, 3))
    for i, k in enumerate(labels):
        r, col = rng.integers(0, 10, 2)
        images[i, r:r + 3, col:col + 3, :] += colors[k] * rng.uniform(0.7, 1.3)
    return images.astype(np.float32), labels.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 600)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh images in the stored layout (N, 12, 12, 3) float32, and their class indices."""
    return _draw(seed, 2, 2000)
