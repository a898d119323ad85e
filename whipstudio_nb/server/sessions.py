"""Sessions: one WhipEnv per client episode, all over ONE shared sandbox (kernel pool).

The server issues every ``episode_id`` (128 random bits); a client can only send one back.
HTTP clients address a session by that id; a request without one gets its client's default
session (the latest episode that client started without an id; the client is its token when
auth is on, else its address). Each WebSocket connection owns its own session.
``max_sessions`` caps *live* episodes: a finished episode frees its slot at once and stays
readable until it has been idle for ``idle_timeout_s`` (or until many newer ones finished).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..env import WhipEnv
from ..errors import SandboxError, WhipError
from ..sandbox import Sandbox

__all__ = [
    "CapacityError",
    "Session",
    "SessionManager",
    "ShuttingDownError",
    "UnknownSessionError",
]


class CapacityError(WhipError):
    """Every session slot is in use (HTTP 503 with Retry-After)."""

    code = "capacity"

    def __init__(self, active: int, maximum: int) -> None:
        self.active_sessions = active
        self.max_sessions = maximum
        super().__init__(
            f"Server at capacity: {active}/{maximum} sessions in use. Retry later, close an "
            "episode (POST /close), or reuse your episode_id in /reset."
        )

    @property
    def extra(self) -> dict[str, Any]:
        """Fields an error body carries beside the message."""
        return {"active_sessions": self.active_sessions, "max_sessions": self.max_sessions}


class ShuttingDownError(WhipError, RuntimeError):
    """The server is closing: no new session, no sandbox."""

    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("The server is shutting down")


def new_episode_id() -> str:
    return secrets.token_hex(16)  # 128 bits


class UnknownSessionError(WhipError, KeyError):
    """An episode_id this server never issued, or one that expired or was closed."""

    code = "unknown_session"

    def __init__(self, episode_id: str, idle_timeout_s: float) -> None:
        self.episode_id = episode_id
        self.message = (
            f"Unknown episode_id: {episode_id} (episodes expire after {idle_timeout_s:g} s idle). "
            "Call /reset to start a new episode."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    @property
    def extra(self) -> dict[str, Any]:
        return {"episode_id": self.episode_id}


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
    owner: str | None = None  # the client whose default session it may be
    finished: bool = False  # its episode ended: it holds no slot, but stays readable


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
        self._defaults: dict[str, str] = {}  # client -> its default session's id
        self.max_finished = max(64, 4 * max_sessions)
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

    def create(self, kind: str, *, owner: str | None = None, as_default: bool = False) -> Session:
        """A new session with a fresh id; ``as_default`` makes it ``owner``'s default session.
        At capacity, an abandoned anonymous session is recycled, or else CapacityError."""
        victims: list[Session] = []
        with self._lock:
            if self._closed:
                raise ShuttingDownError()
            if self._live() >= self.max_sessions:
                victim = self._recyclable()
                if victim is None:
                    raise CapacityError(self._live(), self.max_sessions)
                self._forget(victim)
                victims.append(victim)
            victims += self._trim_finished()
            sid = new_episode_id()
            # Reserve the slot before the (possibly slow) env construction.
            placeholder = Session(id=sid, env=None, kind=kind, owner=owner)  # type: ignore[arg-type]
            placeholder.busy = 1
            self._sessions[sid] = placeholder
            if as_default and owner is not None:
                self._defaults[owner] = sid
        for v in victims:
            v.env.close()
        try:
            placeholder.env = self.new_env()
        except BaseException:
            with self._lock:
                self._forget(placeholder)
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

    def finish(self, session: Session) -> None:
        """Its episode ended: the slot is free for another live episode."""
        with self._lock:
            session.finished = True
            victims = self._trim_finished()
        for v in victims:
            v.env.close()

    def revive(self, session: Session) -> None:
        """A finished session is about to start a new episode: it needs a slot again."""
        victim: Session | None = None
        with self._lock:
            if not session.finished:
                return
            if self._live() >= self.max_sessions:
                victim = self._recyclable()
                if victim is None:
                    raise CapacityError(self._live(), self.max_sessions)
                self._forget(victim)
            session.finished = False
        if victim is not None:
            victim.env.close()

    def _live(self) -> int:
        return sum(1 for s in self._sessions.values() if not s.finished)

    def _forget(self, s: Session) -> None:
        """Drop a session from the tables. Must hold the lock."""
        self._sessions.pop(s.id, None)
        if s.owner is not None and self._defaults.get(s.owner) == s.id:
            del self._defaults[s.owner]

    def _trim_finished(self) -> list[Session]:
        """Forget the oldest finished sessions beyond ``max_finished``. Must hold the lock."""
        done = [s for s in self._sessions.values() if s.finished and s.busy == 0]
        extra = sorted(done, key=lambda s: s.last_used)[: max(0, len(done) - self.max_finished)]
        for s in extra:
            self._forget(s)
        return [s for s in extra if s.env is not None]

    def _recyclable(self) -> Session | None:
        """The least recently used live HTTP session that nobody ever named and that is no
        longer its client's default: no request can reach it any more without its id. Must
        hold the lock."""
        defaults = set(self._defaults.values())
        candidates = [
            s
            for s in self._sessions.values()
            if s.kind == "http"
            and not s.finished
            and not s.addressed
            and s.busy == 0
            and s.env is not None
            and s.id not in defaults
        ]
        return min(candidates, key=lambda s: s.last_used, default=None)

    def find(self, session_id: str | None, owner: str) -> Session | None:
        """The named session (raising if unknown), else ``owner``'s default (None if none)."""
        if session_id:
            return self.get(session_id)
        with self._lock:
            sid = self._defaults.get(owner)
            s = self._sessions.get(sid) if sid is not None else None
        return s if s is not None and s.env is not None else None

    def for_reset(self, session_id: str | None, owner: str) -> Session:
        """The session a /reset starts its episode in: the named one (only ever an id this
        server issued: a client never mints one), else a new one, ``owner``'s new default."""
        if session_id:
            return self.get(session_id)
        return self.create("http", owner=owner, as_default=True)

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
            s = self._sessions.get(session_id)
            if s is not None:
                self._forget(s)
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
            live = [s for s in self._sessions.values() if not s.finished]
            http = sum(1 for s in live if s.kind == "http")
            return {
                "active": len(live),
                "http": http,
                "ws": len(live) - http,
                "finished": len(self._sessions) - len(live),
            }

    def close(self) -> None:
        """Close every session and then the shared sandbox (every kernel)."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._defaults.clear()
        for s in sessions:
            if s.env is not None:
                s.env.close()
        with self._sandbox_lock:
            sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()
