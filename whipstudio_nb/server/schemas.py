"""Request bodies and the JSON Schemas the server publishes (/tools, /schema, MCP tools/list),
all generated from the pydantic models in ``whipstudio_nb.models``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from ..models import ErrorObservation, Observation, State
from ..tools import action_adapter, tools

__all__ = [
    "CloseRequest",
    "GraderRequest",
    "observation_models",
    "ResetRequest",
    "StepRequest",
    "action_schema",
    "mcp_tools",
    "observation_schema",
    "state_schema",
    "tool_list",
]


def observation_models() -> dict[str, type[Any]]:
    """Each tool's observation model, by tool name (from the registry)."""
    return {t.name: t.observation for t in tools()}


class ResetRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"task_id": "task1"}, {"task_id": "task2", "seed": 3}]},
    )

    task_id: str | None = Field(
        default=None, max_length=200, description="Task to play (default: the first task)."
    )
    task_name: str | None = Field(
        default=None,
        max_length=200,
        description="Alias of task_id (TraceFix-style clients); a task's name works too.",
    )
    seed: int | None = Field(default=None, ge=0, description="Pick a variant of the task.")
    episode_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Reset this episode's session instead of starting a new one.",
    )

    @model_validator(mode="after")
    def _task_name_is_task_id(self) -> ResetRequest:
        if self.task_id is None and self.task_name is not None:
            from .compat import resolve_task_name

            self.task_id = resolve_task_name(self.task_name)
        return self


class StepRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"action": {"action_type": "execute_snippet", "code": "print(1)"}}]
        },
    )

    action: dict[str, Any] = Field(description="An action; see GET /tools for every schema.")
    episode_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The episode (from /reset) to act in; default: the default session.",
    )
    timeout_s: float | None = Field(default=None, gt=0, description="Accepted for OpenEnv.")
    request_id: str | None = Field(default=None, max_length=255, description="Echoed back.")


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode_id: str | None = Field(default=None, min_length=1, max_length=255)


class GraderRequest(BaseModel):
    """Grade code by running it. There is deliberately no field for output: nothing a
    submission prints (or a client claims it printed) is ever scored."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=200)
    code: str = Field(max_length=1_000_000, description="The full fixed script.")
    seed: int | None = Field(default=None, ge=0, description="Grade against this task variant.")


# Not cached: a tool registered at run time shows up at once (the schemas are small).
def action_schema() -> dict[str, Any]:
    return dict(action_adapter().json_schema())


def observation_schema() -> dict[str, Any]:
    models = (Observation, ErrorObservation, *dict.fromkeys(observation_models().values()))
    union: Any = models[0]
    for m in models[1:]:
        union = union | m
    return dict(TypeAdapter(union).json_schema())


def state_schema() -> dict[str, Any]:
    return State.model_json_schema()


def tool_list() -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.summary,
            "action_schema": t.action.model_json_schema(),
            "observation_schema": t.observation.model_json_schema(),
        }
        for t in tools()
    ]


def mcp_tools() -> list[dict[str, Any]]:
    """MCP tool specs: the action's fields (without its action_type) as the input schema."""
    tools = []
    for t in tool_list():
        schema = dict(t["action_schema"])
        props = dict(schema.get("properties", {}))
        props.pop("action_type", None)
        schema["properties"] = props
        tools.append({"name": t["name"], "description": t["description"], "inputSchema": schema})
    return tools
