"""The grader's reference run: the task's own solution, in a kernel no submitted code ever ran
in, over the same hidden training data, with training turned off.

The held-out answers must come from what training put into the model, and nothing the
submission's process reports can be trusted for that: code in that interpreter can reach the
recorder, fork a stand-in for the harness, or stash knowledge anywhere the script's own code can
read it back (a side estimator in a closure, training data in an extra parameter, a rule in
``forward``). So the trained weights (the parameters torch's optimizer steps changed and nothing
else did, ``ledger.py``, and the normalization layers' statistics) are loaded into the *reference*
model, matched by name or else by order and shape, and the reference code answers the same
held-out inputs. Weights that do not fit the reference model, or that only work together with
code the submission added, earn no held-out credit.

The reference run starts with the graded run and computes no gradients, so it costs a fraction of
the graded run's time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import numpy as np

from ..sandbox import SandboxKernel
from .wire import decode_array

__all__ = ["BackgroundRun", "Checked", "ReferenceRun", "run_seed"]


class Checked(NamedTuple):
    """The reference model's answers with the trained weights: to the held-out inputs, and to
    the training sample before and after the weights went in (``train``); which of its
    trainable parameters the weights moved (``trained``); or why there are none (``error``)."""

    outputs: np.ndarray | None = None
    train: tuple[np.ndarray, np.ndarray] | None = None
    trained: dict[str, list[str]] | None = None  # the reference model's parameters it moved
    error: str | None = None
    checks: dict[str, Any] | None = None  # the pack's CHECK_CODE, run on the reference model


def run_seed(seed: int) -> int:
    """The RNG seed both runs start from, derived from the hidden data seed (the same start
    gives the same untrained values to parameters training never touched)."""
    digest = hashlib.blake2b(f"{seed}|rng".encode(), digest_size=7).digest()
    return int.from_bytes(digest, "big") % 2**62


class BackgroundRun:
    """Runs ``cell`` (a harness run phase) in a kernel of its own, in a thread from
    construction, beside the graded run; the subclass then asks that kernel about what the run
    left. The thread takes the kernel (``kernels()``: a context manager, ``Sandbox.kernel``)
    itself, so the graded run never waits for a kernel the pool has yet to start."""

    NAME = "run"  # the thread's name: whip-<NAME>

    def __init__(
        self,
        kernels: Callable[[], AbstractContextManager[SandboxKernel]],
        cell: str,
        timeout: float,
    ) -> None:
        self._lock = threading.Lock()
        self._held: AbstractContextManager[SandboxKernel] | None = None
        self._kernel: SandboxKernel | None = None
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whip-" + self.NAME)
        self._run: Future[Any] = self._pool.submit(self._start, kernels, cell, timeout)
        self.used = False  # whether the grade asked for the run's result

    def _start(self, kernels: Any, cell: str, timeout: float) -> Any:
        held = kernels()
        kernel = held.__enter__()
        with self._lock:
            closed = self._closed
            if not closed:
                self._held, self._kernel = held, kernel
        if closed:  # the grade ended while the pool started this kernel
            held.__exit__(None, None, None)
            raise RuntimeError("the grade ended before this run started")
        return kernel.execute(cell, timeout=timeout)

    @property
    def kernel(self) -> SandboxKernel:
        """The run's kernel (once ``result()`` has returned)."""
        assert self._kernel is not None
        return self._kernel

    def result(self) -> Any:
        """The run's ``ExecResult``, once it has finished."""
        self.used = True
        return self._run.result()

    def close(self, wait: bool | None = None) -> None:
        """Wait for the run (bounded by its timeout) if the grade used it: its kernel must be
        idle when it goes. Otherwise (a script that failed early, an interrupted grade) do not:
        the kernel is killed under it, and the grade returns without waiting for it. Either
        way the kernel goes back to the pool, which discards it."""
        if wait is None:
            wait = self.used
        if wait:
            try:
                self._run.result()
            except Exception:
                pass
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        with self._lock:
            self._closed = True
            held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)


class ReferenceRun(BackgroundRun):
    """The solution's run phase (``learn: False``); ``outputs`` then evaluates the trained
    weights there."""

    NAME = "reference"

    def outputs(self, cell_for: Any, state: dict[str, Any] | None, timeout: float) -> Checked:
        """What the reference model holding ``state`` answers (``Checked``).
        ``cell_for(nonce, state)`` builds the evaluate cell."""
        if not state or not state.get("params"):
            return Checked(error="no parameter of the model was trained by an optimizer step")
        try:
            run = self.result()
        except Exception as exc:  # the kernel failed under it
            return Checked(error=f"the reference run failed: {exc}")
        status = [r for r in run.results if "status" in r or "internal_error" in r]
        last = status[-1] if status else {}
        if last.get("status") != "ran":
            why = "timed out" if run.timed_out or last.get("status") == "timeout" else "failed"
            return Checked(
                error=f"the reference run {why} (a problem with the task pack, not the script)"
            )
        nonce = secrets.token_hex(16)
        ev = self.kernel.execute(cell_for(nonce, state), timeout=timeout)
        trusted = [r for r in ev.results if r.get("nonce") == nonce]
        reply = trusted[-1] if trusted else {}
        if "outputs" not in reply:
            err = reply.get("error") or reply.get("eval_error") or "it produced no result"
            return Checked(
                error=f"the trained weights could not be checked in the reference model: {err}"
            )
        train = None
        if "train_outputs" in reply and "train_outputs_init" in reply:
            train = (
                decode_array(reply["train_outputs_init"]),
                decode_array(reply["train_outputs"]),
            )
        moved = reply.get("reference_trained")
        checks = reply.get("checks")
        return Checked(
            outputs=decode_array(reply["outputs"]),
            train=train,
            trained=moved if isinstance(moved, dict) else None,
            checks=checks if isinstance(checks, dict) else None,
        )
