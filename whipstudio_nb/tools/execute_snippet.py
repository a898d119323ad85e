"""execute_snippet: run code as a script in a fresh kernel; report its streams and exit code."""

from __future__ import annotations

from typing import Any

from ..models import ExecuteSnippetAction, ExecuteSnippetObservation
from ._common import ToolContext, call_kernel
from .registry import Tool


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    from whipstudio_nb.sandbox import kernel_lib as kl

    exit_code, error = kl.run_user_code(args["code"], kl.fresh_namespace(), "<snippet>")
    return {"exit_code": exit_code, "error": error}


def run(ctx: ToolContext, action: ExecuteSnippetAction) -> ExecuteSnippetObservation:
    out = call_kernel(ctx, TOOL, {"code": action.code})
    stderr = out.run.stderr
    if out.error:
        stderr = (stderr + "\n" if stderr else "") + out.error
    exit_code = out.result.get("exit_code", 1)
    if out.run.died and out.run.exit_status is not None:
        exit_code = out.run.exit_status
    return ExecuteSnippetObservation(
        stdout=out.run.stdout,
        stderr=stderr,
        exit_code=exit_code if not out.run.timed_out else 1,
        timed_out=out.run.timed_out,
    )


TOOL = Tool(
    action=ExecuteSnippetAction,
    observation=ExecuteSnippetObservation,
    run=run,
    kernel_entry=f"{__name__}:in_kernel",
    code_fields=(("code", "exec"),),
    view="snippet",
)
