"""What every route and transport shares: ``WhipServer`` (configuration, sessions, rate limits,
metrics, and the episode operations over them) and the default task. The routers, the
WebSocket handler and the guard all import it from here, never from ``app``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

from ..env import make_sandbox
from ..models import State, StepResult, to_strict_json
from ..sandbox import Sandbox
from ..tasks import find_task_dirs
from .config import ServerConfig
from .guard import client_key, rate_limit_message
from .mcp import RateLimitedError
from .metrics import Metrics
from .ratelimit import RateLimiter
from .sessions import Session, SessionManager

__all__ = ["DESCRIPTION", "EPISODE_HEADER", "WhipServer", "default_task_id", "get_server"]

EPISODE_HEADER = "X-Episode-Id"
DESCRIPTION = (
    "WhipStudio: an ML-debugging gym. Investigate a broken PyTorch training script with "
    "sandboxed debugging tools, submit a fix, and get a reward in [0, 1] measured by running it."
)


def default_task_id() -> str:
    ids = list(find_task_dirs())
    return "task1" if "task1" in ids or not ids else ids[0]


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
            sandbox_factory=sandbox_factory or (lambda: make_sandbox(config=config.sandbox)),
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

    # -------------------------------------------------------------- clients

    def owner(self, scope: Any) -> str:
        """Whose default session a request without an episode id uses: with auth on, the
        token's (there is one token); else the client address's."""
        return "token" if self.config.token else "addr:" + client_key(scope)

    def find_session(self, scope: Any, episode_id: str | None) -> Session | None:
        """The named session (UnknownSessionError if unknown), else the client's default."""
        return self.sessions.find(episode_id, self.owner(scope))

    def check_rate(self, bucket: str, scope: Any, what: str) -> None:
        """For limits inside a connection (WebSocket messages, MCP calls)."""
        wait = self.limiter.check(bucket, client_key(scope))
        if wait is not None:
            message, _ = rate_limit_message(self.limiter, bucket, what, wait)
            raise RateLimitedError(message, wait)

    def close(self) -> None:
        self.sessions.close()


def get_server(conn: HTTPConnection) -> WhipServer:
    """The app's WhipServer, for routes (a FastAPI dependency)."""
    server: WhipServer = conn.app.state.whip
    return server
