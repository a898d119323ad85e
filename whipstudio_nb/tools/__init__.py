"""One module per tool: the code it runs in the sandbox (``in_kernel``) and how its result
becomes an observation (``run``). ``TOOLS`` maps each action_type to its module."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["TOOL_DESCRIPTIONS", "tool_module"]

_MODULES = {
    "execute_snippet": "execute_snippet",
    "inspect_tensor": "inspect_tensor",
    "run_training_probe": "run_training_probe",
    "get_variable_state": "get_variable_state",
    "inspect_diff": "inspect_diff",
    "submit_fix": "submit_fix",
    "view_code": "line_edit",
    "replace_lines": "line_edit",
    "undo_edit": "line_edit",
    "reset_to_original": "line_edit",
}

TOOL_DESCRIPTIONS = {
    "execute_snippet": "Run a Python code snippet to test hypotheses.",
    "inspect_tensor": "Inspect tensor shape, dtype, gradients, and statistics.",
    "run_training_probe": "Run N training steps and observe loss curve and gradients.",
    "get_variable_state": "Evaluate multiple expressions and return their state.",
    "inspect_diff": "Compare proposed fix against original buggy code.",
    "submit_fix": "Submit a final fix for grading.",
    "view_code": "Show the working copy of the code with line numbers.",
    "replace_lines": "Replace a 1-based inclusive range of lines of the working copy.",
    "undo_edit": "Undo the last edit of the working copy.",
    "reset_to_original": "Restore the working copy to the original buggy code.",
}


def tool_module(action_type: str) -> ModuleType:
    return import_module(f"{__name__}.{_MODULES[action_type]}")
