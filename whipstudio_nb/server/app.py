"""The FastAPI app: the reference's REST endpoints plus OpenEnv's /ws, /schema, /metadata, /mcp.

Every error is JSON ``{"error": ...}`` with a 4xx status for client mistakes; nothing a client
sends produces a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..env import EPISODE_DONE_MSG, NO_EPISODE_MSG
from ..errors import SandboxError, UnknownTaskError
from ..models import ErrorObservation, State, StepResult, to_strict_json
from ..sandbox import Sandbox
from ..tasks import find_task_dirs, list_tasks, load_task
from .compat import adapt_action
from .config import ServerConfig
from .encoding import StrictJSONResponse, error_response, step_payload
from .guard import GuardMiddleware, client_key, parse_json_limited, rate_limit_message
from .mcp import PARSE_ERROR, RateLimitedError, handle_mcp, rpc_error
from .mcp_sessions import HttpMcpSessions
from .metrics import Metrics
from .pages import add_pages
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
    Session,
    SessionManager,
    ShuttingDownError,
    UnknownSessionError,
)
from .ws import websocket_session

__all__ = ["EPISODE_HEADER", "WhipServer", "create_app"]

log = logging.getLogger("whipstudio_nb.server")

EPISODE_HEADER = "X-Episode-Id"
DESCRIPTION = (
    "WhipStudio: an ML-debugging gym. Investigate a broken PyTorch training script with "
    "sandboxed debugging tools, submit a fix, and get a reward in [0, 1] measured by running it."
)


def step_status(result: StepResult) -> int:
    """200 for a step that ran (even if the tool reported an error in-band); 4xx for a step
    the environment refused: 409 when the episode does not accept steps, 422 for an invalid,
    unknown or forbidden action; 503 when the sandbox could not run it (no turn was used)."""
    obs = result.observation
    if not isinstance(obs, ErrorObservation) or obs.error is None:
        return 200
    if obs.error in (EPISODE_DONE_MSG, NO_EPISODE_MSG) or obs.error.startswith("Maximum turns"):
        return 409
    if obs.error.startswith("Sandbox unavailable:"):
        return 503
    return 422


def step_body(result: StepResult, episode_id: str) -> dict[str, Any]:
    body = step_payload(result, episode_id=episode_id)
    obs = body["observation"]
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
        self.sessions.revive(session)
        with self.sessions.use(session) as env:
            obs = env.reset(task_id, seed=seed)
        self.metrics.reset(obs.task_id)
        data = to_strict_json(obs)
        data["episode_id"] = session.id
        return {"observation": data, "reward": 0.0, "done": False, "episode_id": session.id}

    def step_session(self, session: Session, action: Any) -> StepResult:
        with self.sessions.use(session) as env:
            result = env.step(action)  # code too nested to parse: refused in-band by env
            if result.done:
                self.sessions.finish(session)
        self.metrics.step(result.observation.action_type, result)
        return result

    def state_of(self, session: Session | None) -> dict[str, Any]:
        if session is None:
            return State().model_dump(mode="json")
        with self.sessions.use(session) as env:
            data = env.state().model_dump(mode="json")
        data["episode_id"] = session.id
        return data

    def owner(self, scope: Any) -> str:
        """Whose default session a request without an episode id uses: with auth on, the
        token's (there is one token); else the client address's."""
        return "token" if self.config.token else "addr:" + client_key(scope)

    def check_rate(self, bucket: str, scope: Any, what: str) -> None:
        """For limits inside a connection (WebSocket messages, MCP calls)."""
        wait = self.limiter.check(bucket, client_key(scope))
        if wait is not None:
            message, _ = rate_limit_message(self.limiter, bucket, what, wait)
            raise RateLimitedError(message, wait)

    def close(self) -> None:
        self.sessions.close()


def default_task_id() -> str:
    ids = list(find_task_dirs())
    return "task1" if "task1" in ids or not ids else ids[0]


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
    async def _validation(request: Request, exc: RequestValidationError) -> StrictJSONResponse:
        status, message = _describe_validation(exc)
        return error_response(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> StrictJSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(UnknownTaskError)
    async def _unknown_task(request: Request, exc: UnknownTaskError) -> StrictJSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(UnknownSessionError)
    async def _unknown_session(request: Request, exc: UnknownSessionError) -> StrictJSONResponse:
        return error_response(404, str(exc), episode_id=exc.episode_id)

    @app.exception_handler(CapacityError)
    async def _capacity(request: Request, exc: CapacityError) -> StrictJSONResponse:
        return error_response(
            503,
            str(exc),
            headers={"Retry-After": "30"},
            active_sessions=exc.active_sessions,
            max_sessions=exc.max_sessions,
        )

    @app.exception_handler(ShuttingDownError)
    async def _closing(request: Request, exc: ShuttingDownError) -> StrictJSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(SandboxError)
    async def _sandbox(request: Request, exc: SandboxError) -> StrictJSONResponse:
        return error_response(503, f"Sandbox unavailable: {exc}", headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> StrictJSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"Internal server error: {type(exc).__name__}")

    # ------------------------------------------------------------------ reference API

    @app.post("/reset", tags=["Episode"], summary="Start a new debugging episode")
    async def reset(
        request: Request,
        body: Annotated[ResetRequest | None, Body()] = None,
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> StrictJSONResponse:
        body = body or ResetRequest()
        task_id = body.task_id or default_task_id()
        load_task(task_id, seed=body.seed)  # unknown ids: 404 before any session exists
        eid = body.episode_id or x_episode_id
        sessions = server.sessions
        session: Session
        if eid:  # only ever an id this server issued: a client never mints one
            session = sessions.get(eid)
        else:
            owner = server.owner(request.scope)
            session = await run_in_threadpool(
                lambda: sessions.create("http", owner=owner, as_default=True)
            )
        data = await run_in_threadpool(server.reset_session, session, task_id, body.seed)
        return StrictJSONResponse(data)

    @app.post("/step", tags=["Episode"], summary="Execute an action (tool call or submit_fix)")
    async def step(
        request: Request,
        body: StepRequest,
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> StrictJSONResponse:
        action, inner_id = adapt_action(body.action)  # the original clients' shapes
        session = server.sessions.find(
            body.episode_id or x_episode_id or inner_id, server.owner(request.scope)
        )
        if session is None:
            return error_response(409, NO_EPISODE_MSG, episode_done=True, reward=0.0)
        result = await run_in_threadpool(server.step_session, session, action)
        payload = step_body(result, session.id)
        if body.request_id is not None:
            payload["request_id"] = body.request_id
        if isinstance(action.get("attempt_number"), int):
            payload["attempt_number"] = action["attempt_number"]
        status = step_status(result)
        headers = {"Retry-After": "10"} if status == 503 else None
        return StrictJSONResponse(payload, status_code=status, headers=headers)

    @app.get("/state", tags=["Episode"], summary="Get the current session state")
    async def state(
        request: Request,
        episode_id: str | None = Query(default=None, max_length=255),
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> StrictJSONResponse:
        session = server.sessions.find(episode_id or x_episode_id, server.owner(request.scope))
        return StrictJSONResponse(await run_in_threadpool(server.state_of, session))

    @app.post("/close", tags=["Episode"], summary="End an episode and free its session")
    async def close(
        body: Annotated[CloseRequest | None, Body()] = None,
        x_episode_id: str | None = Header(default=None, max_length=255),
    ) -> StrictJSONResponse:
        eid = (body.episode_id if body else None) or x_episode_id
        if not eid:
            return error_response(422, "Invalid request: field 'episode_id' is required")
        if not await run_in_threadpool(server.sessions.close_session, eid):
            raise UnknownSessionError(eid, server.sessions.idle_timeout_s)
        return StrictJSONResponse({"episode_id": eid, "closed": True})

    @app.get("/tasks", tags=["Info"], summary="List the debugging tasks")
    async def tasks() -> StrictJSONResponse:
        infos = await run_in_threadpool(list_tasks)
        return StrictJSONResponse({"tasks": [t.model_dump(mode="json") for t in infos]})

    @app.get("/tools", tags=["Info"], summary="List the debugging tools with their schemas")
    async def tools() -> StrictJSONResponse:
        return StrictJSONResponse({"tools": tool_list()})

    @app.post("/grader", tags=["Grading"], summary="Grade a code submission by running it")
    async def grader(body: GraderRequest) -> StrictJSONResponse:
        task = load_task(body.task_id, seed=body.seed)
        from ..grading import grade_code

        result = await run_in_threadpool(grade_code, task, body.code, server.sessions.sandbox)
        server.metrics.grade()
        return StrictJSONResponse(
            {"task_id": task.info.id, "score": result.score, "details": result.details}
        )

    @app.get("/baseline", tags=["Baseline"], summary="Run the baseline agent on every task")
    async def baseline(
        model_id: str | None = Query(default=None, min_length=1, max_length=200),
        use_tools: bool = Query(default=True),
    ) -> StrictJSONResponse:
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
        return StrictJSONResponse(result)

    @app.get(
        "/baseline/task/{task_id}",
        tags=["Baseline"],
        summary="Run the baseline agent on one task, with details",
    )
    async def baseline_task(
        task_id: str = Path(max_length=200),
        model_id: str | None = Query(default=None, min_length=1, max_length=200),
        use_tools: bool = Query(default=True),
    ) -> StrictJSONResponse:
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
        return StrictJSONResponse(result)

    @app.get("/health", tags=["Health"], summary="Health check")
    async def health() -> StrictJSONResponse:
        counts = server.sessions.counts()
        return StrictJSONResponse(
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
    async def metrics() -> StrictJSONResponse:
        data = server.metrics.snapshot()
        data["active_sessions"] = server.sessions.counts()["active"]
        return StrictJSONResponse(data)

    # ------------------------------------------------------------------ OpenEnv protocol

    @app.get("/schema", tags=["Schema"], summary="Action, observation and state JSON schemas")
    async def schema() -> StrictJSONResponse:
        return StrictJSONResponse(
            {
                "action": action_schema(),
                "observation": observation_schema(),
                "state": state_schema(),
            }
        )

    @app.get("/metadata", tags=["Info"], summary="Environment metadata")
    async def metadata() -> StrictJSONResponse:
        return StrictJSONResponse(
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
    async def mcp(request: Request) -> StrictJSONResponse:
        try:  # the guard has checked the limits already
            payload = parse_json_limited(await request.body(), server.config)
        except (ValueError, UnicodeDecodeError):
            return StrictJSONResponse(rpc_error(PARSE_ERROR, "Parse error"))
        owner = server.owner(request.scope)

        async def call_tool(name: str, args: dict[str, Any], sid: str | None) -> dict[str, Any]:
            server.check_rate("step", request.scope, "MCP tools/call")
            try:
                session = server.sessions.find(sid, owner)
            except UnknownSessionError as exc:
                raise LookupError(str(exc)) from None
            if session is None:
                raise LookupError(NO_EPISODE_MSG)
            action, _ = adapt_action({**args, "action_type": name})
            result = await run_in_threadpool(server.step_session, session, action)
            return step_body(result, session.id)

        sessions = HttpMcpSessions(server, request.scope)
        return StrictJSONResponse(await handle_mcp(payload, call_tool, sessions))

    add_pages(app, server)  # the original's /baseline/health, /session/state and / page

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket_session(websocket, server)

    @app.websocket("/mcp")
    async def mcp_ws(websocket: WebSocket) -> None:  # openenv-core's WebSocket MCP
        await websocket_session(websocket, server, mcp=True)

    return app


def _agent_missing(exc: ImportError) -> StrictJSONResponse:
    return error_response(501, f"The baseline agent is not available in this installation: {exc}")


def _agent_failed(exc: Exception) -> StrictJSONResponse:
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
