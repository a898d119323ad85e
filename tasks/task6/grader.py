"""Host-side data for task6: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task6")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np

BAR = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]])
SHAPES = [BAR, BAR.T, np.eye(3), np.fliplr(np.eye(3))]


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 8, 8, 3) float32, channels-last; which stroke is which class is hidden."""
    world = np.random.default_rng([seed, 0])
    order = world.permutation(4)
    lo = world.uniform(0.4, 0.6)
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, 4, n)
    images = 0.2 * rng.standard_normal((n, 8, 8, 3))
    for i, c in enumerate(labels):
        r, col = rng.integers(0, 6, 2)
        shape = SHAPES[order[c]]
        images[i, r:r + 3, col:col + 3, :] += shape[:, :, None] * rng.uniform(lo, lo + 1.0, 3)
    return images.astype(np.float32), labels.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    x, y = _draw(seed, 1, 500)
    return {"X": x, "y": y}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh images in the stored layout (N, 8, 8, 3) float32, and their class indices."""
    return _draw(seed, 2, 2000)
