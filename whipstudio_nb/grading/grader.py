"""The host half of grading: run the harness in a fresh kernel, generate held-out data, score.

Nothing the submission prints counts. The training data comes from the pack's generator with a
hidden seed (``data.py``); the held-out inputs come from the same hidden distribution and are sent
in only after the submission has finished and everything it started is gone; the labels never
leave this process. Only a result carrying this grading's nonce, which no submitted code ever
saw, is trusted.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

from ..models import GradeResult, TaskSpec
from ..sandbox import ProgressCallback, Sandbox, SandboxKernel, check_code, dispatch_cell
from ..series import thinned_steps
from . import metrics
from .data import (
    DATA_SETUP,
    data_payload,
    heldout_data,
    hidden_seed,
    swapped_val_seed,
    training_sample,
    val_keys,
)
from .influence import SwappedRun
from .pack import load_pack_grader
from .reference import Checked, ReferenceRun, run_seed
from .wire import decode_array, encode_array

__all__ = ["grade_code", "load_pack_grader"]

HARNESS = "whipstudio_nb.grading.harness:in_kernel"
RUN_MARGIN_S = 3.0  # the kernel enforces the budget itself; the host's own timeout is a backstop
EVAL_TIMEOUT_S = 5.0  # the trained model's calls on held-out inputs
EVAL_MARGIN_S = 3.0
MAX_LOSSES_IN_DETAILS = 200
CRASH_CAP = 0.5  # a script that crashes part-way can show progress, but not pass


def _result(score: float, details: dict[str, Any], output: str = "") -> GradeResult:
    return GradeResult(score=round(min(1.0, max(0.0, score)), 4), details=details, output=output)


def _fail(reason: str, output: str = "") -> GradeResult:
    return _result(0.0, {"error": reason, "components": {}}, output)


def grade_code(
    task: TaskSpec,
    code: str,
    sandbox: Sandbox,
    on_progress: ProgressCallback | None = None,
    *,
    data_seed: int | None = None,
) -> GradeResult:
    """Grade ``code`` for ``task`` (or the task variant it was rendered as). ``data_seed`` picks
    the hidden data (default: the task's episode seed, else this process's secret one). Never
    raises for anything the code does."""
    started = time.monotonic()
    cfg = task.grading
    violation = check_code(code)
    if violation:
        return _fail(violation)
    pack = load_pack_grader(task)
    seed = hidden_seed(task) if data_seed is None else int(data_seed)
    weights = _weights(cfg)
    budget = task.time_budget_s
    run_args = {
        "phase": "run",
        "code": code,
        "model": cfg.get("model", "model"),
        "record_memory": "memory" in weights,
        "val_inputs": cfg.get("val_inputs") if "no_leakage" in weights else None,
        "budget_s": budget,
        "rng_seed": run_seed(seed),  # the same for the reference run
    }
    with sandbox.kernel() as kernel:  # the other runs take theirs in their own threads
        reference = ReferenceRun(
            sandbox.kernel,
            dispatch_cell(HARNESS, _reference_args(run_args, task), _setup(task, seed)),
            timeout=budget + RUN_MARGIN_S,
        )
        runs: list[Any] = [reference]
        swapped = None
        if "no_leakage" in weights and val_keys(task) and _setup(task, seed) is not None:
            swapped = SwappedRun(
                sandbox.kernel,
                dispatch_cell(
                    HARNESS,
                    {**run_args, "record_memory": False, "val_inputs": None, "mirror": True},
                    (DATA_SETUP, data_payload(task, seed, val_from=swapped_val_seed(seed))),
                ),
                timeout=budget + RUN_MARGIN_S,
            )
            runs.append(swapped)
        try:
            result = _grade_in(
                task, pack, seed, run_args, kernel, (reference, swapped), on_progress, started
            )
        except BaseException:
            for r in runs:
                r.close(wait=False)  # an interrupt stops the grade now, not after those runs
            raise
        for r in runs:
            r.close()
        return result


def _reference_args(run_args: dict[str, Any], task: TaskSpec) -> dict[str, Any]:
    """The task's solution in place of the submission, training turned off, recording nothing
    beyond what it needs: no memory, rows or task checks."""
    return {
        **run_args,
        "code": task.solution_code,
        "learn": False,
        "record_memory": False,
        "val_inputs": None,
    }


def _setup(task: TaskSpec, seed: int) -> tuple[str, Any] | None:
    payload = data_payload(task, seed)
    return (DATA_SETUP, payload) if payload is not None else None


def _grade_in(
    task: TaskSpec,
    pack: Any,
    seed: int,
    run_args: dict[str, Any],
    kernel: SandboxKernel,
    others: tuple[ReferenceRun, SwappedRun | None],
    on_progress: ProgressCallback | None,
    started: float,
) -> GradeResult:
    cfg = task.grading
    weights = _weights(cfg)
    budget = task.time_budget_s
    reference, swapped = others
    run = kernel.execute(
        dispatch_cell(HARNESS, run_args, _setup(task, seed)),
        timeout=budget + RUN_MARGIN_S,
        on_progress=on_progress,
    )
    output = run.stdout + (("\n" if run.stdout and run.stderr else "") + run.stderr)
    status = [r for r in run.results if "status" in r or "internal_error" in r]
    last = status[-1] if status else {}
    if run.timed_out or last.get("status") == "timeout":
        return _fail(f"the script did not finish within the time budget of {budget:g} s", output)
    if run.died or last.get("status") == "died":
        code_ = run.exit_status if run.died else last.get("exit_status")
        return _fail(f"the script ended the sandbox process (exit status {code_})", output)
    if last.get("status") != "ran":
        return _fail(
            f"the harness produced no result: {last.get('internal_error', 'unknown')}", output
        )
    stopped = last.get("leftovers_killed", 0)
    inputs, labels = heldout_data(task, seed)
    nonce = secrets.token_hex(16)
    eval_args = {
        "phase": "evaluate",
        "nonce": nonce,
        "inputs": encode_array(inputs),
        "model": cfg.get("model", "model"),
        "predict": cfg.get("predict"),
        "timeout_s": EVAL_TIMEOUT_S,
        "send_state": True,
    }
    ev = kernel.execute(dispatch_cell(HARNESS, eval_args), timeout=EVAL_TIMEOUT_S + EVAL_MARGIN_S)
    trusted = [r for r in ev.results if r.get("nonce") == nonce]
    if not trusted or "record" not in trusted[-1]:
        return _fail("the harness produced no trusted result", output)
    evr = trusted[-1]
    checked = Checked()
    sample = training_sample(task, seed)
    if "outputs" in evr and not evr["record"].get("tampered"):

        def reference_cell(ref_nonce: str, state: dict[str, Any]) -> str:
            args = {**eval_args, "nonce": ref_nonce, "load_state": state, "send_state": False}
            args["check_code"] = getattr(pack, "CHECK_CODE", None)
            if sample is not None:
                args["train_inputs"] = encode_array(sample[0])
            return dispatch_cell(HARNESS, args)

        checked = reference.outputs(
            reference_cell, evr.get("state"), timeout=EVAL_TIMEOUT_S + EVAL_MARGIN_S
        )
    reference_error = checked.error
    influence = None
    if swapped is not None:

        def state_cell(n: str) -> str:
            return dispatch_cell(HARNESS, {"phase": "evaluate", "nonce": n, "send_state": True})

        influence = swapped.compare(
            state_cell, evr.get("state"), timeout=EVAL_TIMEOUT_S + EVAL_MARGIN_S
        )
    rec = evr["record"]
    if "internal_error" in rec:
        return _fail(f"the harness failed: {rec['internal_error']}", output)
    outputs = decode_array(evr["outputs"]) if "outputs" in evr else None
    outputs_init = decode_array(evr["outputs_init"]) if "outputs_init" in evr else None
    eval_error = evr.get("error") or evr.get("eval_error")

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
    if stopped:
        details["stopped_processes"] = stopped  # left running by the script, killed after it
    if rec.get("error"):
        details["script_error"] = rec["error"]
    if rec.get("tampered"):
        details["error"] = "the submission tampered with what the grader relies on: " + ", ".join(
            rec["tampered"][:10]
        )
        details["tampered"] = rec["tampered"]
        details["components"] = {}
        return _result(0.0, details, output)
    if not rec.get("model_found"):
        details["model_error"] = (
            f"no trained model: the script must leave an nn.Module named "
            f"'{cfg.get('model', 'model')}' at module level"
        )
    elif eval_error:
        details["model_error"] = eval_error

    measured = metrics.measure(
        cfg,
        rec,
        losses,
        outputs,
        labels,
        outputs_init=outputs_init,
        outputs_reference=checked.outputs,
        train_check=(
            (checked.train[0], checked.train[1], sample[1])
            if checked.train is not None and sample is not None
            else None
        ),
        reference_trained=checked.trained,
        val_influence=influence,
    )
    if reference_error and outputs is not None:
        details["reference_error"] = reference_error
    if rec.get("untrained_params"):
        details["untrained_params"] = rec["untrained_params"]
    if rec.get("unearned_gradients"):
        details["unearned_gradients"] = rec["unearned_gradients"]  # losses that did not train
    details.update(measured.values)
    components = dict(measured.components)
    if hasattr(pack, "score"):  # the task's own components, from what its checks measured
        checks = checked.checks
        if checks is None and getattr(pack, "CHECK_CODE", None):
            checks = {"error": reference_error or "the task's checks did not run"}
        details["checks"] = checks or {}
        # ``trained`` as the host measured it (the reference model), not the script's claim.
        custom = pack.score(details["checks"], {**rec, "trained": components.get("trained", 0.0)})
        components.update({k: float(min(1.0, max(0.0, v))) for k, v in custom.items()})
    components = metrics.gate(components, weights, details)
    components = {name: round(components.get(name, 0.0), 4) for name in weights}
    score = metrics.weighted_score(components, weights)
    if rec.get("exit_code", 0) != 0:
        score = min(score, CRASH_CAP)
        details["crash_cap"] = CRASH_CAP
    details["components"] = components
    details["weights"] = {k: round(v, 4) for k, v in weights.items()}
    details["grading_time_s"] = round(time.monotonic() - started, 3)
    return _result(score, details, output)


def _weights(cfg: dict[str, Any]) -> dict[str, float]:
    raw = cfg.get("weights") or metrics.DEFAULT_WEIGHTS
    total = float(sum(raw.values()))
    return {k: float(v) / total for k, v in raw.items()}


def _thin(values: list[float]) -> list[float | None]:
    """At most MAX_LOSSES_IN_DETAILS points, evenly spaced, always keeping the last (the
    steps they stand for: ``series.thinned_steps``)."""
    picked = [values[i] for i in thinned_steps(len(values), MAX_LOSSES_IN_DETAILS)]
    return [round(v, 6) if math.isfinite(v) else None for v in picked]
