"""Score components, each in [0, 1], computed on the host from what the harness measured.

A task's ``[grading]`` table picks the metric and thresholds; ``[grading.weights]`` picks the
components and their weights. Built-in components:

- ``heldout_metric``: the task's metric on held-out data (accuracy, multilabel_f1 or r2), 0 at
  chance and 1 at ``target``;
- ``heldout_loss``: the held-out loss (cross-entropy, binary cross-entropy or MSE), 1 at
  ``loss_target`` and 0 at ``loss_max``;
- ``loss_decrease``: how far the training loss that reached backward() fell;
- ``trained``: the fraction of the model's trainable parameters that the run changed;
- ``memory``: memory growth over the run, the peak over a base of what the kernel's main process
  sampled of the submission's process and every process it started (``memory_watch.py``;
  ``memory_ok_mb`` scores 1, ``memory_bad_mb`` 0);
- ``no_leakage``: 1 when the validation split did not influence training: swapped for another
  draw in a second run of the script, it leaves the trained weights the same (``influence.py``,
  packs that declare ``val_data``), and no validation row (``val_inputs``, any object the script
  bound to that name while it trained) was seen trained on, exactly or as a copy moved by a
  little noise (``ledger.leaked_rows``; independent samples can lie that close by chance, so up
  to ``NEAR_ROWS_ALLOWED`` of the rows may).

Honest floors: ``chance`` (where ``heldout_metric`` starts to pay) is at least the best score any
constant predictor reaches on the held-out labels (the majority-class rate; the best fixed tag
set for F1; 0 for R^2), and ``loss_max`` (where ``heldout_loss`` starts to pay) is at most the
held-out loss of the best constant output (the label prior's entropy; the label variance for
MSE). A task may declare a stricter ``chance`` or ``loss_max``, never a looser one.

The held-out outputs must come from what was trained: the harness also evaluates the model with
every parameter reset to its value before training; when that untrained model already reaches
most of the trained model's held-out score, the outputs did not come from training and the
held-out components pay nothing (``ATTRIBUTION_*``). They also count only in proportion to
``trained``. Every other component (loss_decrease, trained, memory, no_leakage, a pack's own)
pays only once the model does something real on held-out data (``gate``). A task's grader.py
may add components with ``score(values, record)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..tasks import BUILTIN_COMPONENTS, METRICS  # the pack format's names

__all__ = [
    "BUILTIN_COMPONENTS",
    "DEFAULT_WEIGHTS",
    "METRICS",
    "Measured",
    "constant_baseline",
    "gate",
    "measure",
    "weighted_score",
]

DEFAULT_WEIGHTS = {
    "heldout_metric": 0.5,
    "heldout_loss": 0.2,
    "loss_decrease": 0.15,
    "trained": 0.15,
}
_HELDOUT = ("heldout_metric", "heldout_loss")
GATE_FULL_AT = 0.25  # held-out metric component at which the other components pay in full
# Held-out credit when the untrained model (trained parameters reset) already reaches this share
# of the trained model's held-out metric component: full at or below FULL_AT, none from ZERO_AT.
# FULL_AT is high because a fixed seed's random start can be lucky: task1's reference fix,
# untrained, reached 0.78 of its trained score in 2 of 600 hidden worlds (p99 0.59), which at 0.7
# failed a correct fix (0.78 instead of 1.0). Outputs that do not depend on training reach 1.0.
ATTRIBUTION_FULL_AT = 0.85
ATTRIBUTION_ZERO_AT = 0.95
# Held-out credit by the share of the trained model's held-out metric component that the
# trained weights keep in the task's reference model (``reference.py``): a fix gives the same
# answers there (share 1), so only a small spread (dropout left on) is allowed for.
NEAR_ROWS_ALLOWED = 0.1
REFERENCE_FULL_AT = 0.9
REFERENCE_ZERO_AT = 0.6


@dataclass
class Measured:
    values: dict[str, Any] = field(default_factory=dict)
    components: dict[str, float] = field(default_factory=dict)


def ramp(x: float, zero_at: float, one_at: float) -> float:
    """0 at ``zero_at``, 1 at ``one_at``, linear between (either direction), clamped."""
    if not math.isfinite(x):
        return 0.0
    if one_at == zero_at:
        return 1.0 if x >= one_at else 0.0
    return float(min(1.0, max(0.0, (x - zero_at) / (one_at - zero_at))))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _shape_error(m: Measured, expected: str, outputs: np.ndarray) -> Measured:
    m.values["model_error"] = (
        f"expected model outputs of shape {expected}, got {tuple(outputs.shape)}"
    )
    return m


def accuracy(cfg: dict[str, Any], outputs: np.ndarray, labels: np.ndarray) -> Measured:
    """Outputs are logits (N, C), or predicted class indices (N,) from a predict function."""
    m = Measured()
    n = labels.shape[0]
    if outputs.shape[:1] != (n,) or outputs.ndim not in (1, 2):
        return _shape_error(m, f"({n}, n_classes) or ({n},)", outputs)
    if outputs.ndim == 2:
        finite = np.isfinite(outputs).all(axis=1)
        pred = np.where(finite, outputs.argmax(axis=1), -1)
        if finite.all() and outputs.shape[1] > int(labels.max()):
            logp = _log_softmax(outputs)
            ce = float(-logp[np.arange(n), labels].mean())
        else:
            ce = math.inf
        m.values["heldout_loss"] = round(ce, 4) if math.isfinite(ce) else None
        m.components["heldout_loss"] = ramp(ce, _loss_max(cfg, labels), cfg.get("loss_target", 0.3))
    else:
        pred = np.where(np.isfinite(outputs), outputs, -1).astype(np.int64)
    acc = float((pred == labels).mean())
    chance = _chance(cfg, labels)
    m.values.update(val_acc=round(acc, 4), chance=round(chance, 4))
    m.components["heldout_metric"] = ramp(acc, chance, cfg.get("target", 0.9))
    return m


def multilabel_f1(cfg: dict[str, Any], outputs: np.ndarray, labels: np.ndarray) -> Measured:
    """Outputs are per-label logits (N, L); a label is predicted when its logit is > 0."""
    m = Measured()
    if outputs.shape != labels.shape:
        return _shape_error(m, str(tuple(labels.shape)), outputs)
    finite = np.isfinite(outputs)
    pred = (np.where(finite, outputs, 0.0) > 0).astype(np.int64)
    tp = int((pred & labels).sum())
    fp = int((pred & (1 - labels)).sum())
    fn = int(((1 - pred) & labels).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    if finite.all():
        z = outputs
        bce = float(np.mean(np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))))
    else:
        bce = math.inf
    m.values.update(val_f1=round(f1, 4), val_acc=round(f1, 4))
    m.values["heldout_loss"] = round(bce, 4) if math.isfinite(bce) else None
    chance = _chance(cfg, labels)
    m.values["chance"] = round(chance, 4)
    m.components["heldout_metric"] = ramp(f1, chance, cfg.get("target", 0.8))
    m.components["heldout_loss"] = ramp(bce, _loss_max(cfg, labels), cfg.get("loss_target", 0.3))
    return m


def r2(cfg: dict[str, Any], outputs: np.ndarray, labels: np.ndarray) -> Measured:
    """Outputs are predictions (N,) or (N, 1) for a scalar target."""
    m = Measured()
    n = labels.shape[0]
    if outputs.shape not in ((n,), (n, 1)):
        return _shape_error(m, f"({n},) or ({n}, 1)", outputs)
    pred = outputs.reshape(n)  # (N, 1) and (N,) hold the same numbers; nothing is broadcast
    mse = float(np.mean((pred - labels) ** 2)) if np.isfinite(pred).all() else math.inf
    var = float(np.var(labels))
    score = 1.0 - mse / var if math.isfinite(mse) and var > 0 else -math.inf
    m.values.update(val_r2=round(score, 4) if math.isfinite(score) else None)
    m.values["heldout_loss"] = round(mse, 4) if math.isfinite(mse) else None
    m.values["val_acc"] = m.values["val_r2"]
    m.components["heldout_metric"] = ramp(score, _chance(cfg, labels), cfg.get("target", 0.9))
    m.components["heldout_loss"] = ramp(
        mse, _loss_max(cfg, labels), cfg.get("loss_target", 0.1 * var)
    )
    return m


def constant_baseline(metric: str, labels: np.ndarray) -> tuple[float, float]:
    """(best metric, best loss) that any constant predictor reaches on these held-out labels:
    what ``chance`` and ``loss_max`` can never be looser than."""
    labels = np.asarray(labels)
    if metric == "accuracy":
        prior = np.bincount(labels.reshape(-1).astype(np.int64)) / labels.size
        nz = prior[prior > 0]
        return float(prior.max()), float(-(nz * np.log(nz)).sum())
    if metric == "multilabel_f1":
        y = labels.reshape(len(labels), -1).astype(np.int64)
        p = y.mean(axis=0).clip(1e-12, 1 - 1e-12)
        bce = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
        pos, n = y.sum(axis=0), len(y)
        best, order = 0.0, np.argsort(-pos)  # the best fixed tag set: the k most frequent tags
        for k in range(1, y.shape[1] + 1):
            chosen = order[:k]
            tp = pos[chosen].sum()
            fp = n * k - tp
            fn = pos.sum() - tp
            best = max(best, 2 * tp / (2 * tp + fp + fn))
        return float(best), bce
    var = float(np.var(labels))
    return 0.0, var


def _chance(cfg: dict[str, Any], labels: np.ndarray) -> float:
    best, _ = constant_baseline(cfg.get("metric", "accuracy"), labels)
    return max(best, float(cfg.get("chance", best)))


def _loss_max(cfg: dict[str, Any], labels: np.ndarray) -> float:
    _, loss = constant_baseline(cfg.get("metric", "accuracy"), labels)
    return min(loss, float(cfg.get("loss_max", loss)))


_METRIC_FUNCS = {"accuracy": accuracy, "multilabel_f1": multilabel_f1, "r2": r2}


def loss_decrease(cfg: dict[str, Any], losses: list[float]) -> float:
    """How far the recorded training loss fell: 1 when the end is at most ``loss_ratio_target``
    of the start, 0 when it did not fall (or ends non-finite)."""
    if len(losses) < 2:
        return 0.0
    k = max(1, len(losses) // 10)
    start, end = losses[0], float(np.mean(losses[-k:]))
    if not (math.isfinite(start) and math.isfinite(end)) or start <= 0:
        return 0.0
    return ramp(end / start, 1.0, cfg.get("loss_ratio_target", 0.5))


def host_loss_ratio(
    cfg: dict[str, Any], before: np.ndarray, after: np.ndarray, labels: np.ndarray
) -> float | None:
    """The task's loss (cross-entropy, binary cross-entropy or MSE) on training rows after
    training over before it; None when the loss cannot be computed (class indices, not logits,
    or a start that is not finite)."""
    metric = _METRIC_FUNCS[cfg.get("metric", "accuracy")]
    if cfg.get("metric") == "multilabel_f1" and labels.ndim == 1:
        labels = labels.reshape(-1, 1)  # a binary task's training labels, in held-out layout
    start = metric(cfg, before, labels).values.get("heldout_loss")
    if not isinstance(start, (int, float)) or not start > 0:
        return None
    end = metric(cfg, after, labels).values.get("heldout_loss")
    return math.inf if end is None else float(end) / float(start)


def trained(cfg: dict[str, Any], rec: dict[str, Any]) -> float:
    """The fraction of the model's parameter tensors that changed, if an optimizer stepped.
    Frozen parameters count as untrained, except those whose names start with a prefix in the
    task's ``frozen_ok`` list."""
    if not rec.get("optimizer_steps"):
        return 0.0
    changes = rec.get("param_changes", {})
    frozen_ok = tuple(cfg.get("frozen_ok", ()))
    names = list(changes) or rec.get("trainable_params", [])
    names = [n for n in names if not (frozen_ok and n.startswith(frozen_ok))]
    if not names:
        return 0.0
    moved = sum(1 for n in names if float(changes.get(n, 0.0)) > 1e-7)
    return moved / len(names)


def memory(cfg: dict[str, Any], rss_mb: list[float]) -> tuple[float, float | None]:
    """(component, growth in MiB) from the memory the kernel's main process sampled over the
    run, of A and every process the submission started (``memory_watch.growth_series``): the
    base, then every sample. Growth is the peak over the base."""
    if len(rss_mb) < 2:
        return 0.0, None
    growth = max(max(rss_mb[1:]) - rss_mb[0], 0.0)
    return ramp(growth, cfg.get("memory_bad_mb", 40.0), cfg.get("memory_ok_mb", 5.0)), growth


def measure(
    cfg: dict[str, Any],
    rec: dict[str, Any],
    losses: list[float],
    outputs: np.ndarray | None,
    labels: np.ndarray | None,
    *,
    outputs_init: np.ndarray | None = None,
    outputs_reference: np.ndarray | None = None,
    train_check: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    reference_trained: dict[str, list[str]] | None = None,
    val_influence: Any = None,
) -> Measured:
    m = Measured()
    if outputs is not None and labels is not None:
        metric = _METRIC_FUNCS[cfg.get("metric", "accuracy")]
        sub = metric(cfg, outputs, labels)
        m.values.update(sub.values)
        m.components.update(sub.components)
        if sub.components:
            # The trained weights in the task's reference model (``reference.py``): knowledge
            # kept anywhere else, or read back by code the submission added, is not there.
            # Credit is what both earn (a script's own outputs can only lose it), and none
            # when the reference model keeps too little of it.
            now = m.components.get("heldout_metric", 0.0)
            ref: dict[str, float] = {}
            if outputs_reference is not None:
                ref = metric(cfg, outputs_reference, labels).components
            again = ref.get("heldout_metric", 0.0)
            share = again / now if now > 0 else 1.0
            factor = ramp(share, REFERENCE_ZERO_AT, REFERENCE_FULL_AT)
            m.values["heldout_metric_reference"] = round(again, 4)
            m.values["reference_share"] = round(factor, 4)
            for name in _HELDOUT:
                if name in m.components:
                    m.components[name] = min(m.components[name], ref.get(name, 0.0)) * factor
        if outputs_init is not None and sub.components:
            # What the model scores with every trained parameter reset: outputs that do not
            # come from training (a side estimator, a rule in forward) score the same there.
            base = metric(cfg, outputs_init, labels)
            now = m.components.get("heldout_metric", 0.0)
            before = base.components.get("heldout_metric", 0.0)
            share = before / now if now > 0 else 1.0
            factor = ramp(share, ATTRIBUTION_ZERO_AT, ATTRIBUTION_FULL_AT)
            m.values["heldout_metric_untrained"] = round(before, 4)
            m.values["attribution"] = round(factor, 4)
            for name in _HELDOUT:
                if name in m.components:
                    m.components[name] *= factor
    m.components["loss_decrease"] = loss_decrease(cfg, losses)
    if train_check is not None:
        # The curve comes from the submission's process; the host's own measure of the same
        # fall caps it: the reference model's loss on a training sample, before and after the
        # trained weights went in.
        ratio = host_loss_ratio(cfg, *train_check)
        if ratio is not None:
            m.values["train_loss_ratio_reference"] = round(ratio, 4)
            host = ramp(ratio, 1.0, cfg.get("loss_ratio_target", 0.5))
            m.components["loss_decrease"] = min(m.components["loss_decrease"], host)
    m.components["trained"] = trained(cfg, rec)
    if reference_trained is not None:
        # Capped by what the host saw the weights change in the reference model.
        host = trained(
            cfg,
            {
                "optimizer_steps": rec.get("optimizer_steps"),
                "param_changes": {
                    n: float(n in reference_trained.get("moved", []))
                    for n in reference_trained.get("trainable", [])
                },
            },
        )
        m.components["trained"] = min(m.components["trained"], host)
    m.values["losses_finite"] = all(math.isfinite(x) for x in losses) if losses else None
    if "rss_mb" in rec:
        m.components["memory"], growth = memory(cfg, rec["rss_mb"])
        m.values["memory_growth_mb"] = None if growth is None else round(growth, 1)
    if "leakage" in rec:
        leak = rec["leakage"]
        m.values["leakage"] = leak
        exact, near = leak.get("val_rows_in_training"), leak.get("val_rows_nearly_in_training", 0)
        rows = max(int(leak.get("val_rows") or 0), 1)
        clean = exact == 0 and near <= NEAR_ROWS_ALLOWED * rows
        if val_influence is not None:
            # Measured outside the submission's process (``influence.py``): what it hides from
            # the recorder still moves the weights when the validation split changes.
            m.values["val_influence"] = val_influence.difference
            if val_influence.error:
                m.values["val_influence_error"] = val_influence.error
            clean = clean and val_influence.clean
        m.components["no_leakage"] = 1.0 if clean and rec.get("optimizer_steps") else 0.0
    for name in _HELDOUT:
        if name in m.components:
            m.components[name] *= m.components["trained"]
    return m


def weighted_score(components: dict[str, float], weights: dict[str, float]) -> float:
    """The grade from its components: their weighted sum (the weights sum to 1), in [0, 1].
    A script that crashed is capped below this (``grader.CRASH_CAP``)."""
    total = sum(weights[name] * components.get(name, 0.0) for name in weights)
    return round(min(1.0, max(0.0, total)), 4)


def gate(
    components: dict[str, float], weights: dict[str, float], details: dict[str, Any]
) -> dict[str, float]:
    """Every component other than the held-out ones pays only in proportion to how far the
    held-out metric got (full from ``GATE_FULL_AT``): a run that learned nothing real earns
    nothing for falling losses, moved parameters or a tidy process."""
    if "heldout_metric" not in weights:
        return components
    g = ramp(components.get("heldout_metric", 0.0), 0.0, GATE_FULL_AT)
    details["process_gate"] = round(g, 4)
    return {k: (v if k in _HELDOUT else v * g) for k, v in components.items()}
