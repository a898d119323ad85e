"""Host-side held-out data for task4 (never mounted into a sandbox)."""

import numpy as np
import torch

HELDOUT_SEED = 8_830_452


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py: the same hidden tag weights
    (rebuilt from the variant's data seed exactly as the script draws them), new documents.
    Labels are the (N, 6) multi-hot tag matrix."""
    g = torch.Generator().manual_seed(params["data_seed"])  # the script's torch.manual_seed
    w_true = (torch.randn(16, 6, generator=g) * 0.5).numpy()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    y = (x @ w_true + 0.3 * rng.standard_normal((3000, 6)) > 1.0).astype(np.int64)
    return x, y
