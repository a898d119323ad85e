"""Test doubles. ``FakeSandbox`` runs the tools' ``in_kernel`` functions in THIS process.

(Not a test module: imported by conftest.py. ``python tests/fakes.py serve ARGS`` is ``whip serve
ARGS`` over a FakeSandbox, for server tests that are not about kernels: server_proc.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from typing import Any
from unittest import mock

from whipstudio_nb.grading import loader
from whipstudio_nb.sandbox import ExecResult, ProgressCallback
from whipstudio_nb.sandbox import kernel_lib as kl

_LOCK = threading.Lock()  # the streams and kernel_lib's emitters patched below are process-wide


def _wire(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(kl.json_safe(payload)))  # as it would come off the wire


class FakeSandbox:
    """``Sandbox`` for tests that are not about kernels: ``call`` runs ``kernel_lib.dispatch`` (the
    cell a real kernel would run) in-process, one call at a time, with its streams captured and
    torch's RNG and the training data restored afterwards. FOR TESTS ONLY, never for untrusted
    code: no isolation, no timeout, no kernel death; ``kernel()`` (grading) is unsupported."""

    backend = "fake"
    isolation = "fake"  # no warning_for() line: tests see what a strict sandbox shows

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(
        self,
        entry: str,
        args: dict[str, Any],
        timeout: float,
        on_progress: ProgressCallback | None = None,
        setup: tuple[str, Any] | None = None,
    ) -> ExecResult:
        import torch

        self.calls.append((entry, args))
        res, out, err, start = ExecResult(), io.StringIO(), io.StringIO(), time.monotonic()
        progress = (lambda p: on_progress(_wire(p))) if on_progress else (lambda p: None)
        with (
            _LOCK,
            torch.random.fork_rng(devices=[]),
            mock.patch.dict(loader._PROVIDED, clear=True),
            mock.patch.object(kl, "emit", lambda p: res.results.append(_wire(p))),
            mock.patch.object(kl, "emit_progress", progress),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            kl.dispatch(entry, json.dumps(args), json.dumps(setup))
        res.stdout, res.stderr = out.getvalue(), err.getvalue()
        res.duration_s = time.monotonic() - start
        return res

    def kernel(self) -> Any:
        raise NotImplementedError("grading needs real kernels")

    def info(self) -> dict[str, Any]:
        pool = dict.fromkeys(("size", "ready", "starting", "in_use", "kernels_started"), 0)
        pool.update(closed=False, last_error=None)  # the keys of KernelPool.stats()
        return {"backend": "fake", "launcher": "in-process", "isolation": "fake", "pool": pool}

    def close(self) -> None:
        pass


if __name__ == "__main__":
    import sys

    import whipstudio_nb.server.service as service
    from whipstudio_nb.cli import main

    # `whip serve` has no option to pass a sandbox: the server's default factory is make_sandbox.
    service.make_sandbox = lambda **kwargs: FakeSandbox()  # type: ignore[assignment,misc]
    sys.exit(main())
