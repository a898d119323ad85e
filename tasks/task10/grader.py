"""Host-side data for task10: a generator with hidden parameters (never mounted into a sandbox).

``seed`` is drawn by the environment (new per episode). The script gets ``training_data`` through
``whip_data.load_training_data("task10")``; ``heldout`` draws fresh samples from the same hidden
world (streams: 0 the world, 1 training, 2 held-out).
"""

import numpy as np

# Runs in the grader's reference kernel, on the task's model holding the trained weights in the
# train/eval modes the script left its model in: a trained classifier's prediction for one sample
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
    """1 for consistent inference, scaled (like the held-out components) by ``record["trained"]``
    (the host's measure of how much of the model training changed): an untrained model in eval
    mode earns nothing."""
    ok = checks.get("repeatable") is True and checks.get("batch_independent") is True
    trained = float(record.get("trained") or 0.0)
    return {"consistent_inference": trained if ok else 0.0}


def _draw(seed: int, stream: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """10 faults, 16 noisy sensors: fault k raises one sensor (which one is hidden)."""
    world = np.random.default_rng([seed, 0])
    sensors = world.permutation(16)[:10]
    strength = world.uniform(3.7, 4.3, 10)
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, 10, n)
    x = rng.standard_normal((n, 16))
    x[np.arange(n), sensors[labels]] += strength[labels]
    return x.astype(np.float32), labels.astype(np.int64)


def training_data(seed: int, params: dict) -> dict:
    """1500 training rows (X, y) and 500 validation rows (X_val, y_val)."""
    x, y = _draw(seed, 1, 1500)
    xv, yv = _draw(seed, 3, 500)
    return {"X": x, "y": y, "X_val": xv, "y_val": yv}


def heldout(seed: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
    return _draw(seed, 2, 2000)
