"""The memory of everything a graded submission runs, as the kernel's main process (P) sees it.

P samples on its own clock (at least every ``SAMPLE_EVERY_S`` while it waits for events, however
they arrive) and at loss events (at most one sample each ``LOSS_SAMPLE_S``). A sample is A's
resident memory (``/proc/<A>/statm``, what the memory component always read) plus the private
memory (Private_Clean + Private_Dirty in ``smaps_rollup``) of every other process below P that
was not there before A: whatever the submission forked, and whatever was orphaned (P is a child
subreaper). Pages a fork still shares with A cost nothing; what a child allocates counts. When
the submission starts no other process, a sample is A's resident memory alone, as before.
Sampling stops when A exits (its pages become its children's own then) and B, the harness's copy
of A, is left out.

Growth is the peak of the samples over a base (``growth_series``), so memory that a process held
and gave back, or that ended with the process holding it, still shows.
"""

from __future__ import annotations

import math
import os
import time

__all__ = [
    "descendant_pids",
    "MIN_LOSS_EVENTS",
    "SAMPLE_EVERY_S",
    "SETUP_MB",
    "MemoryWatch",
    "growth_series",
    "proc_stats",
]

SAMPLE_EVERY_S = 0.05  # P's own clock
LOSS_SAMPLE_S = 0.01  # loss events this close to the last sample reuse it
PRIVATE_EVERY_S = 0.1  # smaps_rollup costs 1-3 ms a process: re-read at most this often
MIN_LOSS_EVENTS = 4  # fewer loss events than this: no memory measure (as before)
# The most A's base may lie above A's memory at its fork (``growth_series``). task3's fix and
# partial fix, 6 data seeds: A grows 37-47 MB from its fork to the 10 %-th loss event (28-31 MB
# of it library pages a forked process maps back in as it runs them), so this adds up to 7 MB to
# their growth (at most about 11 MB in all); its leaky version, its loss events held back until the
# leak is done, still grows by 37 MB or more (``memory_bad_mb`` is 35).
SETUP_MB = 40.0
_PF_EXITING = 0x4  # /proc/<pid>/stat flags: the process has begun to exit
_MB = 2**20

Key = tuple[int, str]  # (pid, start time): a reused pid is another process


class MemoryWatch:
    """Samples the memory of A and of every other process descended from this one. Made before
    A is forked: the processes already below P then are not the submission's."""

    def __init__(self) -> None:
        self.root = os.getpid()
        self.a_pid = 0
        self._before = {key for key, _ in _descendants(self.root)}
        self._a: list[float] = []  # A's resident memory, MiB, per sample
        self._others: list[dict[int, float]] = []  # every other process's private memory
        self._at_loss: list[int] = []  # the sample taken at each loss event
        self._last = -math.inf
        self._scanned: tuple[float, list[tuple[Key, int]]] = (-math.inf, [])
        self._private: dict[Key, tuple[float, float]] = {}  # -> (read at, MiB)

    def start(self, a_pid: int) -> None:
        """The first sample: A as forked, before it has run anything."""
        self.a_pid = a_pid
        self.sample()

    def tick(self) -> None:
        """A sample on P's clock, when ``SAMPLE_EVERY_S`` has passed since the last one."""
        if time.monotonic() - self._last >= SAMPLE_EVERY_S:
            self.sample()

    def loss_event(self) -> None:
        """A sample at a loss event (they place the base); events that come within
        ``LOSS_SAMPLE_S`` of the last sample share it (a fast loop sends hundreds a second)."""
        recent = bool(self._a) and time.monotonic() - self._last < LOSS_SAMPLE_S
        i = len(self._a) - 1 if recent else self.sample()
        if i is not None:
            self._at_loss.append(i)

    def sample(self) -> int | None:
        """Take a sample; its index, or None once A has begun to exit."""
        now = time.monotonic()
        self._last = now
        if not _running(self.a_pid):
            return None
        a = _rss_mb(self.a_pid)
        others = self._others_mb(now)
        if not a or not _running(self.a_pid):  # A began to exit while it was read
            return None
        if self._others and others == self._others[-1]:
            others = self._others[-1]  # one object for a run of equal samples (loss events)
        self._a.append(a)
        self._others.append(others)
        return len(self._a) - 1

    def summary(self, b_pid: int | None) -> list[float]:
        """``growth_series`` of this run, without B (the harness's copy of A)."""
        totals = [
            a + sum(mb for pid, mb in others.items() if pid != b_pid)
            for a, others in zip(self._a, self._others, strict=True)
        ]
        return growth_series(self._a, totals, self._at_loss)

    def _others_mb(self, now: float) -> dict[int, float]:
        """Private memory of every process below P but A and those there before it; the list of
        processes is refreshed every ``SAMPLE_EVERY_S``, each one's memory every
        ``PRIVATE_EVERY_S``."""
        scanned_at, found = self._scanned
        if now - scanned_at >= SAMPLE_EVERY_S:
            found = [(k, pid) for k, pid in _descendants(self.root) if k not in self._before]
            self._scanned = (now, found)
        out, kept = {}, {}
        for key, pid in found:
            if pid == self.a_pid:
                continue
            read_at, mb = self._private.get(key, (-math.inf, 0.0))
            if now - read_at >= PRIVATE_EVERY_S:
                read_at, mb = now, _private_mb(pid)
            kept[key] = (read_at, mb)
            out[pid] = mb
        self._private = kept
        return out


def growth_series(a_mb: list[float], totals: list[float], at_loss: list[int]) -> list[float]:
    """What the host scores (``metrics.memory``): the base, then every sample (A and the other
    processes); growth is the peak over the base. [] with fewer than ``MIN_LOSS_EVENTS`` loss
    events.

    The base is A's own memory at the loss event a tenth of the way through, as before: by then
    A has mapped back the library code it runs and made its data, model, optimizer state and
    allocator caches, which a base at A's fork would count as growth (37-47 MB for task3's fix,
    more than ``memory_ok_mb``). But the script decides when its events come, so the base is
    never above A's memory at its fork plus ``SETUP_MB``: loss events held back until a leak is
    done hide no more than ``SETUP_MB`` less the setup the run really needed. The other
    processes are measured from nothing (there were none at A's fork), whenever their events
    come: a child that leaks, then exits before A's first loss event, shows in the peak.
    """
    if len(at_loss) < MIN_LOSS_EVENTS:
        return []
    base = min(a_mb[at_loss[max(1, len(at_loss) // 10)]], a_mb[0] + SETUP_MB)
    return [base, *totals]


def _running(pid: int) -> bool:
    """Whether the process exists and has not begun to exit."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()  # from field 3 (state) on
    return len(fields) > 6 and fields[0] not in "ZXx" and not int(fields[6]) & _PF_EXITING


def _rss_mb(pid: int) -> float:
    """A process's resident memory in MiB (0.0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / _MB


def _private_mb(pid: int) -> float:
    """The memory only this process maps (Private_Clean + Private_Dirty), in MiB."""
    kb = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    kb += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return kb / 1024


def proc_stats() -> list[tuple[int, list[str]]]:
    """(pid, fields from field 3, the state, on) of every process in ``/proc/*/stat``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        out.append((int(entry), stat[stat.rfind(")") + 2 :].split()))
    return out


def descendant_pids(root: int) -> list[int]:
    """Every live process below ``root``."""
    return [pid for _, pid in _descendants(root)]


def _descendants(root: int) -> list[tuple[Key, int]]:
    """((pid, start time), pid) of every live process below ``root``, by the parents in
    ``/proc/*/stat``."""
    children: dict[int, list[tuple[Key, int]]] = {}
    for pid, fields in proc_stats():
        if len(fields) > 19 and fields[0] not in "ZXx":
            children.setdefault(int(fields[1]), []).append(((pid, fields[19]), pid))
    found, todo = [], [root]
    while todo:
        for key, pid in children.get(todo.pop(), []):
            found.append((key, pid))
            todo.append(pid)
    return found
