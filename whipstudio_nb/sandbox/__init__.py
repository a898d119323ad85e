"""Throwaway Jupyter kernels that run untrusted code: launch, warm pool, policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import SandboxConfig
from ..errors import ConfigError, SandboxError
from .kernel import AttachedCell, ExecResult, Launcher, ProgressCallback, SandboxKernel
from .policy import ALLOWED_IMPORTS, check_code, violation_message
from .pool import KernelPool, owner_scope

Setup = tuple[str, Any]  # (entry point, its one argument), run before a call's entry point
INLINE_ARGS_MAX = 64 * 1024  # arguments up to this size go in the cell's text

__all__ = [
    "ALLOWED_IMPORTS",
    "INLINE_ARGS_MAX",
    "AttachedCell",
    "ExecResult",
    "KernelPool",
    "SandboxError",
    "Launcher",
    "Sandbox",
    "SandboxConfig",
    "SandboxKernel",
    "check_code",
    "dispatch_cell",
    "owner_scope",
    "violation_message",
]


def dispatch_cell(entry: str, args: dict[str, Any], setup: Setup | None = None) -> str:
    """The cell that runs an in-kernel entry point (``"module:function"``) with JSON
    arguments, after ``setup`` (``(entry, payload)``) if given."""
    args_json, setup_json = json.dumps(args), json.dumps(setup)
    head = "import whipstudio_nb.sandbox.kernel_lib as _whip_kernel_lib\n"
    if len(args_json) + len(setup_json) <= INLINE_ARGS_MAX:
        return head + f"_whip_kernel_lib.dispatch({entry!r}, {args_json!r}, {setup_json!r})"
    # Megabytes of data (training sets, held-out inputs, weights) travel beside the cell:
    # IPython handles a cell's text line by line, which costs seconds for such a cell.
    return AttachedCell(
        head + "_whip_kernel_lib.dispatch_attached()", json.dumps([entry, args_json, setup_json])
    )


_STRENGTH = {"none": 0, "basic": 1, "strict": 2}


def _check_launcher(config: SandboxConfig, launcher: Launcher | None) -> None:
    """A launcher object weaker than the isolation the config asks for is refused: asking for
    strict must never silently give less."""
    if launcher is None or config.isolation == "auto":
        return
    if _STRENGTH.get(launcher.isolation, 0) < _STRENGTH[config.isolation]:
        raise ConfigError(
            f"isolation {config.isolation!r} (WHIP_ISOLATION) was asked for, but the launcher "
            f"given ({launcher.name}) isolates at {launcher.isolation!r}"
        )


class Sandbox:
    """The tools' and grader's door to the kernels: one fresh kernel per call."""

    backend = "local"

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        pool_size: int | None = None,
        launcher: Launcher | None = None,
        preload: tuple[str, ...] | list[str] = (),
    ) -> None:
        """``config`` defaults to ``SandboxConfig.from_env()`` (the ``WHIP_*`` variables, read
        now; a bad or impossible value raises ``ConfigError``). ``pool_size`` overrides the
        config's; a ``launcher`` object replaces the one the config names (its isolation is
        then the launcher's own). ``preload``: modules every kernel imports while it warms up
        (the caller's in-kernel entry points), so that no call pays for importing them."""
        if isinstance(config, int) and not isinstance(config, bool):
            config, pool_size = None, config  # the old positional ``Sandbox(pool_size)``
        if config is None:
            config = SandboxConfig.from_env(pool_size=pool_size)
        else:
            config = config.with_overrides(pool_size=pool_size)
        _check_launcher(config, launcher)
        self.config = config
        self.pool = KernelPool(config.pool_size, launcher=launcher, config=config)
        self.pool.launcher.preload = tuple(preload)
        self.pool.start()

    @property
    def isolation(self) -> str:
        return self.pool.launcher.isolation

    @contextmanager
    def kernel(self) -> Iterator[SandboxKernel]:
        """A fresh kernel for several cells (the grader's run, then its evaluation). A kernel
        that fails to start is retried once; then ``SandboxError`` names the cause."""
        try:
            kernel = self.pool.acquire()
        except SandboxError:
            if self.pool.stats()["closed"]:
                raise
            kernel = self.pool.acquire(timeout=60)
        try:
            yield kernel
        finally:
            self.pool.release(kernel)

    def call(
        self,
        entry: str,
        args: dict[str, Any],
        timeout: float,
        on_progress: ProgressCallback | None = None,
        setup: Setup | None = None,
    ) -> ExecResult:
        """Run ``entry(args)`` (``"module:function"``) in a fresh kernel, after ``setup``."""
        with self.kernel() as k:
            cell = dispatch_cell(entry, args, setup)
            return k.execute(cell, timeout, on_progress=on_progress)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "launcher": self.pool.launcher.name,
            "isolation": self.isolation,
            "pool": self.pool.stats(),
            "config": self.config.summary(),
        }

    def close(self) -> None:
        self.pool.close()
