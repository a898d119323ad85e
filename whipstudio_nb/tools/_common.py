"""Host-side plumbing shared by the tools that run code in a sandbox kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..models import GradeResult, TaskSpec
    from ..sandbox import ExecResult, ProgressCallback, Sandbox
    from ..working_copy import WorkingCopy
    from .registry import Tool


__all__ = ["SandboxOutcome", "ToolContext", "call_kernel"]


@dataclass
class ToolContext:
    """What a tool may use: the sandbox, the time limit, and the episode's code."""

    sandbox: Sandbox
    timeout_s: float
    task: TaskSpec
    copy: WorkingCopy
    on_progress: ProgressCallback | None = None  # partial results while a call runs
    # submit_fix reports what it graded here (the env keeps it for export and last_grade)
    on_graded: Callable[[str, GradeResult], None] | None = None


@dataclass
class SandboxOutcome:
    run: ExecResult
    result: dict[str, Any]
    error: str | None  # set when the call did not complete normally
    code: str | None = None  # its stable error code (errors.ErrorCode)


def call_kernel(ctx: ToolContext, tool: Tool, args: dict[str, Any]) -> SandboxOutcome:
    """Run ``tool``'s in-kernel entry point with ``args`` in a fresh sandbox kernel."""
    from ..grading.data import DATA_SETUP, data_payload

    assert tool.kernel_entry, f"{tool.name} has no in-kernel half"
    payload = data_payload(ctx.task)
    setup = (DATA_SETUP, payload) if payload is not None else None
    run = ctx.sandbox.call(
        tool.kernel_entry, args, ctx.timeout_s, on_progress=ctx.on_progress, setup=setup
    )
    result = run.result or {}
    error: str | None = None
    code: str | None = None
    if run.timed_out:
        error = f"Timed out after {ctx.timeout_s:g} s; the sandbox kernel was killed."
        code = "timeout"
    elif run.died:
        error = f"The sandbox kernel exited while running the code (exit status {run.exit_status})."
        code = "kernel_died"
    elif "internal_error" in result:
        error = f"Internal tool error: {result['internal_error']}"
        code = "tool_error"
    elif run.result is None:
        detail = run.error.get("evalue") if run.error else "no result"
        error = f"The tool produced no result ({detail})."
        code = "tool_error"
    return SandboxOutcome(run, result, error, code)
