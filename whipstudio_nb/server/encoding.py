"""Responses in strict JSON, through the one encoder in ``whipstudio_nb.models``: no body,
frame or MCP result ever holds a bare NaN/Infinity (they go as null, listed under
``non_finite``). A result that cannot be encoded at all becomes an in-band error that keeps
the turn's outcome (turn, reward, done), so a consumed turn is never lost."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from ..models import StepResult, UnencodableError, dumps, to_strict_json

__all__ = [
    "REFERENCE_MESSAGES",
    "StrictJSONResponse",
    "in_reference_words",
    "step_payload",
    "strict_text",
]

log = logging.getLogger("whipstudio_nb.server")


class StrictJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# The WhipStudio API reference's words for the env's refusals (the core's own wording is
# front-end neutral): what existing clients print and match.
REFERENCE_MESSAGES: dict[str, str] = {
    "episode_done": "Episode already complete. Call /reset to start a new episode.",
    "no_episode": "No episode in progress. Call /reset to start a new episode.",
}


def in_reference_words(dumped: dict[str, Any]) -> dict[str, Any]:
    """``dumped`` with its error said as the reference says it, where the reference has words
    for its code."""
    code = dumped.get("error_code")
    words = REFERENCE_MESSAGES.get(code) if isinstance(code, str) else None
    if words is not None:
        dumped["error"] = words
    return dumped


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
    obs = in_reference_words(obs)
    return {"observation": obs, "reward": result.reward, "done": result.done, **extra}


def strict_text(value: Any) -> str:
    """Strict JSON text; an unencodable value becomes an error object instead of raising."""
    try:
        return dumps(value)
    except UnencodableError as exc:
        return dumps({"error": f"The result could not be encoded as JSON: {exc}"})
