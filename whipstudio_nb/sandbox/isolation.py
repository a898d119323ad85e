"""Isolation levels for sandbox kernels, and the operating-system pieces behind them.

- ``strict`` (default on Linux when bubblewrap works): the fork server and every kernel it forks
  run inside ``bwrap`` with no network, a read-only view of the system, private ``/tmp`` and
  HOME, the task packs hidden, their own PID namespace, no capabilities, plus everything below.
- ``basic``: the import policy, a scrubbed environment, resource limits (address space, CPU
  time, file size, open files, number of processes) and cleanup of every process a call started.
  It cannot stop network access, reading files the user can read, or writing where the user can.
- ``none``: explicitly disabled, for trusted local use: scrubbed environment and cleanup only.

``WHIP_ISOLATION`` picks one (``auto`` = strict if possible, else basic); asking for ``strict``
where it is impossible raises ``SandboxError`` rather than silently running with less.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SandboxError

__all__ = [
    "LEVELS",
    "Limits",
    "PidsCgroup",
    "bwrap_argv",
    "bwrap_problem",
    "hidden_paths",
    "resolve_level",
    "warning_for",
]

LEVELS = ("strict", "basic", "none")


@dataclass(frozen=True)
class Limits:
    """Per-kernel resource limits (rlimits) and a per-pool process cap."""

    address_space_mb: int = int(os.environ.get("WHIP_MEMORY_LIMIT_MB", "4096"))
    cpu_time_s: int = int(os.environ.get("WHIP_CPU_LIMIT_S", "600"))
    file_size_mb: int = 512
    open_files: int = 1024
    processes: int = int(os.environ.get("WHIP_MAX_PROCS", "512"))

    def to_env(self) -> str:
        import json

        return json.dumps(asdict(self))


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate kernels here, or None if it can (probed once)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run(
            [exe, *_namespace_args(), *_cap_args(), "--ro-bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev",
             "--", sys.executable, "-c", "pass"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to run: {exc}"
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


def resolve_level(requested: str | None = None) -> str:
    """The isolation level to use: ``requested`` or ``WHIP_ISOLATION`` (default ``auto``)."""
    level = (requested or os.environ.get("WHIP_ISOLATION") or "auto").strip().lower()
    if level == "auto":
        return "strict" if bwrap_problem() is None else "basic"
    if level not in LEVELS:
        raise SandboxError(
            f"WHIP_ISOLATION must be one of auto, {', '.join(LEVELS)} (got {level!r})"
        )
    if level == "strict" and (problem := bwrap_problem()) is not None:
        raise SandboxError(f"strict isolation was required but is not possible: {problem}")
    return level


def warning_for(level: str) -> str | None:
    """The one-line warning a user must see when isolation is weaker than strict."""
    if level == "basic":
        return (
            f"Sandbox isolation is 'basic' ({bwrap_problem() or 'strict not requested'}): "
            "resource limits and cleanup only; code can still reach the network and your files."
        )
    if level == "none":
        return "Sandbox isolation is disabled (WHIP_ISOLATION=none): run only code you trust."
    return None


def _namespace_args() -> list[str]:
    return [
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--cap-drop", "ALL",
    ]  # fmt: skip


# What the fork server keeps so that each kernel can set up its private view of the pool
# directory (see private_view.py); every kernel drops them before it runs any code.
SERVER_CAPS = ("CAP_SYS_ADMIN", "CAP_SETPCAP")


def _cap_args() -> list[str]:
    return [arg for cap in SERVER_CAPS for arg in ("--cap-add", cap)]


def bwrap_argv(*, pool_dir: str, workdir: str, hidden: list[str], env: dict[str, str]) -> list[str]:
    """The bwrap command line that wraps the fork server (and so every kernel)."""
    exe = shutil.which("bwrap")
    if exe is None:
        raise SandboxError("bubblewrap (bwrap) is not installed")
    argv = [exe, *_namespace_args(), *_cap_args(), "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc"]  # fmt: skip
    homes = {h for h in ("/root", "/home", os.path.expanduser("~")) if os.path.isdir(h)}
    masked = sorted({"/tmp", "/var/tmp", "/dev/shm", *homes})
    for path in masked:
        argv += ["--tmpfs", path]
    # ...but the interpreter, the venv and the package itself may live under one of them
    # (pyenv in a home, a checkout in /tmp): bring exactly those back, read-only. The task
    # packs are hidden again below, whatever these bring back.
    for path in _python_paths():
        if any(path == m or path.startswith(m + os.sep) for m in masked):
            argv += ["--ro-bind", path, path]
    for path in hidden:  # task packs: solutions and grader data never reach a kernel
        if os.path.isdir(path):
            argv += ["--tmpfs", path]
    # The pool's own directory (sockets, connection files, kernels' work dirs) stays writable.
    argv += ["--bind", pool_dir, pool_dir, "--chdir", workdir, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--"]


def _python_paths() -> list[str]:
    """Directories this interpreter needs: its prefixes and everything on sys.path."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *sys.path}  # fmt: skip
    found = {os.path.realpath(p) for p in candidates if p and os.path.isdir(p)}
    found |= {p for p in candidates if p and os.path.isdir(p)}  # symlinked paths as well
    # Parents first, and no path inside another one already listed.
    kept: list[str] = []
    for p in sorted(found):
        if not any(p.startswith(k + os.sep) for k in kept):
            kept.append(p)
    return kept


def hidden_paths() -> list[str]:
    """Directories the sandbox must not see: every task-pack directory in use."""
    from ..tasks import _search_dirs

    paths = {str(Path(p).resolve()) for p in _search_dirs()}
    return sorted(paths)


class PidsCgroup:
    """A cgroup that caps the number of processes (and threads) of one fork server and all its
    kernels: a fork bomb hits this wall instead of the machine's. Needs a writable pids
    controller (root, cgroup v1 or v2); ``create`` returns None where there is none."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str, max_pids: int) -> PidsCgroup | None:
        for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
            if not os.path.isfile(os.path.join(base, "cgroup.procs")):
                continue
            if base == "/sys/fs/cgroup" and "pids" not in _read(base, "cgroup.controllers"):
                continue
            path = os.path.join(base, name)
            try:
                os.makedirs(path, exist_ok=True)
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(max_pids))
            except OSError:
                continue
            return cls(path)
        return None

    @property
    def procs_file(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    def remove(self) -> None:
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def _read(base: str, name: str) -> str:
    try:
        with open(os.path.join(base, name)) as f:
            return f.read()
    except OSError:
        return ""
