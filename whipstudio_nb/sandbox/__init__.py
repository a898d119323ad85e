"""Throwaway Jupyter kernels that run untrusted code: launch, warm pool, policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import SandboxError
from .kernel import ExecResult, Launcher, ProgressCallback, SandboxKernel
from .policy import ALLOWED_IMPORTS, check_code, violation_message
from .pool import KernelPool

__all__ = [
    "ALLOWED_IMPORTS",
    "ExecResult",
    "KernelPool",
    "SandboxError",
    "Launcher",
    "Sandbox",
    "SandboxKernel",
    "check_code",
    "dispatch_cell",
    "violation_message",
]


def dispatch_cell(module: str, args: dict[str, Any]) -> str:
    """The cell that runs one tool's in-kernel function with JSON arguments."""
    return (
        "import whipstudio_nb.sandbox.kernel_lib as _whip_kernel_lib\n"
        f"_whip_kernel_lib.dispatch({module!r}, {json.dumps(args)!r})"
    )


class Sandbox:
    """The tools' and grader's door to the kernels: one fresh kernel per call."""

    backend = "local"

    def __init__(self, pool_size: int = 2, *, launcher: Launcher | None = None) -> None:
        self.pool = KernelPool(pool_size, launcher=launcher)
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
        module: str,
        args: dict[str, Any],
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> ExecResult:
        with self.kernel() as k:
            return k.execute(dispatch_cell(module, args), timeout, on_progress=on_progress)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "launcher": self.pool.launcher.name,
            "isolation": self.isolation,
            "pool": self.pool.stats(),
        }

    def close(self) -> None:
        self.pool.close()
