"""Progress of a long call (a tool in the sandbox, grading): elapsed time against the time limit,
and the latest training loss while a script trains.

It is a plain HTML output updated in place through a display id (no widget model: nothing
is left behind that a reopened notebook could not draw), and it is removed when the call ends,
whether it finished, failed or was interrupted. Silent outside a live kernel.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._base import GREY, esc, in_kernel, styled

if TYPE_CHECKING:
    from .plots import Series

__all__ = ["LiveLossCurve", "progress", "progress_line"]


def progress_line(
    label: str, elapsed_s: float, timeout_s: float, losses: Sequence[float] = ()
) -> str:
    """``run training probe: running, 3.2 s of at most 30 s · step 41, loss 0.512 · ...``"""
    line = f"{label}: running, {elapsed_s:.1f} s of at most {timeout_s:g} s"
    if losses:
        last = losses[-1]
        shown = f"{last:.4g}" if math.isfinite(last) else "NaN/Inf"
        line += f" · step {len(losses)}, loss {shown}"
    return line + " · interrupt the kernel (■) to stop, no turn used"


def _bundle(text: str) -> dict[str, str]:
    html = styled(f'<span class="whip-progress" style="color: {GREY}">{esc(text)}</span>')
    return {"text/plain": text, "text/html": html}


@contextmanager
def progress(
    label: str,
    timeout_s: float,
    interval_s: float = 0.5,
    losses: Callable[[], Sequence[float]] | None = None,
) -> Iterator[None]:
    if not in_kernel():
        yield
        return
    from IPython.display import display

    started = time.monotonic()
    handle: Any = display(_bundle(progress_line(label, 0.0, timeout_s)), raw=True, display_id=True)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval_s):
            elapsed = time.monotonic() - started
            seen = list(losses()) if losses is not None else []
            handle.update(_bundle(progress_line(label, elapsed, timeout_s, seen)), raw=True)

    thread = threading.Thread(target=tick, name="whip-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)
        handle.update({"text/plain": ""}, raw=True)  # the result below says how it went


class LiveLossCurve:
    """A loss curve that grows while a probe or a grading run is still training.

    Use it as a context manager; it yields the ``on_progress`` callback for ``WhipEnv.step``.
    The curve is redrawn at most every ``interval_s`` and removed when the call ends (the
    call's own result view shows the final curve). Silent outside a live kernel unless
    ``enabled`` says otherwise.
    """

    def __init__(
        self,
        label: str,
        attempts: Mapping[str, Series] | None = None,
        *,
        interval_s: float = 0.5,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.attempts = dict(attempts or {})
        self.interval_s = interval_s
        self.enabled = in_kernel() if enabled is None else enabled
        self.losses: list[float] = []
        self.redraws = 0
        self._handle: Any = None
        self._last = 0.0

    def on_progress(self, payload: dict[str, Any]) -> None:
        new = [float(x) for x in payload.get("losses", [])]
        offset = int(payload.get("offset", len(self.losses)))
        self.losses[offset:] = new
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval_s:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        from IPython.display import display

        from .plots import LossCurve

        curve = LossCurve(self.losses, attempts=self.attempts, title=f"{self.label} (live)")
        bundle = curve._repr_mimebundle_()
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        self.redraws += 1

    def __enter__(self) -> Any:
        return self.on_progress

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            # the result view below shows the whole curve; leave no stale partial one behind
            self._handle.update({"text/plain": ""}, raw=True)
