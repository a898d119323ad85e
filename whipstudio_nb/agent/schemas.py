"""Function-calling tools generated from the pydantic action models: one per ``action_type``."""

from __future__ import annotations

import copy
from typing import Any

from ..tools import get_tool, tool_names

__all__ = ["action_tools", "tool_parameters"]


def _simplify(schema: Any) -> Any:
    """Drop titles and collapse ``anyOf: [X, null]`` (optional fields) to X: smaller schemas
    that every OpenAI-compatible server accepts."""
    if isinstance(schema, list):
        return [_simplify(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _simplify(v) for k, v in schema.items() if k != "title"}
    any_of = out.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s != {"type": "null"}]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            del out["anyOf"]
            out = {**non_null[0], **out}
    if out.get("default", 0) is None:
        del out["default"]
    return out


def tool_parameters(action_type: str) -> dict[str, Any]:
    """The JSON Schema of an action's arguments (``action_type`` itself is the tool's name)."""
    schema = copy.deepcopy(get_tool(action_type).action.model_json_schema())
    schema["properties"].pop("action_type", None)
    required = [r for r in schema.get("required", []) if r != "action_type"]
    schema = _simplify(schema)
    schema.pop("description", None)  # the tool's own description says it
    schema["type"] = "object"
    schema["required"] = required
    schema["additionalProperties"] = False
    if not required:
        del schema["required"]
    return dict(schema)


def action_tools(action_types: tuple[str, ...] | list[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI ``tools`` entries, named exactly as the action types, in the models' order."""
    tools = []
    for name in action_types or tool_names():
        description = get_tool(name).summary
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": description,
                    "parameters": tool_parameters(name),
                },
            }
        )
    return tools
