"""A progress indicator for long calls (grading, probes): elapsed time against the timeout.

In a live kernel it is an ipywidgets progress bar updated from a background thread; elsewhere
(terminal IPython, tests) it stays silent. Either way it is cleared when the call ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._base import in_kernel

__all__ = ["progress"]


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
