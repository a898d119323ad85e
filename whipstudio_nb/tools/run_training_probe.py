"""run_training_probe: run a training script for at most N backward() calls and report the
losses that really reached backward(), gradient norms and optimizer activity."""

from __future__ import annotations

import math
from typing import Any

from ..models import RunTrainingProbeAction, RunTrainingProbeObservation
from ._common import ToolContext, call_kernel
from .registry import Tool


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = kl.fresh_namespace()
    rec = kl.TrainingRecorder(ns, max_backward=int(args["steps"]), progress=True)
    rec.install()
    try:
        exit_code, err = kl.run_user_code(args["code"], ns, "<probe>", stop=kl.StopRun)
    finally:
        rec.uninstall()
    history = [{k: kl.float_out(v) for k, v in h.items()} for h in rec.grad_norm_history]
    return {
        # NaN/Inf cannot travel as JSON numbers: they go as strings and float() restores them.
        "losses": [kl.float_out(x) for x in rec.losses],
        "grad_norm_history": history,
        # Judged right after the last backward(), before anything could clear the gradients.
        "params_without_grad": (
            rec.last_without_grad
            if rec.last_without_grad is not None
            else rec.params_without_grad()
        ),
        "optimizer_param_count": rec.optimizer_param_count(),
        "optimizer_steps": rec.optimizer_steps,
        "exit_code": exit_code,
        "error": err,
    }


def run(ctx: ToolContext, action: RunTrainingProbeAction) -> RunTrainingProbeObservation:
    out = call_kernel(ctx, TOOL, {"code": action.code, "steps": action.steps})
    r = out.result
    losses = [float(x) for x in r.get("losses", [])]
    history = [{k: float(v) for k, v in h.items()} for h in r.get("grad_norm_history", [])]
    stderr = out.run.stderr
    return RunTrainingProbeObservation(
        losses=losses,
        grad_norms=history[-1] if history else {},
        grad_norm_history=history,
        params_without_grad=r.get("params_without_grad", []),
        optimizer_param_count=r.get("optimizer_param_count", 0),
        optimizer_steps=r.get("optimizer_steps", 0),
        final_loss=losses[-1] if losses else None,
        loss_is_nan=any(math.isnan(x) for x in losses),
        loss_is_inf=any(math.isinf(x) for x in losses),
        stdout=out.run.stdout,
        stderr=stderr,
        timed_out=out.run.timed_out,
        error=out.error,
        error_code=out.code,
    )


TOOL = Tool(
    action=RunTrainingProbeAction,
    observation=RunTrainingProbeObservation,
    run=run,
    kernel_entry=f"{__name__}:in_kernel",
    code_fields=(("code", "exec"),),
    view="probe",
)
