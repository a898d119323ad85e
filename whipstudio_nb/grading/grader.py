"""The host half of grading: run the harness in a fresh kernel, generate held-out data, score.

Nothing the submission prints counts. The held-out inputs are generated here, from a seed the
sandbox never sees, and sent in only after the submission has finished; the labels never leave
this process.
"""

from __future__ import annotations

import importlib.util
import math
import time
from types import ModuleType
from typing import Any

import numpy as np

from ..models import GradeResult, TaskSpec
from ..sandbox import Sandbox, check_code
from ..sandbox import dispatch_cell as _dispatch_cell
from . import harness, metrics

__all__ = ["grade_code"]

HARNESS = "whipstudio_nb.grading.harness"
EVAL_TIMEOUT_S = 30.0
MAX_LOSSES_IN_DETAILS = 200
CRASH_CAP = 0.5  # a script that crashes part-way can show progress, but not pass


def _load_pack_grader(task: TaskSpec) -> ModuleType:
    assert task.path is not None
    path = task.path / "grader.py"
    spec = importlib.util.spec_from_file_location(f"whip_pack_grader_{task.info.id}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(score: float, details: dict[str, Any], output: str = "") -> GradeResult:
    return GradeResult(score=round(min(1.0, max(0.0, score)), 4), details=details, output=output)


def grade_code(task: TaskSpec, code: str, sandbox: Sandbox) -> GradeResult:
    """Grade ``code`` for ``task``. Never raises for anything the code does."""
    started = time.monotonic()
    cfg = task.grading
    violation = check_code(code)
    if violation:
        return _result(0.0, {"error": violation, "components": {}})

    model_name = cfg.get("model", "model")
    predict_name = cfg.get("predict")
    with sandbox.kernel() as kernel:
        run = kernel.execute(
            _dispatch_cell(HARNESS, {"phase": "run", "code": code, "model": model_name}),
            timeout=task.time_budget_s,
        )
        output = run.stdout + (("\n" if run.stdout and run.stderr else "") + run.stderr)
        rec = run.result or {}
        if run.timed_out:
            reason = f"the script did not finish within the time budget of {task.time_budget_s:g} s"
            return _result(0.0, {"error": reason, "components": {}}, output)
        if run.died or not rec or "internal_error" in rec:
            reason = (
                f"the script ended the sandbox process (exit status {run.exit_status})"
                if run.died
                else f"the harness produced no result: {rec.get('internal_error', 'unknown')}"
            )
            return _result(0.0, {"error": reason, "components": {}}, output)

        outputs, eval_error = None, None
        if rec.get("model_found") and not rec.get("tampered"):
            inputs, labels = _heldout(task)
            ev = kernel.execute(
                _dispatch_cell(
                    HARNESS,
                    {
                        "phase": "evaluate",
                        "inputs": harness.encode_array(inputs),
                        "model": model_name,
                        "predict": predict_name,
                    },
                ),
                timeout=EVAL_TIMEOUT_S,
            )
            evr = ev.result or {}
            if "outputs" in evr:
                outputs = harness.decode_array(evr["outputs"])
            else:
                eval_error = evr.get("error") or ("evaluation timed out" if ev.timed_out else
                                                  "evaluation produced no result")  # fmt: skip

    losses = [float(x) for x in rec.get("losses", [])]
    details: dict[str, Any] = {
        "final_loss": losses[-1] if losses and math.isfinite(losses[-1]) else None,
        "losses": _thin(losses),
        "loss_steps": len(losses),
        "optimizer_steps": rec.get("optimizer_steps", 0),
        "exit_code": rec.get("exit_code"),
    }
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
            f"no trained model: the script must leave an nn.Module named '{model_name}' at "
            "module level"
        )
    if eval_error:
        details["model_error"] = eval_error

    measured = metrics.measure(cfg, rec, losses, outputs, None if outputs is None else labels)
    details.update(measured.values)
    weights = _weights(cfg)
    components = {name: round(measured.components.get(name, 0.0), 4) for name in weights}
    score = sum(weights[n] * components[n] for n in weights)
    if rec.get("exit_code", 0) != 0:
        score = min(score, CRASH_CAP)
        details["crash_cap"] = CRASH_CAP
    details["components"] = components
    details["weights"] = weights
    details["grading_time_s"] = round(time.monotonic() - started, 3)
    return _result(score, details, output)


def _heldout(task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    pack = _load_pack_grader(task)
    seed = int(task.grading.get("heldout_seed", getattr(pack, "HELDOUT_SEED", 0)))
    inputs, labels = pack.heldout(seed)
    return np.asarray(inputs), np.asarray(labels)


def _weights(cfg: dict[str, Any]) -> dict[str, float]:
    raw = cfg.get("weights") or metrics.DEFAULT_WEIGHTS
    total = float(sum(raw.values()))
    return {k: float(v) / total for k, v in raw.items()}


def _thin(values: list[float]) -> list[float | None]:
    """At most MAX_LOSSES_IN_DETAILS points, evenly spaced, always keeping the last."""
    if len(values) > MAX_LOSSES_IN_DETAILS:
        step = len(values) / MAX_LOSSES_IN_DETAILS
        picked = [values[int(i * step)] for i in range(MAX_LOSSES_IN_DETAILS - 1)] + [values[-1]]
    else:
        picked = values
    return [round(v, 6) if math.isfinite(v) else None for v in picked]
