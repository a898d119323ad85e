"""The FastAPI app: the reference's REST endpoints plus OpenEnv's /ws, /schema, /metadata, /mcp.

``create_app`` only assembles: the shared ``WhipServer`` (``service``), the guard middleware,
the routers (``routes_env``, ``routes_info``, ``routes_mcp``, ``pages``) and the error
handlers (``errors``). Every error is JSON ``{"error": ..., "code": ...}`` with a 4xx status
for client mistakes; nothing a client sends produces a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..sandbox import Sandbox
from . import pages, routes_env, routes_info, routes_mcp
from .config import ServerConfig
from .errors import install_error_handlers
from .guard import GuardMiddleware
from .service import DESCRIPTION, EPISODE_HEADER, WhipServer, default_task_id

__all__ = ["EPISODE_HEADER", "WhipServer", "create_app", "default_task_id"]

log = logging.getLogger("whipstudio_nb.server")


def create_app(
    config: ServerConfig | None = None, *, sandbox_factory: Callable[[], Sandbox] | None = None
) -> FastAPI:
    server = WhipServer(config or ServerConfig(), sandbox_factory)
    app = FastAPI(
        title="WhipStudio",
        description=DESCRIPTION,
        version=__version__,
        lifespan=_lifespan(server),
    )
    app.state.whip = server
    app.add_middleware(GuardMiddleware, server=server)
    app.include_router(routes_env.router)
    app.include_router(routes_info.router)
    app.include_router(routes_mcp.router)
    app.include_router(pages.router)  # the original's /baseline/health, /session/state and /
    install_error_handlers(app)
    return app


Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def _lifespan(server: WhipServer) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Start the fork server and warm kernels in the background: serving starts at once.
        threading.Thread(target=lambda: server.sessions.sandbox, daemon=True).start()
        reaper = asyncio.create_task(_reap_loop(server))
        try:
            yield
        finally:
            reaper.cancel()
            log.info("shutting down: closing every session and sandbox kernel")
            await run_in_threadpool(server.close)

    return lifespan


async def _reap_loop(server: WhipServer) -> None:
    period = max(0.5, min(30.0, server.sessions.idle_timeout_s / 4))
    while True:
        await asyncio.sleep(period)
        try:
            expired = await run_in_threadpool(server.sessions.reap_idle)
        except Exception:  # never let the reaper die
            log.exception("session reaper failed")
            continue
        if expired:
            log.info("expired %d idle session(s)", len(expired))
