"""openenv-core's MCP session methods (``openenv/session/create`` and ``close``) for the two
transports: over HTTP /mcp a session is a new episode of the caller's, its id the episode id;
over a WebSocket it is the connection's own episode, which only closing the socket ends."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from ..errors import UnknownTaskError
from ..tasks import load_task
from .service import WhipServer, default_task_id
from .sessions import Session, UnknownSessionError

__all__ = ["HttpMcpSessions", "WsMcpSessions"]


def _task_of(params: dict[str, Any]) -> tuple[str, int | None]:
    from .compat import resolve_task_name

    task = params.get("task_id") or params.get("task_name")
    seed = params.get("seed")
    task_id = resolve_task_name(task) if isinstance(task, str) and task else default_task_id()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        seed = None
    try:
        load_task(task_id, seed=seed)
    except UnknownTaskError as exc:
        raise LookupError(str(exc)) from None
    return task_id, seed


class HttpMcpSessions:
    def __init__(self, server: WhipServer, scope: Scope) -> None:
        self.server = server
        self.scope = scope

    async def create(self, params: dict[str, Any]) -> str:
        task_id, seed = _task_of(params)
        self.server.check_rate("reset", self.scope, "MCP openenv/session/create")
        owner = self.server.owner(self.scope)
        session = await run_in_threadpool(self.server.sessions.create, "http", owner=owner)
        try:
            await run_in_threadpool(self.server.reset_session, session, task_id, seed)
        except BaseException:
            await run_in_threadpool(self.server.sessions.close_session, session.id)
            raise
        return session.id

    async def close(self, session_id: str) -> str | None:
        try:
            self.server.sessions.get(session_id)
        except UnknownSessionError as exc:
            return str(exc)
        await run_in_threadpool(self.server.sessions.close_session, session_id)
        return None


class WsMcpSessions:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def create(self, params: dict[str, Any]) -> str:
        return self.session.id

    async def close(self, session_id: str) -> str | None:
        if session_id == self.session.id:
            return "Cannot close active WebSocket-managed session via MCP method"
        return f"Unknown session_id: {session_id}"
