"""The tools an agent calls, one module each, registered in one place (this file).

A tool module defines its host half ``run(ctx, action)``, optionally an in-kernel half, and a
``TOOL`` spec (``registry.Tool``). To add a tool: write the module, then add one line below.
"""

from __future__ import annotations

from . import (
    execute_snippet,
    get_variable_state,
    inspect_diff,
    inspect_tensor,
    line_edit,
    run_training_probe,
    submit_fix,
)
from ._common import ToolContext
from .registry import (
    Tool,
    action_adapter,
    action_models,
    get_tool,
    register,
    registered,
    tool_names,
    tools,
    unregister,
)

__all__ = [
    "Tool",
    "ToolContext",
    "action_adapter",
    "action_models",
    "get_tool",
    "kernel_preload",
    "register",
    "registered",
    "tool_names",
    "tools",
    "unregister",
]

# The registry, in the order the reference API lists the actions.
register(execute_snippet.TOOL)
register(inspect_tensor.TOOL)
register(run_training_probe.TOOL)
register(get_variable_state.TOOL)
register(inspect_diff.TOOL)
register(submit_fix.TOOL)
for _tool in line_edit.TOOLS:  # view_code, replace_lines, undo_edit, reset_to_original
    register(_tool)

# Modules a sandbox kernel imports while warming up: the in-kernel halves, the grading harness
# and the training-data loader (see Sandbox(preload=...)).
_KERNEL_EXTRA = ("whipstudio_nb.grading.harness", "whipstudio_nb.grading.loader")


def kernel_preload() -> tuple[str, ...]:
    modules = [t.kernel_entry.partition(":")[0] for t in tools() if t.kernel_entry]
    return tuple(dict.fromkeys([*modules, *_KERNEL_EXTRA]))
