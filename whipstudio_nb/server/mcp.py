"""A small MCP (JSON-RPC 2.0) surface: the debugging tools as MCP tools, for POST /mcp and the
``mcp`` WebSocket message. ``tools/call`` runs a step in the caller's episode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .. import __version__
from .encoding import strict_text
from .schemas import mcp_tools

__all__ = ["PARSE_ERROR", "RateLimitedError", "handle_mcp", "rpc_error"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
RATE_LIMITED = -32029


class RateLimitedError(Exception):
    def __init__(self, message: str, wait_s: float) -> None:
        self.wait_s = wait_s
        super().__init__(message)


PROTOCOL_VERSION = "2025-06-18"

# (tool name, arguments, session id or None) -> a StepResult as a dict; raises LookupError for
# an unknown or missing episode.
CallTool = Callable[[str, dict[str, Any], str | None], Awaitable[dict[str, Any]]]


def rpc_error(code: int, message: str, request_id: Any = None, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def _ok(result: Any, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


async def handle_mcp(payload: Any, call_tool: CallTool) -> dict[str, Any]:
    if not isinstance(payload, dict):
        return rpc_error(INVALID_REQUEST, "Invalid Request: expected a JSON-RPC 2.0 object")
    rid = payload.get("id")
    if not isinstance(rid, (str, int, type(None))) or isinstance(rid, bool):
        rid = None
    if payload.get("jsonrpc") != "2.0" or not isinstance(payload.get("method"), str):
        return rpc_error(
            INVALID_REQUEST, "Invalid Request: 'jsonrpc' must be \"2.0\" and 'method' a string", rid
        )
    method: str = payload["method"]
    params = payload.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return rpc_error(INVALID_PARAMS, "Params must be an object", rid)

    if method == "initialize":
        return _ok(
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "whipstudio", "version": __version__},
            },
            rid,
        )
    if method in ("ping", "notifications/initialized"):
        return _ok({}, rid)
    if method == "tools/list":
        return _ok({"tools": mcp_tools()}, rid)
    if method == "tools/call":
        name = params.get("name")
        arguments = params.get("arguments") or {}
        session = params.get("session_id") or params.get("episode_id")
        if not isinstance(name, str) or not name:
            return rpc_error(INVALID_PARAMS, "Missing 'name' in params", rid)
        if name not in {t["name"] for t in mcp_tools()}:
            return rpc_error(INVALID_PARAMS, f"Tool not found: {name}", rid)
        if not isinstance(arguments, dict):
            return rpc_error(INVALID_PARAMS, "'arguments' must be an object", rid)
        if session is not None and not isinstance(session, str):
            return rpc_error(INVALID_PARAMS, "'session_id' must be a string", rid)
        try:
            result = await call_tool(name, arguments, session)
        except LookupError as exc:
            return rpc_error(INVALID_PARAMS, str(exc.args[0] if exc.args else exc), rid)
        except RateLimitedError as exc:
            return rpc_error(RATE_LIMITED, str(exc), rid, {"retry_after_s": round(exc.wait_s, 1)})
        except Exception as exc:  # a sandbox failure: report it, never crash the endpoint
            return rpc_error(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", rid)
        obs = result.get("observation", {})
        return _ok(
            {
                "content": [{"type": "text", "text": strict_text(result)}],
                "structuredContent": result,
                "isError": bool(obs.get("error")),
            },
            rid,
        )
    return rpc_error(METHOD_NOT_FOUND, f"Method not found: {method}", rid)
