"""Line editing of the episode's working copy: view_code, replace_lines, undo_edit,
reset_to_original (host-side; the working copy is what ``submit_fix`` submits by default)."""

from __future__ import annotations

from ..models import (
    CodeObservation,
    ReplaceLinesAction,
    ResetToOriginalAction,
    UndoEditAction,
    ViewCodeAction,
)
from ..working_copy import EditError, number_lines
from ._common import ToolContext
from .registry import Tool

Edit = ViewCodeAction | ReplaceLinesAction | UndoEditAction | ResetToOriginalAction


def run(ctx: ToolContext, action: Edit) -> CodeObservation:
    wc = ctx.copy
    error = None
    message = ""
    changed: list[int] = []
    try:
        if isinstance(action, ReplaceLinesAction):
            wc.replace_lines(action.start_line, action.end_line, action.new_code)
            message = f"Replaced lines {action.start_line}-{action.end_line}."
            added = len(action.new_code.splitlines())
            changed = list(range(action.start_line, action.start_line + added))
        elif isinstance(action, UndoEditAction):
            wc.undo()
            message = "Undid the last edit."
        elif isinstance(action, ResetToOriginalAction):
            wc.reset()
            message = "Restored the original code."
    except EditError as exc:
        error = str(exc)
    code = EditError.code if error else None
    return CodeObservation(
        action_type=action.action_type,
        code=wc.code,
        numbered_code=number_lines(wc.code),
        line_count=len(wc.lines),
        can_undo=wc.can_undo,
        message=message,
        changed_lines=changed,
        error=error,
        error_code=code,
    )


# view_code is free: it only reads the working copy.
TOOLS = tuple(
    Tool(
        action=model,
        observation=CodeObservation,
        run=run,
        view="code",
        costs_turn=model is not ViewCodeAction,
    )
    for model in (ViewCodeAction, ReplaceLinesAction, UndoEditAction, ResetToOriginalAction)
)
