"""submit_fix: grade the fix (``fixed_code``, or the working copy when omitted) by running it in a
fresh kernel and measuring what it trains (``grading``). Its reward is the episode's reward."""

from __future__ import annotations

from ..grading import grade_code
from ..models import SubmitFixAction, SubmitFixObservation
from ._common import ToolContext
from .registry import Tool


def run(ctx: ToolContext, action: SubmitFixAction) -> SubmitFixObservation:
    code = action.fixed_code if action.fixed_code is not None else ctx.copy.code
    result = grade_code(ctx.task, code, ctx.sandbox, ctx.on_progress)
    if ctx.on_graded is not None:
        ctx.on_graded(code, result)
    return SubmitFixObservation(
        reward=result.score, error_log=result.output, grader_details=result.details
    )


TOOL = Tool(
    action=SubmitFixAction,
    observation=SubmitFixObservation,
    run=run,
    code_fields=(("fixed_code", "exec"),),
    working_copy_field="fixed_code",
    view="grade",
    description="Submit a final fix for grading.",
)
