"""Host-side plumbing shared by the tools that run code in a sandbox kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import TaskSpec
    from ..sandbox import ExecResult, ProgressCallback, Sandbox
    from ..working_copy import WorkingCopy

__all__ = ["SandboxOutcome", "ToolContext", "call_kernel"]


@dataclass
class ToolContext:
    """What a tool may use: the sandbox, the time limit, and the episode's code."""

    sandbox: Sandbox
    timeout_s: float
    task: TaskSpec
    copy: WorkingCopy
    on_progress: ProgressCallback | None = None  # partial results while a call runs


@dataclass
class SandboxOutcome:
    run: ExecResult
    result: dict[str, Any]
    error: str | None  # set when the call did not complete normally


def call_kernel(ctx: ToolContext, module: str, args: dict[str, Any]) -> SandboxOutcome:
    from ..grading.data import data_payload

    # The episode's training data, for scripts that call whip_data.load_training_data.
    payload = data_payload(ctx.task)
    if payload is not None:
        args = {**args, "whip_data": payload}
    run = ctx.sandbox.call(module, args, ctx.timeout_s, on_progress=ctx.on_progress)
    result = run.result or {}
    error: str | None = None
    if run.timed_out:
        error = f"Timed out after {ctx.timeout_s:g} s; the sandbox kernel was killed."
    elif run.died:
        error = f"The sandbox kernel exited while running the code (exit status {run.exit_status})."
    elif "internal_error" in result:
        error = f"Internal tool error: {result['internal_error']}"
    elif run.result is None:
        detail = run.error.get("evalue") if run.error else "no result"
        error = f"The tool produced no result ({detail})."
    return SandboxOutcome(run, result, error)
