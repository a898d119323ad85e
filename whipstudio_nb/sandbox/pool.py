"""A warm pool of sandbox kernels, started ahead of time with torch and numpy imported.

Each kernel serves one call and is then killed; background threads keep ``size`` kernels ready,
so a call pays milliseconds instead of a kernel start plus ``import torch``.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from typing import Any

from ..config import SandboxConfig
from ..errors import ConfigError, SandboxError
from .kernel import Launcher, SandboxKernel

__all__ = ["KernelPool", "warmup_code"]


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


class KernelPool:
    def __init__(
        self,
        size: int | None = None,
        *,
        launcher: Launcher | None = None,
        config: SandboxConfig | None = None,
        warmup_timeout: float = 120.0,
        max_parallel_starts: int = 2,
    ) -> None:
        """``size`` (default ``config.pool_size``) kernels kept warm; ``launcher`` (default:
        the one ``config`` names) starts them. ``config`` defaults to the ``WHIP_*`` variables."""
        if size is not None and size < 0:
            raise ConfigError(f"pool size must be >= 0 (got {size})")
        config = config if config is not None else SandboxConfig.from_env()
        self.config = config.with_overrides(pool_size=size)
        self.size = self.config.pool_size
        self.launcher = launcher if launcher is not None else default_launcher(self.config)
        self.warmup_timeout = warmup_timeout
        self._ready: deque[SandboxKernel] = deque()
        self._in_use: set[SandboxKernel] = set()
        self._starting = 0
        self._cond = threading.Condition()
        self._closed = False
        self._started = False
        self._workers: list[threading.Thread] = []
        self._reapers: set[threading.Thread] = set()
        self._max_parallel = max(1, max_parallel_starts)
        self.kernels_started = 0
        self.last_error: str | None = None
        self._failures = 0
        _live_pools.add(self)

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Begin filling the pool in the background (idempotent)."""
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
            for i in range(min(self._max_parallel, max(1, self.size))):
                t = threading.Thread(target=self._fill_loop, name=f"whip-pool-{i}", daemon=True)
                self._workers.append(t)
                t.start()

    def acquire(self, timeout: float = 180.0) -> SandboxKernel:
        """Take a ready kernel (waiting for one if needed). The caller must ``release`` it."""
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxError("the sandbox pool is closed")
                while self._ready:
                    kernel = self._ready.popleft()
                    if kernel.is_alive():
                        self._in_use.add(kernel)
                        self._cond.notify_all()
                        return kernel
                    self._reap(kernel)
                if self.size == 0 and self._starting == 0:
                    break  # no background workers: start one in this thread
                if self._failures >= 3:
                    raise SandboxError(f"sandbox kernels fail to start: {self.last_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxError("timed out waiting for a sandbox kernel")
                self._cond.notify_all()
                self._cond.wait(min(remaining, 0.5))
        kernel = self._new_kernel()
        with self._cond:
            self._in_use.add(kernel)
        return kernel

    def release(self, kernel: SandboxKernel) -> None:
        """Discard a used kernel: it is killed in the background."""
        with self._cond:
            self._in_use.discard(kernel)
            self._reap(kernel)
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "size": self.size,
                "ready": len(self._ready),
                "starting": self._starting,
                "in_use": len(self._in_use),
                "kernels_started": self.kernels_started,
                "closed": self._closed,
                "last_error": self.last_error,
            }

    def close(self) -> None:
        """Stop refilling and kill every kernel, ready or in use. Idempotent; waits for it."""
        with self._cond:
            self._closed = True
            kernels = list(self._ready) + list(self._in_use)
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
                while not self._closed and len(self._ready) + self._starting >= self.size:
                    self._cond.wait()
                if self._closed:
                    return
                self._starting += 1
            kernel: SandboxKernel | None = None
            try:
                kernel = self._new_kernel()
            except Exception as exc:
                with self._cond:
                    self.last_error = str(exc)
                    self._failures += 1
            with self._cond:
                self._starting -= 1
                if kernel is not None:
                    self._failures = 0
                    if self._closed:
                        self._reap(kernel)
                    else:
                        self._ready.append(kernel)
                self._cond.notify_all()
                if kernel is None:
                    self._cond.wait(min(10.0, 0.5 * 2 ** min(self._failures, 5)))  # back off

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
