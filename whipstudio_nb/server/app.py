"""The FastAPI app: the reference's REST endpoints plus OpenEnv's /ws, /schema, /metadata, /mcp.

Every error is JSON ``{"error": ...}`` with a 4xx status for client mistakes; nothing a client
sends produces a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..env import EPISODE_DONE_MSG, NO_EPISODE_MSG
from ..errors import SandboxError, UnknownTaskError
from ..models import ErrorObservation, State, StepResult
from ..sandbox import Sandbox
from ..tasks import find_task_dirs, list_tasks, load_task
from .config import ServerConfig
from .mcp import PARSE_ERROR, handle_mcp, rpc_error
from .ratelimit import RateLimiter
from .schemas import (
    CloseRequest,
    GraderRequest,
    ResetRequest,
    StepRequest,
    action_schema,
    observation_schema,
    state_schema,
    tool_list,
)
from .sessions import (
    CapacityError,
    EpisodeIdInUseError,
    Session,
    SessionManager,
    ShuttingDownError,
    UnknownSessionError,
)
from .ws import websocket_session

__all__ = ["EPISODE_HEADER", "Metrics", "WhipServer", "create_app"]

log = logging.getLogger("whipstudio_nb.server")

EPISODE_HEADER = "X-Episode-Id"
DESCRIPTION = (
    "WhipStudio: an ML-debugging gym. Investigate a broken PyTorch training script with "
    "sandboxed debugging tools, submit a fix, and get a reward in [0, 1] measured by running it."
)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class Metrics:
    """The reference's /metrics counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.total_resets = 0
        self.total_steps = 0
        self.total_grades = 0
        self.rewards: list[float] = []
        self.task_distribution: Counter[str] = Counter()
        self.tool_usage: Counter[str] = Counter()

    def reset(self, task_id: str) -> None:
        with self._lock:
            self.total_resets += 1
            self.task_distribution[task_id] += 1

    def step(self, action_type: str, result: StepResult) -> None:
        with self._lock:
            self.total_steps += 1
            self.tool_usage[action_type] += 1
            if action_type == "submit_fix" and result.observation.error is None:
                self.rewards.append(result.reward)

    def grade(self) -> None:
        with self._lock:
            self.total_grades += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            avg = sum(self.rewards) / len(self.rewards) if self.rewards else 0.0
            return {
                "total_resets": self.total_resets,
                "total_steps": self.total_steps,
                "avg_reward": round(avg, 4),
                "task_distribution": dict(self.task_distribution),
                "tool_usage": dict(self.tool_usage),
                # additions
                "total_submissions": len(self.rewards),
                "total_grades": self.total_grades,
                "uptime_s": round(time.time() - self.started, 1),
            }


def step_status(result: StepResult) -> int:
    """200 for a step that ran (even if the tool reported an error in-band); 4xx for a step
    the environment refused: 409 when the episode does not accept steps, 422 for an invalid,
    unknown or forbidden action."""
    obs = result.observation
    if not isinstance(obs, ErrorObservation) or obs.error is None:
        return 200
    if obs.error in (EPISODE_DONE_MSG, NO_EPISODE_MSG) or obs.error.startswith("Maximum turns"):
        return 409
    return 422


def step_body(result: StepResult, episode_id: str) -> dict[str, Any]:
    obs = result.observation.model_dump(mode="json")
    body: dict[str, Any] = {
        "observation": obs,
        "reward": result.reward,
        "done": result.done,
        "episode_id": episode_id,
    }
    if obs.get("error"):  # the reference's flat error shape, alongside the observation
        body.update(error=obs["error"], episode_done=obs["episode_done"], turn=obs["turn"])
    return body


class WhipServer:
    """What the routes share: configuration, sessions, rate limits, metrics."""

    def __init__(
        self, config: ServerConfig, sandbox_factory: Callable[[], Sandbox] | None = None
    ) -> None:
        self.config = config
        env_kwargs: dict[str, object] = {"tool_timeout_s": config.tool_timeout_s}
        if config.max_turns is not None:
            env_kwargs["max_turns"] = config.max_turns
        self.sessions = SessionManager(
            max_sessions=config.max_sessions,
            idle_timeout_s=config.idle_timeout_s,
            sandbox_factory=sandbox_factory or (lambda: Sandbox(pool_size=config.pool_size)),
            env_kwargs=env_kwargs,
        )
        self.limiter = RateLimiter(config.rate_limits)
        self.metrics = Metrics()

    # -------------------------------------------------------------- episode operations

    def reset_session(self, session: Session, task_id: str, seed: int | None) -> dict[str, Any]:
        with self.sessions.use(session) as env:
            obs = env.reset(task_id, seed=seed)
        self.metrics.reset(obs.task_id)
        data = obs.model_dump(mode="json")
        data["episode_id"] = session.id
        return {"observation": data, "reward": 0.0, "done": False, "episode_id": session.id}

    def step_session(self, session: Session, action: Any) -> StepResult:
        with self.sessions.use(session) as env:
            result = env.step(action)
        self.metrics.step(result.observation.action_type, result)
        return result

    def state_of(self, session: Session | None) -> dict[str, Any]:
        if session is None:
            return State().model_dump(mode="json")
        with self.sessions.use(session) as env:
            data = env.state().model_dump(mode="json")
        data["episode_id"] = session.id
        return data

    def close(self) -> None:
        self.sessions.close()


def default_task_id() -> str:
    ids = list(find_task_dirs())
    return "task1" if "task1" in ids or not ids else ids[0]


def _client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _bucket(method: str, path: str) -> str | None:
    if method == "POST" and path in ("/reset", "/step", "/grader"):
        return path[1:]
    if method == "GET" and path == "/baseline":
        return "baseline"
    if method == "GET" and path.startswith("/baseline/task/"):
        return "baseline_task"
    return None


class GuardMiddleware:
    """Bearer-token auth (HTTP and WebSocket) and per-client rate limits, before any route."""

    def __init__(self, app: ASGIApp, server: WhipServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = self.server.config.token
        if token and not self._authorized(scope, token):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
                return
            resp = error_response(
                401,
                "Missing or invalid bearer token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="whipstudio"'},
            )
            await resp(scope, receive, send)
            return
        if scope["type"] == "http":
            bucket = _bucket(scope["method"], scope["path"])
            if bucket is not None:
                wait = self.server.limiter.check(bucket, _client_key(scope))
                if wait is not None:
                    limit = self.server.limiter.limits[bucket]
                    retry = RateLimiter.retry_after_header(wait)
                    resp = error_response(
                        429,
                        f"Rate limit exceeded for {scope['path']}: {limit.describe()} per "
                        f"client. Retry after {retry} s.",
                        headers={"Retry-After": retry},
                        retry_after_s=int(retry),
                    )
                    await resp(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def _authorized(scope: Scope, token: str) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), token.encode()
                )
        return False


def _describe_validation(exc: RequestValidationError) -> tuple[int, str]:
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return 400, f"Malformed JSON body: {ctx.get('error', err.get('msg'))}"
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        kind = err.get("type")
        if not loc and err.get("loc", ("body",))[0] == "body" and kind != "missing":
            problems.append(
                "the request body must be a JSON object (send Content-Type: application/json)"
            )
        elif kind == "extra_forbidden" and field == "output":
            problems.append(
                "field 'output' is not accepted: the grader runs the code and scores what it "
                "does, never a submitted output"
            )
        elif kind == "missing":
            problems.append(f"field '{field}' is required")
        elif kind == "extra_forbidden":
            problems.append(f"field '{field}' is not accepted")
        else:
            problems.append(f"field '{field}': {err.get('msg')}")
    return 422, "Invalid request: " + "; ".join(problems or ["malformed request"])


def create_app(
    config: ServerConfig | None = None, *, sandbox_factory: Callable[[], Sandbox] | None = None
) -> FastAPI:
    config = config or ServerConfig()
    server = WhipServer(config, sandbox_factory)

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

    app = FastAPI(
        title="WhipStudio",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
    )
    app.state.whip = server
    app.add_middleware(GuardMiddleware, server=server)

    # ------------------------------------------------------------------ error shapes

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe_validation(exc)
        return error_response(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(UnknownTaskError)
    async def _unknown_task(request: Request, exc: UnknownTaskError) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(UnknownSessionError)
    async def _unknown_session(request: Request, exc: UnknownSessionError) -> JSONResponse:
        return error_response(404, str(exc), episode_id=exc.episode_id)

    @app.exception_handler(CapacityError)
    async def _capacity(request: Request, exc: CapacityError) -> JSONResponse:
        return error_response(
            503,
            str(exc),
            headers={"Retry-After": "30"},
            active_sessions=exc.active_sessions,
            max_sessions=exc.max_sessions,
        )

    @app.exception_handler(EpisodeIdInUseError)
    async def _in_use(request: Request, exc: EpisodeIdInUseError) -> JSONResponse:
        return error_response(409, str(exc), episode_id=exc.episode_id)

    @app.exception_handler(ShuttingDownError)
    async def _closing(request: Request, exc: ShuttingDownError) -> JSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(SandboxError)
    async def _sandbox(request: Request, exc: SandboxError) -> JSONResponse:
        return error_response(503, f"Sandbox unavailable: {exc}", headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"Internal server error: {type(exc).__name__}")

    # ------------------------------------------------------------------ reference API

    @app.post("/reset", tags=["Episode"], summary="Start a new debugging episode")
    async def reset(
        body: Annotated[ResetRequest | None, Body()] = None,
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> JSONResponse:
        body = body or ResetRequest()
        task_id = body.task_id or default_task_id()
        load_task(task_id, seed=body.seed)  # unknown ids: 404 before any session exists
        eid = body.episode_id or x_episode_id
        sessions = server.sessions
        session: Session
        if eid:
            try:
                session = sessions.get(eid)
            except UnknownSessionError:
                session = await run_in_threadpool(sessions.create, "http", eid)
        else:
            session = await run_in_threadpool(lambda: sessions.create("http", as_default=True))
        data = await run_in_threadpool(server.reset_session, session, task_id, body.seed)
        return JSONResponse(data)

    @app.post("/step", tags=["Episode"], summary="Execute an action (tool call or submit_fix)")
    async def step(
        body: StepRequest, x_episode_id: str | None = Header(default=None, max_length=255)
    ) -> JSONResponse:
        session = server.sessions.find(body.episode_id or x_episode_id)
        if session is None:
            return error_response(409, NO_EPISODE_MSG, episode_done=True, reward=0.0)
        result = await run_in_threadpool(server.step_session, session, body.action)
        payload = step_body(result, session.id)
        if body.request_id is not None:
            payload["request_id"] = body.request_id
        return JSONResponse(payload, status_code=step_status(result))

    @app.get("/state", tags=["Episode"], summary="Get the current session state")
    async def state(
        episode_id: str | None = Query(default=None, max_length=255),
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> JSONResponse:
        session = server.sessions.find(episode_id or x_episode_id)
        return JSONResponse(await run_in_threadpool(server.state_of, session))

    @app.post("/close", tags=["Episode"], summary="End an episode and free its session")
    async def close(
        body: Annotated[CloseRequest | None, Body()] = None,
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> JSONResponse:
        eid = (body.episode_id if body else None) or x_episode_id
        if not eid:
            return error_response(422, "Invalid request: field 'episode_id' is required")
        if not await run_in_threadpool(server.sessions.close_session, eid):
            raise UnknownSessionError(eid, server.sessions.idle_timeout_s)
        return JSONResponse({"episode_id": eid, "closed": True})

    @app.get("/tasks", tags=["Info"], summary="List the debugging tasks")
    async def tasks() -> JSONResponse:
        infos = await run_in_threadpool(list_tasks)
        return JSONResponse({"tasks": [t.model_dump(mode="json") for t in infos]})

    @app.get("/tools", tags=["Info"], summary="List the debugging tools with their schemas")
    async def tools() -> JSONResponse:
        return JSONResponse({"tools": tool_list()})

    @app.post("/grader", tags=["Grading"], summary="Grade a code submission by running it")
    async def grader(body: GraderRequest) -> JSONResponse:
        task = load_task(body.task_id, seed=body.seed)
        from ..grading import grade_code

        result = await run_in_threadpool(grade_code, task, body.code, server.sessions.sandbox)
        server.metrics.grade()
        return JSONResponse(
            {"task_id": task.info.id, "score": result.score, "details": result.details}
        )

    @app.get("/baseline", tags=["Baseline"], summary="Run the baseline agent on every task")
    async def baseline(
        model_id: str | None = Query(default=None, min_length=1, max_length=200),
        use_tools: bool = Query(default=True),
    ) -> JSONResponse:
        try:
            from ..agent import run_baseline
        except ImportError as exc:
            return _agent_missing(exc)
        try:
            result = await run_in_threadpool(
                lambda: run_baseline(
                    model=model_id, use_tools=use_tools, env_factory=server.sessions.new_env
                )
            )
        except Exception as exc:
            return _agent_failed(exc)
        return JSONResponse(result)

    @app.get(
        "/baseline/task/{task_id}",
        tags=["Baseline"],
        summary="Run the baseline agent on one task, with details",
    )
    async def baseline_task(
        task_id: str = Path(max_length=200),
        model_id: str | None = Query(default=None, min_length=1, max_length=200),
        use_tools: bool = Query(default=True),
    ) -> JSONResponse:
        load_task(task_id)
        try:
            from ..agent import run_baseline_task
        except ImportError as exc:
            return _agent_missing(exc)
        try:
            result = await run_in_threadpool(
                lambda: run_baseline_task(
                    task_id,
                    model=model_id,
                    use_tools=use_tools,
                    env_factory=server.sessions.new_env,
                )
            )
        except Exception as exc:
            return _agent_failed(exc)
        return JSONResponse(result)

    @app.get("/health", tags=["Health"], summary="Health check")
    async def health() -> JSONResponse:
        counts = server.sessions.counts()
        return JSONResponse(
            {
                "status": "healthy",
                "version": __version__,
                "tasks_available": len(find_task_dirs()),
                "tools_available": len(tool_list()),
                "active_sessions": counts["active"],
                "max_sessions": server.sessions.max_sessions,
            }
        )

    @app.get("/metrics", tags=["Health"], summary="Runtime metrics")
    async def metrics() -> JSONResponse:
        data = server.metrics.snapshot()
        data["active_sessions"] = server.sessions.counts()["active"]
        return JSONResponse(data)

    # ------------------------------------------------------------------ OpenEnv protocol

    @app.get("/schema", tags=["Schema"], summary="Action, observation and state JSON schemas")
    async def schema() -> JSONResponse:
        return JSONResponse(
            {
                "action": action_schema(),
                "observation": observation_schema(),
                "state": state_schema(),
            }
        )

    @app.get("/metadata", tags=["Info"], summary="Environment metadata")
    async def metadata() -> JSONResponse:
        return JSONResponse(
            {
                "name": "whipstudio",
                "description": DESCRIPTION,
                "readme_content": None,
                "version": __version__,
                "author": "WhipStudio",
                "documentation_url": None,
            }
        )

    @app.post("/mcp", tags=["MCP"], summary="MCP JSON-RPC 2.0 endpoint (tools/list, tools/call)")
    async def mcp(request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(rpc_error(PARSE_ERROR, "Parse error"))

        async def call_tool(name: str, args: dict[str, Any], sid: str | None) -> dict[str, Any]:
            try:
                session = server.sessions.find(sid)
            except UnknownSessionError as exc:
                raise LookupError(str(exc)) from None
            if session is None:
                raise LookupError(NO_EPISODE_MSG)
            result = await run_in_threadpool(
                server.step_session, session, {**args, "action_type": name}
            )
            return step_body(result, session.id)

        return JSONResponse(await handle_mcp(payload, call_tool))

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket_session(websocket, server)

    return app


def _agent_missing(exc: ImportError) -> JSONResponse:
    return error_response(501, f"The baseline agent is not available in this installation: {exc}")


def _agent_failed(exc: Exception) -> JSONResponse:
    log.warning("baseline agent failed: %s", exc)
    return error_response(502, f"The baseline agent failed: {type(exc).__name__}: {exc}")


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
