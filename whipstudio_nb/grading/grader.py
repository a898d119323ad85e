"""The host half of grading: run the harness in a fresh kernel, generate held-out data, score.

Nothing the submission prints counts. The held-out inputs are generated here, from a seed the
sandbox never sees, and sent in only after the submission has finished; the labels never leave
this process.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import time
from types import ModuleType
from typing import Any

import numpy as np

from ..models import GradeResult, TaskSpec
from ..sandbox import ProgressCallback, Sandbox, check_code, dispatch_cell
from ..series import thinned_steps
from . import harness, metrics

__all__ = ["grade_code", "load_pack_grader"]

HARNESS = "whipstudio_nb.grading.harness"
EVAL_TIMEOUT_S = 30.0
MAX_LOSSES_IN_DETAILS = 200
CRASH_CAP = 0.5  # a script that crashes part-way can show progress, but not pass

_pack_cache: dict[tuple[str, float], ModuleType] = {}


def load_pack_grader(task: TaskSpec) -> ModuleType:
    """The pack's grader.py (host-side code: held-out data, optional checks), cached."""
    assert task.path is not None
    path = task.path / "grader.py"
    key = (str(path), path.stat().st_mtime)
    if key not in _pack_cache:
        spec = importlib.util.spec_from_file_location(f"whip_pack_grader_{task.info.id}", path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _pack_cache[key] = mod
    return _pack_cache[key]


def _result(score: float, details: dict[str, Any], output: str = "") -> GradeResult:
    return GradeResult(score=round(min(1.0, max(0.0, score)), 4), details=details, output=output)


def _fail(reason: str, output: str = "") -> GradeResult:
    return _result(0.0, {"error": reason, "components": {}}, output)


def grade_code(
    task: TaskSpec, code: str, sandbox: Sandbox, on_progress: ProgressCallback | None = None
) -> GradeResult:
    """Grade ``code`` for ``task`` (or the task variant it was rendered as). Never raises for
    anything the code does."""
    started = time.monotonic()
    cfg = task.grading
    violation = check_code(code)
    if violation:
        return _fail(violation)
    pack = load_pack_grader(task)
    weights = _weights(cfg)
    run_args = {
        "phase": "run",
        "code": code,
        "model": cfg.get("model", "model"),
        "record_memory": "memory" in weights,
        "val_inputs": cfg.get("val_inputs") if "no_leakage" in weights else None,
        "check_code": getattr(pack, "CHECK_CODE", None),
    }
    outputs = labels = None
    eval_error = None
    with sandbox.kernel() as kernel:
        run = kernel.execute(
            dispatch_cell(HARNESS, run_args), timeout=task.time_budget_s, on_progress=on_progress
        )
        output = run.stdout + (("\n" if run.stdout and run.stderr else "") + run.stderr)
        rec = run.result or {}
        if run.timed_out:
            return _fail(
                f"the script did not finish within the time budget of {task.time_budget_s:g} s",
                output,
            )
        if run.died:
            return _fail(
                f"the script ended the sandbox process (exit status {run.exit_status})", output
            )
        if not rec or "internal_error" in rec:
            return _fail(
                f"the harness produced no result: {rec.get('internal_error', 'unknown')}", output
            )
        if rec.get("model_found") and not rec.get("tampered"):
            inputs, labels = _heldout(task, pack)
            eval_args = {
                "phase": "evaluate",
                "inputs": harness.encode_array(inputs),
                "model": cfg.get("model", "model"),
                "predict": cfg.get("predict"),
            }
            ev = kernel.execute(dispatch_cell(HARNESS, eval_args), timeout=EVAL_TIMEOUT_S)
            evr = ev.result or {}
            if "outputs" in evr:
                outputs = harness.decode_array(evr["outputs"])
            elif ev.timed_out:
                eval_error = "evaluating the model on held-out inputs timed out"
            else:
                eval_error = evr.get("error") or "evaluation produced no result"

    losses = [float(x) for x in rec.get("losses", [])]
    details: dict[str, Any] = {
        "final_loss": losses[-1] if losses and math.isfinite(losses[-1]) else None,
        "losses": _thin(losses),
        "loss_steps": len(losses),
        "optimizer_steps": rec.get("optimizer_steps", 0),
        "exit_code": rec.get("exit_code"),
    }
    if task.params:
        details["variant"] = task.params
    if rec.get("error"):
        details["script_error"] = rec["error"]
    if rec.get("tampered"):
        details["error"] = "the submission replaced functions the grader relies on: " + ", ".join(
            rec["tampered"][:10]
        )
        details["components"] = {}
        return _result(0.0, details, output)
    if not rec.get("model_found"):
        details["model_error"] = (
            f"no trained model: the script must leave an nn.Module named "
            f"'{cfg.get('model', 'model')}' at module level"
        )
    if eval_error:
        details["model_error"] = eval_error

    measured = metrics.measure(cfg, rec, losses, outputs, labels)
    details.update(measured.values)
    components = dict(measured.components)
    if hasattr(pack, "score"):  # the task's own components, from what its checks measured
        checks = rec.get("checks", {})
        details["checks"] = checks
        custom = pack.score(checks, rec)
        components.update({k: float(min(1.0, max(0.0, v))) for k, v in custom.items()})
    components = {name: round(components.get(name, 0.0), 4) for name in weights}
    score = sum(weights[n] * components[n] for n in weights)
    if rec.get("exit_code", 0) != 0:
        score = min(score, CRASH_CAP)
        details["crash_cap"] = CRASH_CAP
    details["components"] = components
    details["weights"] = {k: round(v, 4) for k, v in weights.items()}
    details["grading_time_s"] = round(time.monotonic() - started, 3)
    return _result(score, details, output)


def _heldout(task: TaskSpec, pack: ModuleType) -> tuple[np.ndarray, np.ndarray]:
    seed = int(task.grading.get("heldout_seed", getattr(pack, "HELDOUT_SEED", 0)))
    if len(inspect.signature(pack.heldout).parameters) >= 2:
        inputs, labels = pack.heldout(seed, dict(task.params))
    else:
        inputs, labels = pack.heldout(seed)
    return np.asarray(inputs), np.asarray(labels)


def _weights(cfg: dict[str, Any]) -> dict[str, float]:
    raw = cfg.get("weights") or metrics.DEFAULT_WEIGHTS
    total = float(sum(raw.values()))
    return {k: float(v) / total for k, v in raw.items()}


def _thin(values: list[float]) -> list[float | None]:
    """At most MAX_LOSSES_IN_DETAILS points, evenly spaced, always keeping the last (the
    steps they stand for: ``series.thinned_steps``)."""
    picked = [values[i] for i in thinned_steps(len(values), MAX_LOSSES_IN_DETAILS)]
    return [round(v, 6) if math.isfinite(v) else None for v in picked]
