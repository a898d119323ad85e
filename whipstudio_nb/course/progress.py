"""A terminal progress bar for batch grading: one redrawn line on a terminal, a line every
tenth of the way otherwise (a log file or CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]

WIDTH = 28


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m:d}:{s:02d}"


class ProgressBar:
    def __init__(self, label: str = "grading", stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_tenth = -1

    def line(self, done: int, total: int, last: str = "") -> str:
        elapsed = time.monotonic() - self.started
        frac = done / total if total else 1.0
        filled = round(WIDTH * frac)
        rate = f"{elapsed / done:.1f} s each" if done else "starting"
        eta = _clock(elapsed / done * (total - done)) if done else "?"
        bar = "#" * filled + "." * (WIDTH - filled)
        tail = f"  last: {last}" if last else ""
        return f"{self.label} [{bar}] {done}/{total}  {rate}  ETA {eta}{tail}"

    def update(self, done: int, total: int, last: str = "") -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line(done, total, last)[:160])
            if done >= total:
                self.stream.write("\n")
        else:
            tenth = (10 * done) // max(total, 1)
            if tenth == self._last_tenth and done < total:
                return
            self._last_tenth = tenth
            self.stream.write(self.line(done, total, last) + "\n")
        self.stream.flush()

    def finish(self, total: int) -> str:
        elapsed = time.monotonic() - self.started
        each = elapsed / total if total else 0.0
        return f"graded {total} submissions in {_clock(elapsed)} ({each:.2f} s each)"
