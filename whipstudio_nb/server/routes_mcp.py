"""The connection-style endpoints: MCP JSON-RPC over POST /mcp, OpenEnv's WebSocket protocol on
/ws, and openenv-core's WebSocket MCP on /mcp."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from .compat import adapt_action
from .encoding import REFERENCE_MESSAGES, StrictJSONResponse
from .guard import parse_json_limited
from .mcp import PARSE_ERROR, handle_mcp, rpc_error
from .mcp_sessions import HttpMcpSessions
from .routes_env import step_body
from .service import WhipServer, get_server
from .ws import websocket_session

__all__ = ["router"]

router = APIRouter()
Server = Annotated[WhipServer, Depends(get_server)]


@router.post("/mcp", tags=["MCP"], summary="MCP JSON-RPC 2.0 endpoint (tools/list, tools/call)")
async def mcp(request: Request, server: Server) -> StrictJSONResponse:
    try:  # the guard has checked the limits already
        payload = parse_json_limited(await request.body(), server.config)
    except (ValueError, UnicodeDecodeError):
        return StrictJSONResponse(rpc_error(PARSE_ERROR, "Parse error"))

    async def call_tool(name: str, args: dict[str, Any], sid: str | None) -> dict[str, Any]:
        server.check_rate("step", request.scope, "MCP tools/call")
        session = server.find_session(request.scope, sid)  # UnknownSessionError: a LookupError
        if session is None:
            raise LookupError(REFERENCE_MESSAGES["no_episode"])
        action, _ = adapt_action({**args, "action_type": name})
        result = await run_in_threadpool(server.step_session, session, action)
        return step_body(result, session.id)[0]

    sessions = HttpMcpSessions(server, request.scope)
    return StrictJSONResponse(await handle_mcp(payload, call_tool, sessions))


@router.websocket("/ws")
async def ws(websocket: WebSocket, server: Server) -> None:
    await websocket_session(websocket, server)


@router.websocket("/mcp")
async def mcp_ws(websocket: WebSocket, server: Server) -> None:  # openenv-core's WebSocket MCP
    await websocket_session(websocket, server, mcp=True)
