"""Compatibility with existing clients, in one place at the server edge.

The Python API keeps its strict models (a typo in a field name is an error there). Clients
written for the original WhipStudio server, the TraceFix-style loop and openenv-core's
``MCPToolClient`` send other shapes; this module maps them onto ours before validation:

- The original ``MLDebugAction`` is one flat model: every tool's fields on every action,
  ``episode_id`` inside the action, ``action_type`` defaulting to ``submit_fix``, and
  openenv's ``metadata``. So inside an action: ``episode_id`` addresses the episode (only one
  the server issued: it never creates one); a missing ``action_type`` with ``fixed_code``
  present means ``submit_fix``; ``attempt_number`` is kept (it is a ``submit_fix`` field, and
  the response echoes it); the original's fields that the chosen tool does not take are
  dropped. Any other unknown field stays a 422 listing the valid fields.
- ``reset(task_name=...)`` (TraceFix) means ``task_id``; a task's display name works too.
- openenv-core's ``MCPToolClient`` in WebSocket mode sends ``{"type": "list_tools"}`` and
  ``{"type": "call_tool", "tool_name", "arguments"}`` as step actions: they are MCP requests,
  not actions. Listing tools costs no turn; calling one runs that tool, one turn like any step.
"""

from __future__ import annotations

from typing import Any

from ..tools import action_models

__all__ = [
    "ORIGINAL_ACTION_FIELDS",
    "adapt_action",
    "mcp_step_request",
    "resolve_task_name",
]

# Every field of the original MLDebugAction (plus openenv's Action.metadata).
ORIGINAL_ACTION_FIELDS = frozenset(
    {
        "action_type",
        "episode_id",
        "fixed_code",
        "explanation",
        "attempt_number",
        "code",
        "setup_code",
        "target_expression",
        "steps",
        "expressions",
        "proposed_code",
        "metadata",
    }
)


def adapt_action(action: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """An original-style action as ours, and the ``episode_id`` it carried (None if none)."""
    out = dict(action)
    eid = out.pop("episode_id", None)
    episode_id = eid if isinstance(eid, str) and eid else None
    if "action_type" not in out and "fixed_code" in out:
        out["action_type"] = "submit_fix"
    model = action_models().get(out.get("action_type"))  # type: ignore[arg-type]
    if model is not None:
        for name in ORIGINAL_ACTION_FIELDS - set(model.model_fields):
            out.pop(name, None)
    return out, episode_id


def resolve_task_name(name: str) -> str:
    """A task id as is; else the id of the task with this display name (case-insensitive);
    else the name unchanged (it then fails as an unknown task id, with the usual message)."""
    from ..tasks import find_task_dirs, list_tasks

    if name in find_task_dirs():
        return name
    wanted = name.strip().lower()
    for info in list_tasks():
        if info.name.lower() == wanted:
            return info.id
    return name


def mcp_step_request(data: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON-RPC request an MCPToolClient step stands for, or None for a real action."""
    kind = data.get("type")
    if kind == "list_tools":
        return {"jsonrpc": "2.0", "id": 0, "method": "tools/list"}
    if kind == "call_tool":
        arguments = data.get("arguments")
        return {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "tools/call",
            "params": {
                "name": data.get("tool_name"),
                "arguments": arguments if arguments is not None else {},
            },
        }
    return None
