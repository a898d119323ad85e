"""The episode endpoints (the reference's /reset, /step, /state, /close) and OpenEnv's
/schema, /metadata and /health.

A step that ran answers 200, even when its tool reported an error in-band; a step the
environment refused answers the status of its error code (``errors.status_for_code``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..models import StepResult
from ..tasks import find_task_dirs, load_task
from .compat import adapt_action
from .encoding import REFERENCE_MESSAGES, StrictJSONResponse, step_payload
from .errors import (
    RETRY_AFTER,
    error_response,
    observation_code,
    status_for_code,
)
from .schemas import (
    CloseRequest,
    ResetRequest,
    StepRequest,
    action_schema,
    observation_schema,
    state_schema,
    tool_list,
)
from .service import DESCRIPTION, WhipServer, default_task_id, get_server
from .sessions import UnknownSessionError

__all__ = ["router", "step_body"]

router = APIRouter()
Server = Annotated[WhipServer, Depends(get_server)]
EpisodeHeader = Annotated[str | None, Header(max_length=255)]


def step_body(result: StepResult, episode_id: str) -> tuple[dict[str, Any], str | None]:
    """A step's response body, and its error code (None when the step has no error)."""
    body = step_payload(result, episode_id=episode_id)
    obs = body["observation"]
    code = observation_code(obs)
    if obs.get("error"):  # the reference's flat error shape, alongside the observation
        body.update(error=obs["error"], episode_done=obs["episode_done"], turn=obs["turn"])
        if code is not None:
            body["code"] = code
    return body, code


@router.post("/reset", tags=["Episode"], summary="Start a new debugging episode")
async def reset(
    request: Request,
    server: Server,
    body: Annotated[ResetRequest | None, Body()] = None,
    x_episode_id: EpisodeHeader = None,
) -> StrictJSONResponse:
    body = body or ResetRequest()
    task_id = body.task_id or default_task_id()
    load_task(task_id, seed=body.seed)  # unknown ids: 404 before any session exists
    eid = body.episode_id or x_episode_id
    owner = server.owner(request.scope)
    session = await run_in_threadpool(server.sessions.for_reset, eid, owner)
    data = await run_in_threadpool(server.reset_session, session, task_id, body.seed)
    return StrictJSONResponse(data)


@router.post("/step", tags=["Episode"], summary="Execute an action (tool call or submit_fix)")
async def step(
    request: Request, server: Server, body: StepRequest, x_episode_id: EpisodeHeader = None
) -> StrictJSONResponse:
    action, inner_id = adapt_action(body.action)  # the original clients' shapes
    session = server.find_session(request.scope, body.episode_id or x_episode_id or inner_id)
    if session is None:
        message = REFERENCE_MESSAGES["no_episode"]
        return error_response(409, message, code="no_episode", episode_done=True, reward=0.0)
    result = await run_in_threadpool(server.step_session, session, action)
    payload, code = step_body(result, session.id)
    if body.request_id is not None:
        payload["request_id"] = body.request_id
    if isinstance(action.get("attempt_number"), int):
        payload["attempt_number"] = action["attempt_number"]
    retry = RETRY_AFTER.get(code) if code is not None else None
    headers = {"Retry-After": retry} if retry is not None else None
    return StrictJSONResponse(payload, status_code=status_for_code(code), headers=headers)


@router.get("/state", tags=["Episode"], summary="Get the current session state")
async def state(
    request: Request,
    server: Server,
    episode_id: str | None = Query(default=None, max_length=255),
    x_episode_id: EpisodeHeader = None,
) -> StrictJSONResponse:
    session = server.find_session(request.scope, episode_id or x_episode_id)
    return StrictJSONResponse(await run_in_threadpool(server.state_of, session))


@router.post("/close", tags=["Episode"], summary="End an episode and free its session")
async def close(
    server: Server,
    body: Annotated[CloseRequest | None, Body()] = None,
    x_episode_id: EpisodeHeader = None,
) -> StrictJSONResponse:
    eid = (body.episode_id if body else None) or x_episode_id
    if not eid:
        return error_response(
            422, "Invalid request: field 'episode_id' is required", code="invalid_action"
        )
    if not await run_in_threadpool(server.sessions.close_session, eid):
        raise UnknownSessionError(eid, server.sessions.idle_timeout_s)
    return StrictJSONResponse({"episode_id": eid, "closed": True})


@router.get("/health", tags=["Health"], summary="Health check")
async def health(server: Server) -> StrictJSONResponse:
    counts = server.sessions.counts()
    return StrictJSONResponse(
        {
            "status": "healthy",
            "version": __version__,
            "tasks_available": len(find_task_dirs()),
            "tools_available": len(tool_list()),
            "active_sessions": counts["active"],
            "max_sessions": server.sessions.max_sessions,
        }
    )


@router.get("/schema", tags=["Schema"], summary="Action, observation and state JSON schemas")
async def schema() -> StrictJSONResponse:
    return StrictJSONResponse(
        {"action": action_schema(), "observation": observation_schema(), "state": state_schema()}
    )


@router.get("/metadata", tags=["Info"], summary="Environment metadata")
async def metadata() -> StrictJSONResponse:
    return StrictJSONResponse(
        {
            "name": "whipstudio",
            "description": DESCRIPTION,
            "readme_content": None,
            "version": __version__,
            "author": "WhipStudio",
            "documentation_url": None,
        }
    )
