"""Score components, each in [0, 1], computed on the host from what the harness measured.

A task's ``[grading]`` table picks the metric and thresholds; ``[grading.weights]`` picks the
components and their weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_WEIGHTS", "Measured", "measure"]

DEFAULT_WEIGHTS = {
    "heldout_metric": 0.5,
    "heldout_loss": 0.2,
    "loss_decrease": 0.15,
    "trained": 0.15,
}


@dataclass
class Measured:
    values: dict[str, Any] = field(default_factory=dict)
    components: dict[str, float] = field(default_factory=dict)


def _ramp(x: float, zero_at: float, one_at: float) -> float:
    """0 at ``zero_at``, 1 at ``one_at``, linear between (either direction), clamped."""
    if not math.isfinite(x):
        return 0.0
    if one_at == zero_at:
        return 1.0 if x >= one_at else 0.0
    return float(min(1.0, max(0.0, (x - zero_at) / (one_at - zero_at))))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def classification(cfg: dict[str, Any], outputs: np.ndarray, labels: np.ndarray) -> Measured:
    m = Measured()
    if outputs.ndim != 2 or outputs.shape[0] != labels.shape[0]:
        m.values["model_error"] = (
            f"expected outputs of shape ({labels.shape[0]}, n_classes), got {tuple(outputs.shape)}"
        )
        return m
    finite = np.isfinite(outputs).all(axis=1)
    pred = np.where(finite, outputs.argmax(axis=1), -1)
    acc = float((pred == labels).mean())
    logp = _log_softmax(np.where(np.isfinite(outputs), outputs, 0.0))
    ce = float(-logp[np.arange(len(labels)), labels].mean()) if finite.all() else math.inf
    # Chance is the majority-class rate unless the task says otherwise.
    chance = cfg.get("chance", float(np.bincount(labels).max() / len(labels)))
    m.values.update(
        val_acc=round(acc, 4),
        heldout_loss=round(ce, 4) if math.isfinite(ce) else None,
        chance_acc=round(chance, 4),
    )
    m.components["heldout_metric"] = _ramp(acc, chance, cfg.get("target", 0.9))
    m.components["heldout_loss"] = _ramp(ce, cfg.get("loss_max", 2.0), cfg.get("loss_target", 0.3))
    return m


def loss_decrease(cfg: dict[str, Any], losses: list[float]) -> float:
    """How far the recorded training loss fell: 1 when the end is at most ``loss_ratio_target``
    of the start, 0 when it did not fall (or ends non-finite)."""
    if len(losses) < 2:
        return 0.0
    k = max(1, len(losses) // 10)
    start, end = losses[0], float(np.mean(losses[-k:]))
    if not (math.isfinite(start) and math.isfinite(end)) or start <= 0:
        return 0.0
    return _ramp(end / start, 1.0, cfg.get("loss_ratio_target", 0.5))


def trained(rec: dict[str, Any]) -> float:
    """The fraction of trainable parameter tensors that changed, if the optimizer stepped."""
    if not rec.get("optimizer_steps"):
        return 0.0
    changes = rec.get("param_changes", {})
    trainable = rec.get("trainable_params", [])
    if not trainable:
        return 0.0
    moved = sum(1 for n in trainable if float(changes.get(n, 0.0)) > 1e-7)
    return moved / len(trainable)


def measure(
    cfg: dict[str, Any],
    rec: dict[str, Any],
    losses: list[float],
    outputs: np.ndarray | None,
    labels: np.ndarray | None,
) -> Measured:
    m = Measured()
    if outputs is not None and labels is not None:
        kind = cfg.get("metric", "accuracy")
        if kind != "accuracy":
            raise ValueError(f"unsupported metric '{kind}'")
        sub = classification(cfg, outputs, labels)
        m.values.update(sub.values)
        m.components.update(sub.components)
    m.components["loss_decrease"] = loss_decrease(cfg, losses)
    m.components["trained"] = trained(rec)
    # A model the script never trained can be right by luck; held-out results count only in
    # proportion to how much of it the script trained.
    for name in ("heldout_metric", "heldout_loss"):
        if name in m.components:
            m.components[name] *= m.components["trained"]
    m.values["losses_finite"] = all(math.isfinite(x) for x in losses) if losses else None
    return m
