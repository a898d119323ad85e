"""Host-side data for task5: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task5")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np


def _world(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16 raw features driven by 6 latent factors; an 8-class and a 3-class readout."""
    world = np.random.default_rng([seed, 0])
    mix = world.standard_normal((16, 6)) / 2.0
    return mix, world.standard_normal((6, 8)), world.standard_normal((6, 3))


def _draw(seed: int, stream: int, n: int, readout: int) -> tuple[np.ndarray, np.ndarray]:
    mix, pre_w, target_w = _world(seed)
    rng = np.random.default_rng([seed, stream])
    x = rng.standard_normal((n, 16))
    y = (np.tanh(x @ mix) @ (target_w if readout == 3 else pre_w)).argmax(axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """The small 3-class set (X, y: 300 rows) and the big 8-class pretraining set
    (X_pretrain, y_pretrain: 2000 rows) from the same world."""
    x, y = _draw(seed, 1, 300, 3)
    xp, yp = _draw(seed, 3, 2000, 8)
    return {"X": x, "y": y, "X_pretrain": xp, "y_pretrain": yp}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 3000, 3)
