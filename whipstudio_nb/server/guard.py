"""What every request passes before any route: the checks that keep a web page the user
happens to visit, and an abusive client, from driving the server.

- Host: when bound to loopback, only loopback host names (no DNS rebinding).
- WebSocket Origin: loopback pages and ``--allow-origin`` ones; no Origin (a program) is fine.
- Bearer token, when configured.
- POST bodies: ``Content-Type: application/json`` (415 otherwise: the content types a page can
  send cross-site without a CORS preflight are all refused), at most ``max_body_bytes`` (413,
  counted while reading, so a body without Content-Length is cut off too), JSON nested at most
  ``max_json_depth`` deep (400) with no string longer than ``max_string_chars`` (422).
- Per-client rate limits. The client is the peer address: uvicorn rewrites it from
  X-Forwarded-For only for the proxies ``--forwarded-allow-ips`` names.
No CORS headers are ever sent.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import WhipError
from .config import ServerConfig, is_loopback
from .errors import error_response
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from .service import WhipServer

__all__ = [
    "GuardMiddleware",
    "JSONLimitError",
    "client_key",
    "json_limit_problem",
    "parse_json_limited",
    "rate_limit_message",
]


class JSONLimitError(WhipError, ValueError):
    """A JSON value over a limit. ``status``: 422 for a string or key too long (``code``
    too_large), 400 for nesting too deep or a non-JSON constant (invalid_action)."""

    code = "invalid_action"

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status = status
        self.code = code or ("too_large" if status == 422 else "invalid_action")
        super().__init__(message)


def json_limit_problem(value: Any, config: ServerConfig) -> JSONLimitError | None:
    """The first limit a decoded JSON value breaks: nesting depth or a string's length."""
    todo: list[tuple[Any, int, str]] = [(value, 1, "")]
    limit = config.max_string_chars or 0  # set by ServerConfig.__post_init__
    while todo:
        v, depth, where = todo.pop()
        if isinstance(v, str):
            if len(v) > limit:
                field = f" (field '{where.lstrip('.')}')" if where else ""
                return JSONLimitError(
                    422,
                    f"Invalid request: a string is longer than {limit} characters{field}",
                )
            continue
        if isinstance(v, (dict, list)):
            if depth > config.max_json_depth:
                return JSONLimitError(
                    400, f"JSON nested more than {config.max_json_depth} levels deep"
                )
            if isinstance(v, dict):
                for k, x in v.items():
                    if len(k) > limit:
                        return JSONLimitError(422, "Invalid request: a key is too long")
                    todo.append((x, depth + 1, f"{where}.{k}"))
            else:
                todo.extend((x, depth + 1, where) for x in v)
    return None


def _refuse_constant(token: str) -> Any:
    raise JSONLimitError(400, f"Malformed JSON body: {token} is not JSON (send null or a string)")


def parse_json_limited(raw: str | bytes, config: ServerConfig) -> Any:
    """json.loads under the server's limits; raises ValueError (JSONLimitError for a limit)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONLimitError(
            400, f"JSON nested more than {config.max_json_depth} levels deep"
        ) from None
    problem = json_limit_problem(value, config)
    if problem is not None:
        raise problem
    return value


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bucket(method: str, path: str) -> str | None:
    if method == "POST" and path in ("/reset", "/step", "/grader", "/mcp"):
        return path[1:]
    if method == "GET" and path == "/baseline":
        return "baseline"
    if method == "GET" and path.startswith("/baseline/task/"):
        return "baseline_task"
    if path == "/ws":
        return "ws"
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json"


class _BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    def __init__(self, app: ASGIApp, server: WhipServer) -> None:
        self.app = app
        self.server = server
        self.config = server.config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message, headers = refusal
            if scope["type"] == "websocket":  # before accept: uvicorn answers 403
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
                return
            extra: dict[str, Any] = {}
            if status == 429 and headers:
                extra.update(code="rate_limited", retry_after_s=int(headers["Retry-After"]))
            await error_response(status, message, headers=headers, **extra)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            await self._with_checked_body(scope, receive, send)
            return
        await self.app(scope, receive, send)

    # ------------------------------------------------------------------ header checks

    def _refusal(self, scope: Scope) -> tuple[int, str, dict[str, str] | None] | None:
        cfg = self.config
        if is_loopback(cfg.host) and not self._host_allowed(_header(scope, b"host")):
            return 403, "Host not allowed: this server answers to loopback names only", None
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            if origin is not None and not cfg.origin_allowed(origin):
                return 403, f"Origin not allowed: {origin}", None
        if cfg.token and not self._authorized(scope, cfg.token):
            return (
                401,
                "Missing or invalid bearer token: send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": 'Bearer realm="whipstudio"'},
            )
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            if not _is_json(_header(scope, b"content-type")):
                return 415, "Unsupported Media Type: send Content-Type: application/json", None
        bucket = _bucket(scope.get("method", "GET"), scope["path"])
        if bucket is not None:
            wait = self.server.limiter.check(bucket, client_key(scope))
            if wait is not None:
                return 429, *rate_limit_message(self.server.limiter, bucket, scope["path"], wait)
        return None

    def _host_allowed(self, host: str | None) -> bool:
        if host is None:  # HTTP/1.0 without Host: not a browser
            return True
        try:
            name = urlsplit("//" + host).hostname or ""
        except ValueError:
            return False
        if is_loopback(name) or name.endswith(".localhost"):
            return True
        return any(urlsplit(o).hostname == name for o in self.config.allow_origins)

    @staticmethod
    def _authorized(scope: Scope, token: str) -> bool:
        value = _header(scope, b"authorization")
        if value is None:
            return False
        scheme, _, given = value.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    # ------------------------------------------------------------------ the body

    async def _with_checked_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.config.max_body_bytes
        too_big = error_response(
            413,
            f"Request body too large: the limit is {cap} bytes ({cap / 1048576:g} MiB)",
            code="too_large",
        )
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            await too_big(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        del chunks
        if body.strip():
            try:
                parse_json_limited(body, self.config)
            except JSONLimitError as exc:
                if scope["path"] == "/mcp":
                    rpc = {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": -32600, "message": str(exc)},
                    }
                    await error_response(exc.status, "", body=rpc)(scope, receive, send)
                else:
                    await error_response(exc.status, str(exc), code=exc.code)(scope, receive, send)
                return
            except ValueError:
                pass  # malformed JSON: the route answers in its own format

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def rate_limit_message(
    limiter: RateLimiter, bucket: str, what: str, wait: float
) -> tuple[str, dict[str, str]]:
    limit = limiter.limits[bucket]
    retry = RateLimiter.retry_after_header(wait)
    return (
        f"Rate limit exceeded for {what}: {limit.describe()} per client. Retry after {retry} s.",
        {"Retry-After": retry},
    )
