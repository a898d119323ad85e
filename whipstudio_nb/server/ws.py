"""OpenEnv's WebSocket protocol on /ws: one session per connection.

Client messages: ``{"type": "reset", "data": {...}}``, ``{"type": "step", "data": <action>}``,
``{"type": "state"}``, ``{"type": "close"}``, ``{"type": "mcp", "data": <JSON-RPC>}``.
Server replies: ``{"type": "observation", "data": {"observation", "reward", "done"}}``,
``{"type": "state", "data": ...}``, ``{"type": "mcp", "data": ...}`` or
``{"type": "error", "data": {"message", "code"}}`` with openenv-core's error codes (plus
RATE_LIMITED). Frames are strict JSON and obey the HTTP bodies' limits; messages count
against the client's rate limits (step and MCP tools/call: ``step``; reset: ``reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import WhipError
from ..tasks import load_task
from .compat import adapt_action, mcp_step_request
from .encoding import step_payload, strict_text
from .guard import JSONLimitError, parse_json_limited
from .mcp import (
    INVALID_REQUEST,
    PARSE_ERROR,
    RATE_LIMITED,
    CallTool,
    RateLimitedError,
    handle_mcp,
    mcp_as_observation,
    rpc_error,
)
from .mcp_sessions import WsMcpSessions
from .schemas import ResetRequest
from .service import WhipServer, default_task_id
from .sessions import CapacityError, Session

__all__ = ["WSErrorCode", "websocket_session"]


class WSErrorCode:
    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CAPACITY_REACHED = "CAPACITY_REACHED"
    FACTORY_ERROR = "FACTORY_ERROR"
    SESSION_ERROR = "SESSION_ERROR"
    RATE_LIMITED = "RATE_LIMITED"


# openenv-core's error code for a WhipError's code; any other is an EXECUTION_ERROR.
WS_CODE_FOR = {
    "capacity": WSErrorCode.CAPACITY_REACHED,
    "unknown_task": WSErrorCode.VALIDATION_ERROR,
    "rate_limited": WSErrorCode.RATE_LIMITED,
}


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, "code": code, **extra}}


def _whip_error(exc: WhipError) -> dict[str, Any]:
    ws_code = WS_CODE_FOR.get(exc.code)
    if ws_code is None:
        return _error(WSErrorCode.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}")
    return _error(ws_code, str(exc), **dict(getattr(exc, "extra", None) or {}))


async def websocket_session(websocket: WebSocket, server: WhipServer, *, mcp: bool = False) -> None:
    """One session for the connection. ``mcp``: the connection speaks bare JSON-RPC (openenv's
    WebSocket /mcp), and its episode starts at once on the default task."""
    await websocket.accept()
    try:
        session = await run_in_threadpool(server.sessions.create, "ws")
        if mcp:
            await run_in_threadpool(server.reset_session, session, default_task_id(), None)
    except CapacityError as exc:
        err = _error(
            WSErrorCode.CAPACITY_REACHED,
            str(exc),
            active_sessions=exc.active_sessions,
            max_sessions=exc.max_sessions,
        )
        await _send_and_close(websocket, err, 1013)
        return
    except Exception as exc:
        err = _error(WSErrorCode.FACTORY_ERROR, str(exc), factory_name="WhipEnv")
        await _send_and_close(websocket, err, 1011)
        return
    try:
        while True:
            try:
                message = await asyncio.wait_for(
                    websocket.receive(), timeout=server.sessions.idle_timeout_s
                )
            except asyncio.TimeoutError:
                await websocket.send_text(
                    strict_text(
                        _error(
                            WSErrorCode.SESSION_ERROR,
                            f"Session expired after {server.sessions.idle_timeout_s:g} s idle",
                        )
                    )
                )
                break
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None and message.get("bytes") is not None:
                raw = message["bytes"].decode("utf-8", errors="replace")
            handler = _handle_rpc if mcp else _handle
            reply = await handler(raw or "", session, server, websocket)
            if reply is None:  # close
                break
            await websocket.send_text(strict_text(reply))
    except WebSocketDisconnect:
        pass
    finally:
        await run_in_threadpool(server.sessions.close_session, session.id)
        if websocket.application_state != WebSocketState.DISCONNECTED:
            try:
                await websocket.close()
            except (RuntimeError, OSError, WebSocketDisconnect):
                pass  # the client has gone already


async def _send_and_close(websocket: WebSocket, message: dict[str, Any], code: int) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.send_text(strict_text(message))
        await websocket.close(code=code)


async def _handle(
    raw: str, session: Session, server: WhipServer, websocket: WebSocket
) -> dict[str, Any] | None:
    try:
        msg = parse_json_limited(raw, server.config)
    except JSONLimitError as exc:
        return _error(WSErrorCode.VALIDATION_ERROR, f"Invalid message: {exc}")
    except ValueError as exc:
        return _error(WSErrorCode.INVALID_JSON, f"Invalid JSON: {exc}")
    if not isinstance(msg, dict):
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: expected a JSON object")
    kind = msg.get("type", "")
    if kind == "close":
        return None
    refusal = _refusal(msg, kind, server, websocket)
    if refusal is not None:
        return refusal
    if kind == "state":
        return {"type": "state", "data": await run_in_threadpool(server.state_of, session)}
    try:
        return await _run(kind, msg.get("data", {}), session, server, websocket)
    except ValidationError as exc:
        return _error(
            WSErrorCode.VALIDATION_ERROR,
            "Invalid message",
            errors=exc.errors(include_url=False, include_context=False, include_input=False),
        )
    except WhipError as exc:
        return _whip_error(exc)
    except Exception as exc:
        return _error(WSErrorCode.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}")


def _refusal(
    msg: dict[str, Any], kind: Any, server: WhipServer, websocket: WebSocket
) -> dict[str, Any] | None:
    """The error for a message over its rate limit, of an unknown type or with bad data."""
    bucket = {"step": "step", "reset": "reset", "mcp": "mcp"}.get(kind, "ws")
    try:
        server.check_rate(bucket, websocket.scope, f"WebSocket {bucket} messages")
    except RateLimitedError as exc:
        return _whip_error(exc)
    if kind == "state":
        return None
    if kind not in ("reset", "step", "mcp"):
        return _error(WSErrorCode.UNKNOWN_TYPE, f"Unknown message type: {kind}")
    if kind == "step" and "data" not in msg:
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: field 'data' is required")
    if not isinstance(msg.get("data", {}), dict):
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: 'data' must be an object")
    return None


async def _run(
    kind: str, data: dict[str, Any], session: Session, server: WhipServer, websocket: WebSocket
) -> dict[str, Any]:
    """A reset, step or mcp message in the connection's episode."""
    if kind == "reset":
        req = ResetRequest.model_validate({k: v for k, v in data.items() if k != "episode_id"})
        task_id = req.task_id or default_task_id()
        load_task(task_id, seed=req.seed)
        out = await run_in_threadpool(server.reset_session, session, task_id, req.seed)
        out.pop("episode_id", None)
        return {"type": "observation", "data": out}
    call_tool = _tool_caller(session, server, websocket)
    if kind == "step":
        rpc = mcp_step_request(data)  # openenv's MCPToolClient: MCP, not an action
        if rpc is not None:
            reply = await handle_mcp(rpc, call_tool, WsMcpSessions(session))
            return {"type": "observation", "data": mcp_as_observation(rpc, reply)}
        action, _ = adapt_action(data)  # this connection's episode, whatever id it names
        result = await run_in_threadpool(server.step_session, session, action)
        return {"type": "observation", "data": step_payload(result)}
    return {"type": "mcp", "data": await handle_mcp(data, call_tool, WsMcpSessions(session))}


def _tool_caller(session: Session, server: WhipServer, websocket: WebSocket) -> CallTool:
    """MCP tools/call in the connection's episode (whatever session id the call names)."""

    async def call_tool(name: str, args: dict[str, Any], sid: str | None) -> dict[str, Any]:
        server.check_rate("step", websocket.scope, "MCP tools/call")
        action, _ = adapt_action({**args, "action_type": name})
        return step_payload(await run_in_threadpool(server.step_session, session, action))

    return call_tool


async def _handle_rpc(
    raw: str, session: Session, server: WhipServer, websocket: WebSocket
) -> dict[str, Any] | None:
    try:
        msg = parse_json_limited(raw, server.config)
    except JSONLimitError as exc:
        return rpc_error(INVALID_REQUEST, str(exc))
    except ValueError:
        return rpc_error(PARSE_ERROR, "Parse error")
    try:
        server.check_rate("mcp", websocket.scope, "WebSocket MCP messages")
    except RateLimitedError as exc:
        return rpc_error(RATE_LIMITED, str(exc), None, exc.extra)
    call_tool = _tool_caller(session, server, websocket)
    return await handle_mcp(msg, call_tool, WsMcpSessions(session))
