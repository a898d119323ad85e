"""Host-side held-out data and an inference-consistency check for task10."""

import numpy as np

HELDOUT_SEED = 5_118_903

# Runs inside the sandbox after the script: a trained classifier's prediction for one sample
# must not depend on the call (dropout masks) or on the other samples in the batch (batch-norm
# batch statistics).
CHECK_CODE = '''
import torch

def check(ns, record):
    model = ns.get("model")
    if not isinstance(model, torch.nn.Module):
        return {"error": "no model"}
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
    if first is None:
        return {"error": "no nn.Linear in the model"}
    g = torch.Generator().manual_seed(12345)
    x = torch.randn(64, first.in_features, generator=g) + 2.0
    with torch.no_grad():
        a = model(x)
        b = model(x)
        c = model(x[:16])
    same_call = bool(torch.allclose(a, b, atol=1e-4, rtol=1e-4))
    same_batch = bool(torch.allclose(a[:16], c, atol=1e-4, rtol=1e-4))
    return {"repeatable": same_call, "batch_independent": same_batch}
'''


def score(checks: dict, record: dict) -> dict:
    """1 for consistent inference, scaled (like the held-out components) by the fraction of the
    model's parameters that training changed: an untrained model in eval mode earns nothing."""
    ok = checks.get("repeatable") is True and checks.get("batch_independent") is True
    changes = record.get("param_changes") or {}
    moved = sum(1 for v in changes.values() if isinstance(v, (int, float)) and v > 1e-7)
    trained = moved / len(changes) if changes and record.get("optimizer_steps") else 0.0
    return {"consistent_inference": trained if ok else 0.0}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fresh draws from the training distribution of buggy.py (the same for every variant):
    class k has mean 4 on feature k, unit Gaussian noise everywhere."""
    centers = 4.0 * np.eye(16)[:10]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 2000).astype(np.int64)
    x = centers[labels] + rng.standard_normal((2000, 16))
    return x.astype(np.float32), labels
