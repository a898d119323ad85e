"""A warm pool of sandbox kernels, started ahead of time with torch and numpy imported.

Each kernel serves one call and is then killed; background threads keep kernels ready, so a
call pays milliseconds instead of a kernel start plus ``import torch``.

The pool follows demand: it keeps ``size`` kernels ready when idle, grows towards the number of
calls of the last two seconds (up to ``pool_max``) while calls come in, and shrinks back when they
stop. Callers that wait are served fairly: one waiting call of each owner in turn (an owner is a
session: ``owner_scope``), so one busy session cannot starve the others.
"""

from __future__ import annotations

import atexit
import contextvars
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import SandboxConfig
from ..errors import ConfigError, SandboxError
from .kernel import Launcher, SandboxKernel

__all__ = ["KernelPool", "owner_scope", "warmup_code"]

DEMAND_WINDOW_S = 2.0  # calls in this window set how many kernels the pool keeps ready (two
# seconds: sessions pacing themselves arrive in bursts, and a one-second window could empty
# just before the next burst)
IDLE_TRIM_S = 5.0  # a ready kernel beyond the target is discarded after this long unused
# Starts can fail for a moment (a fork bomb's processes are still being reaped, the fork server
# is being replaced): once the pool has started a kernel, callers wait through failures for this
# long before they are told the sandbox is down. A pool that never started one says so at once.
TRANSIENT_FAILURE_S = 20.0
MAX_BACKOFF_S = 2.0

# Who the calls made in this context belong to (a session); None: an anonymous caller.
_owner: contextvars.ContextVar[object | None] = contextvars.ContextVar("whip_pool_owner")


@contextmanager
def owner_scope(owner: object) -> Iterator[None]:
    """Calls made inside belong to ``owner`` (any hashable: a session), for fair queueing."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


def warmup_code(preload: tuple[str, ...]) -> str:
    return (
        "import whipstudio_nb.sandbox.kernel_lib as _whip_kernel_lib\n"
        f"_whip_kernel_lib.warm_up({list(preload)!r})"
    )


_live_pools: weakref.WeakSet[KernelPool] = weakref.WeakSet()
LAUNCHERS = ("forkserver", "direct")


def default_launcher(config: SandboxConfig | None = None) -> Launcher:
    """The launcher ``config`` names (default: ``SandboxConfig.from_env()``, read now). The fork
    server on POSIX (kernels in milliseconds); ``direct`` (``WHIP_LAUNCHER=direct``) starts each
    kernel as its own ``python -m ipykernel_launcher`` process instead (seconds per kernel)."""
    config = config if config is not None else SandboxConfig.from_env()
    if config.resolved_launcher == "forkserver":
        from .forkserver import ForkServerLauncher

        return ForkServerLauncher(config=config)
    return Launcher(config)


@atexit.register
def _close_all_pools() -> None:
    for pool in list(_live_pools):
        pool.close()


class _Ticket:
    """One waiting acquire: it is handed a kernel by ``KernelPool._hand_out``."""

    __slots__ = ("kernel", "owner")

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.kernel: SandboxKernel | None = None


class KernelPool:
    def __init__(
        self,
        size: int | None = None,
        *,
        launcher: Launcher | None = None,
        config: SandboxConfig | None = None,
        warmup_timeout: float = 120.0,
        max_parallel_starts: int | None = None,
    ) -> None:
        """``size`` (default ``config.pool_size``) kernels kept warm when idle, up to
        ``config.pool_max`` while calls come in; ``launcher`` (default: the one ``config``
        names) starts them, ``max_parallel_starts`` (default ``config.pool_starts``) at once.
        ``config`` defaults to the ``WHIP_*`` variables."""
        if size is not None and size < 0:
            raise ConfigError(f"pool size must be >= 0 (got {size})")
        config = config if config is not None else SandboxConfig.from_env()
        self.config = config.with_overrides(pool_size=size)
        self.size = self.config.pool_size
        self.cap = max(self.size, self.config.pool_max)
        self.launcher = launcher if launcher is not None else default_launcher(self.config)
        self.warmup_timeout = warmup_timeout
        self._ready: deque[tuple[SandboxKernel, float]] = deque()  # (kernel, ready since)
        self._in_use: set[SandboxKernel] = set()
        self._waiting: OrderedDict[object, deque[_Ticket]] = OrderedDict()  # owner -> tickets
        self._calls: deque[float] = deque()  # when recent acquires came in
        self._starting = 0
        self._cond = threading.Condition()
        self._closed = False
        self._started = False
        self._workers: list[threading.Thread] = []
        self._reapers: set[threading.Thread] = set()
        parallel = max_parallel_starts or self.config.pool_starts
        self._max_parallel = max(1, parallel)
        self.kernels_started = 0
        self.last_error: str | None = None
        self._failures = 0
        self._failing_since = 0.0  # when the current run of failed starts began
        _live_pools.add(self)

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Begin filling the pool in the background (idempotent)."""
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
            if self.size == 0:
                return  # no warm kernels: each acquire starts its own
            for i in range(min(self._max_parallel, self.cap)):
                t = threading.Thread(target=self._fill_loop, name=f"whip-pool-{i}", daemon=True)
                self._workers.append(t)
                t.start()

    def acquire(self, timeout: float = 180.0, *, owner: object = None) -> SandboxKernel:
        """Take a ready kernel (waiting for one if needed). The caller must ``release`` it.
        Waiting callers get kernels one ``owner`` at a time in turn (default: the owner of
        the current ``owner_scope``)."""
        self.start()
        deadline = time.monotonic() + timeout
        ticket = _Ticket(owner if owner is not None else _owner.get(None))
        with self._cond:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            self._calls.append(time.monotonic())
            if self.size > 0:
                self._waiting.setdefault(ticket.owner, deque()).append(ticket)
                self._hand_out()
                self._cond.notify_all()  # the target grew: wake the workers
                try:
                    while ticket.kernel is None:
                        if self._closed:
                            raise SandboxError("the sandbox pool is closed")
                        if self._failing():
                            raise SandboxError(f"sandbox kernels fail to start: {self.last_error}")
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise SandboxError("timed out waiting for a sandbox kernel")
                        # (no notify here: waiters waking each other would spin)
                        self._cond.wait(min(remaining, 0.5))
                        self._hand_out()
                finally:
                    if ticket.kernel is None:
                        self._withdraw(ticket)
                return ticket.kernel
        kernel = self._new_kernel()  # no background workers: start one in this thread
        with self._cond:
            self._in_use.add(kernel)
        return kernel

    def _failing(self) -> bool:
        """Whether starts fail for good (not a passing hiccup). Must hold the lock."""
        if self._failures < 3:
            return False
        if self.kernels_started == 0:
            return True  # never worked: a broken setup, say so now
        return time.monotonic() - self._failing_since >= TRANSIENT_FAILURE_S

    def release(self, kernel: SandboxKernel) -> None:
        """Discard a used kernel: it is killed in the background."""
        with self._cond:
            self._in_use.discard(kernel)
            self._reap(kernel)
            self._cond.notify_all()

    def target(self) -> int:
        """How many kernels the pool wants ready or starting now: ``size``, or more while
        calls come in (the calls of the last two seconds plus those waiting), at most ``cap``."""
        with self._cond:
            return self._target(time.monotonic())

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "size": self.size,
                "max": self.cap,
                "target": self._target(time.monotonic()),
                "ready": len(self._ready),
                "starting": self._starting,
                "in_use": len(self._in_use),
                "waiting": self._n_waiting(),
                "kernels_started": self.kernels_started,
                "closed": self._closed,
                "last_error": self.last_error,
            }

    def close(self) -> None:
        """Stop refilling and kill every kernel, ready or in use. Idempotent; waits for it."""
        with self._cond:
            self._closed = True
            kernels = [k for k, _ in self._ready] + list(self._in_use)
            self._ready.clear()
            self._in_use.clear()
            self._cond.notify_all()
        for t in self._workers:
            t.join(timeout=self.warmup_timeout)
        for k in kernels:
            k.shutdown()
        with self._cond:
            reapers = list(self._reapers)
        for t in reapers:
            t.join(timeout=30)
        self.launcher.close()

    def __enter__(self) -> KernelPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    # (_target, _n_waiting, _hand_out, _withdraw, _trim and _reap: the caller holds the lock)

    def _target(self, now: float) -> int:
        while self._calls and self._calls[0] < now - DEMAND_WINDOW_S:
            self._calls.popleft()
        return min(self.cap, max(self.size, len(self._calls) + self._n_waiting()))

    def _n_waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def _hand_out(self) -> None:
        """Give ready kernels to waiting tickets: the first ticket of each owner in turn."""
        while self._waiting and self._ready:
            kernel, _ = self._ready.popleft()
            if not kernel.is_alive():
                self._reap(kernel)
                continue
            owner, tickets = next(iter(self._waiting.items()))
            ticket = tickets.popleft()
            del self._waiting[owner]
            if tickets:  # this owner waits for more: to the back of the line
                self._waiting[owner] = tickets
            ticket.kernel = kernel
            self._in_use.add(kernel)
            self._cond.notify_all()

    def _withdraw(self, ticket: _Ticket) -> None:
        tickets = self._waiting.get(ticket.owner)
        if tickets is not None:
            if ticket in tickets:
                tickets.remove(ticket)
            if not tickets:
                del self._waiting[ticket.owner]

    def _trim(self, now: float) -> None:
        """Discard ready kernels beyond the target that sat unused for a while (oldest first)."""
        excess = len(self._ready) + self._starting - self._target(now)
        while excess > 0 and self._ready and self._ready[0][1] < now - IDLE_TRIM_S:
            kernel, _ = self._ready.popleft()
            self._reap(kernel)
            excess -= 1

    def _new_kernel(self) -> SandboxKernel:
        kernel = SandboxKernel(self.launcher, startup_timeout=self.warmup_timeout)
        res = kernel.execute(warmup_code(self.launcher.preload), timeout=self.warmup_timeout)
        if res.error or res.timed_out or res.died:
            kernel.shutdown()
            detail = (
                res.error.get("evalue") if res.error else ("timed out" if res.timed_out else "died")
            )
            raise SandboxError(f"sandbox kernel warm-up failed: {detail} {res.stderr[-500:]}")
        with self._cond:
            self.kernels_started += 1
        return kernel

    def _fill_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    self._trim(now)
                    if len(self._ready) + self._starting < self._target(now):
                        break
                    self._cond.wait(1.0)  # re-check: demand fades, idle kernels get trimmed
                self._starting += 1
            kernel: SandboxKernel | None = None
            try:
                kernel = self._new_kernel()
            except Exception as exc:
                with self._cond:
                    self.last_error = str(exc)
                    if self._failures == 0:
                        self._failing_since = time.monotonic()
                    self._failures += 1
            with self._cond:
                self._starting -= 1
                if kernel is not None:
                    self._failures = 0
                    if self._closed:
                        self._reap(kernel)
                    else:
                        self._ready.append((kernel, time.monotonic()))
                        self._hand_out()
                self._cond.notify_all()
                if kernel is None:
                    self._cond.wait(
                        min(MAX_BACKOFF_S, 0.1 * 2 ** min(self._failures, 5))
                    )  # back off

    def _reap(self, kernel: SandboxKernel) -> None:
        """Shut a kernel down off the caller's thread. Must hold the lock."""

        def run() -> None:
            try:
                kernel.shutdown()
            finally:
                with self._cond:
                    self._reapers.discard(threading.current_thread())

        t = threading.Thread(target=run, name="whip-reaper", daemon=True)
        self._reapers.add(t)
        t.start()
