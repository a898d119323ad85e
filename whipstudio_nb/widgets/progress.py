"""A progress indicator for long calls (grading, probes): elapsed time against the timeout.

In a live kernel it is an ipywidgets progress bar updated from a background thread; elsewhere
(terminal IPython, tests) it stays silent. Either way it is cleared when the call ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._base import in_kernel

if TYPE_CHECKING:
    from .plots import Series

__all__ = ["LiveLossCurve", "progress"]


@contextmanager
def progress(label: str, timeout_s: float, interval_s: float = 0.25) -> Iterator[None]:
    if not in_kernel():
        yield
        return
    import ipywidgets as w
    from IPython.display import display

    bar = w.FloatProgress(value=0.0, min=0.0, max=max(timeout_s, 0.1), bar_style="info")
    text = w.HTML(f"⏳ {label}… 0.0 s (timeout {timeout_s:g} s)")
    box = w.HBox([bar, text])
    handle: Any = display(box, display_id=True)
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(interval_s):
            elapsed = time.monotonic() - started
            bar.value = min(elapsed, bar.max)
            text.value = f"⏳ {label}… {elapsed:.1f} s (timeout {timeout_s:g} s)"

    thread = threading.Thread(target=tick, name="whip-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)
        elapsed = time.monotonic() - started
        box.close()
        if handle is not None:  # leave a one-line record instead of a dead widget
            handle.update({"text/plain": f"✓ {label}: {elapsed:.1f} s"}, raw=True)


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
        if self._handle is None:
            self._handle = display(curve, display_id=True)
        else:
            self._handle.update(curve)
        self.redraws += 1

    def __enter__(self) -> Any:
        return self.on_progress

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            # the result view below shows the whole curve; leave no stale partial one behind
            self._handle.update({"text/plain": ""}, raw=True)
