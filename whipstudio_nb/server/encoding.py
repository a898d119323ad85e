"""Responses in strict JSON, through the one encoder in ``whipstudio_nb.models``: no body,
frame or MCP result ever holds a bare NaN/Infinity (they go as null, listed under
``non_finite``). A result that cannot be encoded at all becomes an in-band error that keeps
the turn's outcome (turn, reward, done), so a consumed turn is never lost."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from ..models import StepResult, UnencodableError, dumps, to_strict_json

__all__ = ["StrictJSONResponse", "step_payload", "strict_text"]

log = logging.getLogger("whipstudio_nb.server")


class StrictJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def step_payload(result: StepResult, **extra: Any) -> dict[str, Any]:
    """``{"observation", "reward", "done", **extra}`` as strict-JSON-ready data. An
    observation with no JSON form is replaced by an error observation with its outcome."""
    try:
        obs = to_strict_json(result.observation)
    except UnencodableError as exc:
        o = result.observation
        log.warning("observation of %s could not be encoded: %s", o.action_type, exc)
        obs = {
            "action_type": o.action_type,
            "turn": o.turn,
            "episode_done": o.episode_done,
            "reward": o.reward,
            "error": f"The tool's result could not be encoded as JSON ({exc}); the turn counted.",
            "error_code": "tool_error",
        }
    return {"observation": obs, "reward": result.reward, "done": result.done, **extra}


def strict_text(value: Any) -> str:
    """Strict JSON text; an unencodable value becomes an error object instead of raising."""
    try:
        return dumps(value)
    except UnencodableError as exc:
        return dumps({"error": f"The result could not be encoded as JSON: {exc}"})
