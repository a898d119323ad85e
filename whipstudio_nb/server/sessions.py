"""Sessions: one WhipEnv per client episode, all over ONE shared sandbox (kernel pool).

HTTP clients address a session by the ``episode_id`` that ``/reset`` returned; a request without
one gets the default session (the latest episode started without an id, as in the reference).
Each WebSocket connection owns its own session. Idle sessions expire; ``max_sessions`` caps them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..env import WhipEnv
from ..errors import SandboxError
from ..sandbox import Sandbox

__all__ = [
    "CapacityError",
    "EpisodeIdInUseError",
    "Session",
    "SessionManager",
    "ShuttingDownError",
    "UnknownSessionError",
]


class CapacityError(Exception):
    def __init__(self, active: int, maximum: int) -> None:
        self.active_sessions = active
        self.max_sessions = maximum
        super().__init__(
            f"Server at capacity: {active}/{maximum} sessions in use. Retry later, close an "
            "episode (POST /close), or reuse your episode_id in /reset."
        )


class ShuttingDownError(RuntimeError):
    def __init__(self) -> None:
        super().__init__("The server is shutting down")


class EpisodeIdInUseError(Exception):
    def __init__(self, episode_id: str) -> None:
        self.episode_id = episode_id
        super().__init__(f"episode_id {episode_id!r} is in use by another connection")


class UnknownSessionError(KeyError):
    def __init__(self, episode_id: str, idle_timeout_s: float) -> None:
        self.episode_id = episode_id
        self.message = (
            f"Unknown episode_id: {episode_id} (episodes expire after {idle_timeout_s:g} s idle). "
            "Call /reset to start a new episode."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class Session:
    id: str
    env: WhipEnv
    kind: str  # "http" or "ws"
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    # Ever named by its episode_id in a request? Sessions only ever used as the default, and
    # no longer the default, are recycled first when the server is at capacity.
    addressed: bool = False


class SessionManager:
    def __init__(
        self,
        *,
        max_sessions: int,
        idle_timeout_s: float,
        sandbox_factory: Callable[[], Sandbox],
        env_kwargs: dict[str, object] | None = None,
    ) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._sandbox_factory = sandbox_factory
        self._sandbox: Sandbox | None = None
        self._sandbox_lock = threading.Lock()
        self._env_kwargs = env_kwargs or {}
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self.default_id: str | None = None
        self._closed = False

    # ------------------------------------------------------------------ sandbox

    @property
    def sandbox(self) -> Sandbox:
        """The one kernel pool every session shares (started on first use)."""
        with self._sandbox_lock:
            if self._closed:
                raise ShuttingDownError()
            if self._sandbox is None:
                self._sandbox = self._sandbox_factory()
            return self._sandbox

    def new_env(self) -> WhipEnv:
        return WhipEnv(sandbox=self.sandbox, **self._env_kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ sessions

    def create(
        self, kind: str, session_id: str | None = None, *, as_default: bool = False
    ) -> Session:
        """A new session (named ``session_id``, else a fresh id); ``as_default`` makes it the
        default session. At capacity, an abandoned anonymous session is recycled, or else
        CapacityError."""
        victim: Session | None = None
        with self._lock:
            if self._closed:
                raise ShuttingDownError()
            if session_id is not None and session_id in self._sessions:
                raise EpisodeIdInUseError(session_id)
            if len(self._sessions) >= self.max_sessions:
                victim = self._recyclable()
                if victim is None:
                    raise CapacityError(len(self._sessions), self.max_sessions)
                del self._sessions[victim.id]
            sid = session_id or uuid.uuid4().hex
            # Reserve the slot before the (possibly slow) env construction.
            placeholder = Session(id=sid, env=None, kind=kind)  # type: ignore[arg-type]
            placeholder.busy = 1
            placeholder.addressed = session_id is not None
            self._sessions[sid] = placeholder
            if as_default:
                self.default_id = sid
        if victim is not None:
            victim.env.close()
        try:
            placeholder.env = self.new_env()
        except BaseException:
            with self._lock:
                self._sessions.pop(sid, None)
                if self.default_id == sid:
                    self.default_id = None
            raise
        placeholder.busy = 0
        placeholder.last_used = time.monotonic()
        return placeholder

    def get(self, session_id: str, kind: str = "http") -> Session:
        """The named session of this kind (WebSocket sessions belong to their connection)."""
        with self._lock:
            s = self._sessions.get(session_id)
        if s is None or s.env is None or s.kind != kind:
            raise UnknownSessionError(session_id, self.idle_timeout_s)
        s.addressed = True
        return s

    def _recyclable(self) -> Session | None:
        """The least recently used HTTP session that nobody ever named and that is no longer
        the default: no request can reach it any more without its id. Must hold the lock."""
        candidates = [
            s
            for s in self._sessions.values()
            if s.kind == "http"
            and not s.addressed
            and s.busy == 0
            and s.env is not None
            and s.id != self.default_id
        ]
        return min(candidates, key=lambda s: s.last_used, default=None)

    def find(self, session_id: str | None) -> Session | None:
        """The named session (raising if unknown), else the default one (None if none)."""
        if session_id:
            return self.get(session_id)
        with self._lock:
            sid = self.default_id
        if sid is None:
            return None
        with self._lock:
            s = self._sessions.get(sid)
        return s if s is not None and s.env is not None else None

    @contextmanager
    def use(self, session: Session) -> Iterator[WhipEnv]:
        """Mark a session busy (never reaped mid-call) while the caller uses its env."""
        with self._lock:
            if self._sessions.get(session.id) is not session:
                raise UnknownSessionError(session.id, self.idle_timeout_s)
            session.busy += 1
        try:
            yield session.env
        except RuntimeError as exc:
            # closed by /close (or shutdown) while in use: the episode is gone, not a crash
            if isinstance(exc, SandboxError) or self._sessions.get(session.id) is session:
                raise
            raise UnknownSessionError(session.id, self.idle_timeout_s) from exc
        finally:
            with self._lock:
                session.busy -= 1
                session.last_used = time.monotonic()

    def close_session(self, session_id: str) -> bool:
        with self._lock:
            s = self._sessions.pop(session_id, None)
            if self.default_id == session_id:
                self.default_id = None
        if s is None:
            return False
        if s.env is not None:
            s.env.close()
        return True

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close HTTP sessions idle for longer than ``idle_timeout_s``; return their ids."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [
                s.id
                for s in self._sessions.values()
                if s.kind == "http" and s.busy == 0 and now - s.last_used > self.idle_timeout_s
            ]
        for sid in stale:
            self.close_session(sid)
        return stale

    def counts(self) -> dict[str, int]:
        with self._lock:
            http = sum(1 for s in self._sessions.values() if s.kind == "http")
            return {"active": len(self._sessions), "http": http, "ws": len(self._sessions) - http}

    def close(self) -> None:
        """Close every session and then the shared sandbox (every kernel)."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self.default_id = None
        for s in sessions:
            if s.env is not None:
                s.env.close()
        with self._sandbox_lock:
            sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()
