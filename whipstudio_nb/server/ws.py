"""OpenEnv's WebSocket protocol on /ws: one session per connection.

Client messages: ``{"type": "reset", "data": {...}}``, ``{"type": "step", "data": <action>}``,
``{"type": "state"}``, ``{"type": "close"}``, ``{"type": "mcp", "data": <JSON-RPC>}``.
Server replies: ``{"type": "observation", "data": {"observation", "reward", "done"}}``,
``{"type": "state", "data": ...}``, ``{"type": "mcp", "data": ...}`` or
``{"type": "error", "data": {"message", "code"}}`` with openenv-core's error codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import UnknownTaskError
from ..tasks import load_task
from .mcp import handle_mcp
from .schemas import ResetRequest
from .sessions import CapacityError, Session

if TYPE_CHECKING:
    from .app import WhipServer

__all__ = ["WSErrorCode", "websocket_session"]


class WSErrorCode:
    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CAPACITY_REACHED = "CAPACITY_REACHED"
    FACTORY_ERROR = "FACTORY_ERROR"
    SESSION_ERROR = "SESSION_ERROR"


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, "code": code, **extra}}


async def websocket_session(websocket: WebSocket, server: WhipServer) -> None:
    await websocket.accept()
    try:
        session = await run_in_threadpool(server.sessions.create, "ws")
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
                await websocket.send_json(
                    _error(
                        WSErrorCode.SESSION_ERROR,
                        f"Session expired after {server.sessions.idle_timeout_s:g} s idle",
                    )
                )
                break
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None and message.get("bytes") is not None:
                raw = message["bytes"].decode("utf-8", errors="replace")
            reply = await _handle(raw or "", session, server)
            if reply is None:  # close
                break
            await websocket.send_text(json.dumps(reply))
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
        await websocket.send_json(message)
        await websocket.close(code=code)


async def _handle(raw: str, session: Session, server: WhipServer) -> dict[str, Any] | None:
    try:
        msg = json.loads(raw)
    except ValueError as exc:
        return _error(WSErrorCode.INVALID_JSON, f"Invalid JSON: {exc}")
    if not isinstance(msg, dict):
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: expected a JSON object")
    kind = msg.get("type", "")
    data = msg.get("data", {})
    if kind == "close":
        return None
    if kind == "state":
        return {"type": "state", "data": await run_in_threadpool(server.state_of, session)}
    if kind not in ("reset", "step", "mcp"):
        return _error(WSErrorCode.UNKNOWN_TYPE, f"Unknown message type: {kind}")
    if kind == "step" and "data" not in msg:
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: field 'data' is required")
    if not isinstance(data, dict):
        return _error(WSErrorCode.VALIDATION_ERROR, "Invalid message: 'data' must be an object")
    try:
        if kind == "reset":
            req = ResetRequest.model_validate({k: v for k, v in data.items() if k != "episode_id"})
            from .app import default_task_id

            task_id = req.task_id or default_task_id()
            load_task(task_id, seed=req.seed)
            out = await run_in_threadpool(server.reset_session, session, task_id, req.seed)
            out.pop("episode_id", None)
            return {"type": "observation", "data": out}
        if kind == "step":
            result = await run_in_threadpool(server.step_session, session, data)
            obs = result.observation.model_dump(mode="json")
            return {
                "type": "observation",
                "data": {"observation": obs, "reward": result.reward, "done": result.done},
            }

        async def call_tool(name: str, args: dict[str, Any], sid: str | None) -> dict[str, Any]:
            result = await run_in_threadpool(
                server.step_session, session, {**args, "action_type": name}
            )
            obs = result.observation.model_dump(mode="json")
            return {"observation": obs, "reward": result.reward, "done": result.done}

        return {"type": "mcp", "data": await handle_mcp(data, call_tool)}
    except ValidationError as exc:
        return _error(
            WSErrorCode.VALIDATION_ERROR,
            "Invalid message",
            errors=json.loads(exc.json(include_url=False)),
        )
    except UnknownTaskError as exc:
        return _error(WSErrorCode.VALIDATION_ERROR, str(exc))
    except Exception as exc:
        return _error(WSErrorCode.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}")
