"""Host-side held-out data for task3 (never mounted into a sandbox)."""

import numpy as np
import torch

HELDOUT_SEED = 2_604_117


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py: the same hidden rule W_true
    (rebuilt from the variant's data seed exactly as the script draws it), new samples."""
    g = torch.Generator().manual_seed(params["data_seed"])  # the script's torch.manual_seed
    torch.randn(1500, 20, generator=g)  # the script's X comes first in its random stream
    w_true = torch.randn(20, 3, generator=g).numpy()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 20)).astype(np.float32)
    y = (x @ w_true + 0.8 * rng.standard_normal((3000, 3))).argmax(axis=1).astype(np.int64)
    return x, y
