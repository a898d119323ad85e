"""A small MCP (JSON-RPC 2.0) surface: the debugging tools as MCP tools, for POST /mcp and the
``mcp`` WebSocket message. ``tools/call`` runs a step in the caller's episode. Plus
openenv-core's session methods, ``openenv/session/create`` (a new episode; its id is the
``session_id``) and ``openenv/session/close``, as openenv-core's own server has them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .._version import __version__
from ..errors import WhipError
from .encoding import strict_text
from .schemas import mcp_tools

__all__ = [
    "PARSE_ERROR",
    "McpSessions",
    "RateLimitedError",
    "handle_mcp",
    "mcp_as_observation",
    "rpc_error",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
RATE_LIMITED = -32029


class RateLimitedError(WhipError):
    """A limit inside a connection (WebSocket messages, MCP calls); ``wait_s`` until a retry."""

    code = "rate_limited"

    def __init__(self, message: str, wait_s: float) -> None:
        self.wait_s = wait_s
        super().__init__(message)

    @property
    def extra(self) -> dict[str, Any]:
        return {"retry_after_s": round(self.wait_s, 1)}


PROTOCOL_VERSION = "2025-06-18"

# (tool name, arguments, session id or None) -> a StepResult as a dict; raises LookupError for
# an unknown or missing episode.
CallTool = Callable[[str, dict[str, Any], str | None], Awaitable[dict[str, Any]]]


class McpSessions(Protocol):
    """openenv/session/* for one transport. ``create`` raises CapacityError at the cap;
    ``close`` returns an error message, or None once closed."""

    async def create(self, params: dict[str, Any]) -> str: ...

    async def close(self, session_id: str) -> str | None: ...


def rpc_error(code: int, message: str, request_id: Any = None, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def _ok(result: Any, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


async def handle_mcp(
    payload: Any, call_tool: CallTool, sessions: McpSessions | None = None
) -> dict[str, Any]:
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
    if method in ("openenv/session/create", "openenv/session/close") and sessions is not None:
        return await _session_method(method, params, rid, sessions)
    if method == "tools/list":
        return _ok({"tools": mcp_tools()}, rid)
    if method == "tools/call":
        return await _tools_call(params, rid, call_tool)
    return rpc_error(METHOD_NOT_FOUND, f"Method not found: {method}", rid)


async def _tools_call(params: dict[str, Any], rid: Any, call_tool: CallTool) -> dict[str, Any]:
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
        return rpc_error(RATE_LIMITED, str(exc), rid, exc.extra)
    except Exception as exc:  # a sandbox failure: report it, never crash the endpoint
        return rpc_error(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", rid)
    obs = result.get("observation", {})
    return _ok(
        {
            "content": [{"type": "text", "text": strict_text(result)}],
            "structuredContent": result,
            "data": result,  # what openenv's MCPToolClient.call_tool returns
            "isError": bool(obs.get("error")),
        },
        rid,
    )


async def _session_method(
    method: str, params: dict[str, Any], rid: Any, sessions: McpSessions
) -> dict[str, Any]:
    from .sessions import CapacityError

    if method == "openenv/session/create":
        try:
            return _ok({"session_id": await sessions.create(params)}, rid)
        except CapacityError as exc:
            return rpc_error(SERVER_ERROR, str(exc), rid, exc.extra)
        except LookupError as exc:  # an unknown task id
            return rpc_error(INVALID_PARAMS, str(exc.args[0] if exc.args else exc), rid)
        except RateLimitedError as exc:
            return rpc_error(RATE_LIMITED, str(exc), rid, exc.extra)
    sid = params.get("session_id")
    if not isinstance(sid, str) or not sid:
        return rpc_error(INVALID_PARAMS, "Invalid params - 'session_id' is required", rid)
    problem = await sessions.close(sid)
    if problem is not None:
        return rpc_error(INVALID_PARAMS, problem, rid)
    return _ok({"session_id": sid, "closed": True}, rid)


def mcp_as_observation(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """An MCP reply in the observation shape openenv's MCPToolClient reads over /ws
    (ListToolsObservation: ``tools``; CallToolObservation: ``tool_name``, ``result``,
    ``error``)."""
    result = reply.get("result") or {}
    if request["method"] == "tools/list":
        return {"observation": {"tools": result.get("tools", [])}, "reward": None, "done": False}
    name = request["params"].get("name")
    if "error" in reply:
        message = str(reply["error"].get("message", "error"))
        kind = "tool_not_found" if message.startswith("Tool not found") else "invalid_args"
        error = {"error_type": kind, "message": message}
        return {
            "observation": {"tool_name": name, "result": None, "error": error},
            "reward": None,
            "done": False,
        }
    step = result.get("structuredContent", {})
    return {
        "observation": {"tool_name": name, "result": {"data": step}, "error": None},
        "reward": step.get("reward"),
        "done": bool(step.get("done")),
    }
