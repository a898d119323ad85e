"""The grader's re-run: the submission again, in another hidden world whose labels are shuffled
across rows (``data.scrambled``), with training turned off.

The held-out answers must come from what training put into the model. So the trained state
(the parameters that torch's optimizer steps changed and nothing else did, ``ledger.py``, and
the normalization layers' statistics) is loaded into the model of this re-run, which is then
asked the same held-out inputs. A script's own helpers (``predict``, ``model.eval()``, input
scaling) are there too, since the whole script ran. Knowledge kept anywhere else (a side
estimator in a closure, a rule in ``forward``, a fit used only once the parameters moved)
was learned there from labels that say nothing about their inputs, and its answers fall apart,
even for a pack whose hidden worlds happen to be alike (task6's stroke-to-class order is the same
in 1 of 24 worlds).

The re-run starts with the graded run, in a second kernel, and computes no gradients, so it
costs a fraction of the graded run's time.
"""

from __future__ import annotations

import hashlib
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..sandbox import SandboxKernel
from .wire import decode_array

__all__ = ["Rerun", "rerun_seed"]


def rerun_seed(seed: int) -> int:
    """The re-run's hidden world: another world, derived from the graded run's hidden seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}|rerun".encode(), digest_size=7).digest(), "big")


class Rerun:
    """Runs ``cell`` (the harness's run phase with ``learn: False``) on ``kernel`` in a thread
    from construction; ``outputs`` then evaluates the trained state there."""

    def __init__(self, kernel: SandboxKernel, cell: str, timeout: float) -> None:
        self._kernel = kernel
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whip-rerun")
        self._run: Future[Any] = self._pool.submit(kernel.execute, cell, timeout=timeout)

    def outputs(
        self, cell_for: Any, state: dict[str, Any] | None, timeout: float
    ) -> tuple[np.ndarray | None, str | None]:
        """(held-out outputs of the re-run's model holding ``state``, None) or (None, why not).
        ``cell_for(nonce)`` builds the evaluate cell."""
        if not state or not (state.get("params") or state.get("deltas")):
            return None, "no parameter of the model was trained by an optimizer step"
        try:
            run = self._run.result()
        except Exception as exc:  # the kernel failed under it
            return None, f"the re-run failed: {exc}"
        status = [r for r in run.results if "status" in r or "internal_error" in r]
        last = status[-1] if status else {}
        if run.timed_out or last.get("status") == "timeout":
            return None, "the re-run (training turned off) did not finish within the time budget"
        if last.get("status") != "ran":
            return None, "the re-run (training turned off) ended the sandbox process"
        nonce = secrets.token_hex(16)
        ev = self._kernel.execute(cell_for(nonce, state), timeout=timeout)
        trusted = [r for r in ev.results if r.get("nonce") == nonce]
        reply = trusted[-1] if trusted else {}
        if "outputs" not in reply:
            err = reply.get("error") or reply.get("eval_error") or "it produced no result"
            return None, f"the re-run could not evaluate the trained state: {err}"
        return decode_array(reply["outputs"]), None

    def close(self, wait: bool = True) -> None:
        """Wait for the re-run (bounded by its timeout): its kernel must be idle when it goes.
        ``wait=False`` (the grade was interrupted): do not; the kernel is killed under it."""
        if wait:
            try:
                self._run.result()
            except Exception:
                pass
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
