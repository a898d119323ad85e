"""The server's one error model: an error code (``whipstudio_nb.errors.ERROR_CODES``) decides
the HTTP status, and every error body is JSON ``{"error": <message>, "code": <code>, ...}``.

- ``status_for_code``: the status for a code, for raised errors and in-band step errors alike.
- ``install_error_handlers``: one handler for every ``WhipError`` (mapped by its ``code``), one
  for request validation, one for Starlette's HTTP errors (404 for an unknown path, 405, ...),
  and a last one that turns anything unexpected into a logged 500.
- ``describe_validation``: a request-validation failure as one message.

Nothing a client sends produces a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import WhipError, format_validation_error
from .encoding import StrictJSONResponse
from .ratelimit import RateLimiter

__all__ = [
    "RETRY_AFTER",
    "STATUS_BY_CODE",
    "describe_validation",
    "error_response",
    "install_error_handlers",
    "observation_code",
    "status_for_code",
]

log = logging.getLogger("whipstudio_nb.server")

# A refused step answers 4xx/503; a step that ran answers 200, even when its tool reported an
# error in-band (a timeout, a dead kernel, a failed tool, a line edit that does not fit: the
# turn counted, the observation says what happened).
STATUS_BY_CODE: dict[str, int] = {
    "no_episode": 409,
    "episode_done": 409,
    "turn_limit": 409,
    "invalid_action": 422,
    "unknown_action": 422,
    "security_violation": 422,
    "syntax_error": 422,
    "too_large": 422,  # an oversized field; the guard answers 413 for an oversized body
    "edit_error": 200,  # in-band: the edit tool ran (and the turn counted)
    "timeout": 200,
    "kernel_died": 200,
    "tool_error": 200,
    "sandbox_unavailable": 503,
    "unknown_task": 404,
    "unknown_session": 404,
    "capacity": 503,
    "shutting_down": 503,
    "rate_limited": 429,
}

# Retry-After seconds for the codes a client should simply retry.
RETRY_AFTER: dict[str, str] = {"capacity": "30", "sandbox_unavailable": "10"}


def status_for_code(code: str | None) -> int:
    """The HTTP status for an error code: None (no error) is 200; a code with no client-facing
    meaning (``task_pack``, ``config``, anything unknown) is a server fault, 500."""
    if code is None:
        return 200
    return STATUS_BY_CODE.get(code, 500)


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    *,
    code: str | None = None,
    **extra: Any,
) -> StrictJSONResponse:
    """``{"error": message, "code": code, **extra}`` (no ``code`` when None); ``body`` replaces
    the whole content (the guard's JSON-RPC errors on /mcp)."""
    if body is None:
        body = {"error": message, **({"code": code} if code is not None else {}), **extra}
    return StrictJSONResponse(body, status_code=status, headers=headers)


def observation_code(dumped: dict[str, Any]) -> str | None:
    """The error code of a step's observation (``dumped``: its JSON form); None if no error."""
    code = dumped.get("error_code")
    return code if isinstance(code, str) else None


# ---------------------------------------------------------------------- request validation


class _OneError:
    """One pydantic error, in the shape ``format_validation_error`` reads."""

    def __init__(self, err: dict[str, Any]) -> None:
        self._err = err

    def errors(self) -> list[dict[str, Any]]:
        return [self._err]


_REQUEST_PARTS = ("body", "query", "path", "header")


def _clause(err: dict[str, Any]) -> str:
    loc = [str(x) for x in err.get("loc", ()) if x not in _REQUEST_PARTS]
    field = ".".join(loc) or "body"
    kind = err.get("type")
    if not loc and err.get("loc", ("body",))[0] == "body" and kind != "missing":
        return "the request body must be a JSON object (send Content-Type: application/json)"
    if kind == "extra_forbidden" and field == "output":
        return (
            "field 'output' is not accepted: the grader runs the code and scores what it "
            "does, never a submitted output"
        )
    if kind == "extra_forbidden":
        return f"field '{field}' is not accepted"
    if not loc:  # the generic formatter would call it the action
        return "field 'body' is required" if kind == "missing" else f"field 'body': {err['msg']}"
    return format_validation_error(_OneError(err), prefix="", skip=_REQUEST_PARTS)


def describe_validation(exc: RequestValidationError) -> tuple[int, str]:
    """A request that failed validation: 400 for malformed JSON, else 422, with one message
    naming every problem."""
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return 400, f"Malformed JSON body: {ctx.get('error', err.get('msg'))}"
        problems.append(_clause(err))
    return 422, "Invalid request: " + "; ".join(problems or ["malformed request"])


# ---------------------------------------------------------------------- handlers


def _whip_error_response(exc: WhipError) -> StrictJSONResponse | None:
    """The response for a raised WhipError; None for a server fault (a code with no client
    status, or one that only ever comes in-band), which answers 500."""
    status = status_for_code(exc.code)
    if exc.code not in STATUS_BY_CODE or status < 400:
        return None
    message = str(exc)
    if exc.code == "sandbox_unavailable":
        message = f"Sandbox unavailable: {message}"
    retry = RETRY_AFTER.get(exc.code)
    wait_s = getattr(exc, "wait_s", None)
    if isinstance(wait_s, (int, float)):
        retry = RateLimiter.retry_after_header(wait_s)
    headers = {"Retry-After": retry} if retry is not None else None
    extra = dict(getattr(exc, "extra", None) or {})
    return error_response(status, message, headers=headers, code=exc.code, **extra)


def _internal_error(request: Request, exc: Exception) -> StrictJSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"Internal server error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app raises answers JSON in the shape above."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> StrictJSONResponse:
        status, message = describe_validation(exc)
        return error_response(status, message, code="invalid_action")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> StrictJSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(WhipError)
    async def _whip(request: Request, exc: WhipError) -> StrictJSONResponse:
        response = _whip_error_response(exc)
        return response if response is not None else _internal_error(request, exc)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> StrictJSONResponse:
        return _internal_error(request, exc)
