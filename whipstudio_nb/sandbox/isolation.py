"""Isolation levels for sandbox kernels, and the operating-system pieces behind them.

- ``strict`` (default on Linux when bubblewrap works): the fork server and every kernel it forks
  run inside ``bwrap`` as an unprivileged host user, with no network and a filesystem built from
  an allowlist (filesystem.py); each kernel has its own PID and mount namespace, a capped
  private tmpfs, no capabilities and a seccomp filter (private_view.py, seccomp.py), plus
  everything below.
- ``basic``: the import policy, a scrubbed environment, resource limits (address space, CPU
  time, file size, open files, number of processes) and cleanup of every process a call started.
  It cannot stop network access, reading files the user can read, or writing where the user can.
- ``none``: explicitly disabled, for trusted local use: scrubbed environment and cleanup only.

``SandboxConfig.isolation`` (``WHIP_ISOLATION``) picks one (``auto`` = strict if possible, else
basic); asking for ``strict`` where it is impossible raises ``SandboxError`` rather than
silently running with less, and with the ``direct`` launcher it is a ``ConfigError``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import SandboxConfig
from ..errors import ConfigError, SandboxError
from .filesystem import Mount

__all__ = [
    "LEVELS",
    "Limits",
    "PidsCgroup",
    "bwrap_argv",
    "bwrap_problem",
    "hidden_paths",
    "resolve_level",
    "sandbox_identity",
    "unprivileged_prefix",
    "warning_for",
]

LEVELS = ("strict", "basic", "none")


@dataclass(frozen=True)
class Limits:
    """Per-kernel resource limits (rlimits, scratch space, results kept by the host) and a
    per-pool process cap, as the fork server applies them. Built from a ``SandboxConfig``
    (``Limits.from_config``), which is where the ``WHIP_*`` variables are read."""

    address_space_mb: int = 4096
    cpu_time_s: int = 600
    file_size_mb: int = 512
    open_files: int = 1024
    processes: int = 512
    scratch_mb: int = 512
    max_results: int = 16
    max_result_bytes: int = 4 * 2**20

    @classmethod
    def from_config(cls, config: SandboxConfig) -> Limits:
        return cls(
            address_space_mb=config.memory_limit_mb,
            cpu_time_s=config.cpu_limit_s,
            file_size_mb=config.file_size_mb,
            open_files=config.open_files,
            processes=config.max_procs,
            scratch_mb=config.scratch_mb,
            max_results=config.max_results,
            max_result_bytes=config.max_result_bytes,
        )

    def to_env(self) -> str:
        import json

        return json.dumps(asdict(self))


# Under a root host, the sandbox runs as this unprivileged user (``nobody``): uid 0 inside a
# user namespace created by root would be uid 0 outside, able to read every root-only file.
def sandbox_identity(user: str | None = None) -> tuple[int, int] | None:
    """(uid, gid) to run the sandbox as, or None when the host user is already unprivileged.
    ``user`` defaults to ``WHIP_SANDBOX_USER`` (``nobody``), read now."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(user or SandboxConfig.from_env().sandbox_user)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


_DROPUID = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_dropuid.py")


def unprivileged_prefix(binds: list[tuple[str, str]], user: str | None = None) -> list[str]:
    """The command that turns a root host into the sandbox user before bwrap ([] otherwise)."""
    ident = sandbox_identity(user)
    if ident is None:
        return []
    import json

    spec = {"uid": ident[0], "gid": ident[1], "binds": [list(b) for b in binds]}
    return [sys.executable, "-I", "-S", _DROPUID, json.dumps(spec), "--"]


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate kernels here, or None if it can (probed once)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    from .seccomp import seccomp_problem

    if (problem := seccomp_problem()) is not None:
        return problem
    try:
        probe = subprocess.run(
            [
                *unprivileged_prefix([]),
                exe,
                *_namespace_args(),
                *_cap_args(),
                "--ro-bind",
                "/usr",
                "/usr",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
                "--symlink",
                "usr/bin",
                "/bin",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--",
                "/bin/sh",
                "-c",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to run: {exc}"
    if probe.returncode != 0:
        who = "an unprivileged user" if sandbox_identity() or os.geteuid() else "root"
        return (
            f"bubblewrap cannot create namespaces as {who} here: {probe.stderr.strip()[:300]} "
            "(unprivileged user namespaces must be allowed; see the README's isolation section)"
        )
    return None


def resolve_level(requested: str | None = None) -> str:
    """The isolation level to use for ``requested`` (a level or ``auto``; default
    ``WHIP_ISOLATION``, read now): ``auto`` is strict where bubblewrap works, else basic.
    ``strict`` where it is impossible raises ``SandboxError`` (the host cannot do it)."""
    if requested is None:
        requested = SandboxConfig.from_env().isolation
    level = requested.strip().lower()
    if level == "auto":
        return "strict" if bwrap_problem() is None else "basic"
    if level not in LEVELS:
        raise ConfigError(
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
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
    ]


# What the fork server keeps so that each kernel's supervisor can build its private world (see
# private_view.py) and bring up loopback in its own network namespace; every kernel drops them
# before it imports or runs anything.
SERVER_CAPS = ("CAP_SYS_ADMIN", "CAP_SETPCAP", "CAP_NET_ADMIN")


def _cap_args() -> list[str]:
    return [arg for cap in SERVER_CAPS for arg in ("--cap-add", cap)]


def bwrap_argv(plan: list[Mount], *, env: dict[str, str], staged: dict[str, str]) -> list[str]:
    """The bwrap command line that wraps the fork server (and so every kernel). ``staged`` maps
    a bind source to the stage directory it is reachable at (see ``unprivileged_prefix``)."""
    exe = shutil.which("bwrap")
    if exe is None:
        raise SandboxError("bubblewrap (bwrap) is not installed")
    argv = [exe, *_namespace_args(), *_cap_args()]
    for m in plan:
        if m.kind in ("ro-bind", "bind") and m.source in staged:
            m = Mount(m.kind, m.dest, staged[m.source], m.why, m.size_mb, m.read_only)
        argv += m.argv()
    argv += ["--remount-ro", "/", "--chdir", "/", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--"]


def hidden_paths(config: SandboxConfig | None = None) -> list[str]:
    """Directories the sandbox must not see: every task-pack directory in use. That is the
    packs shipped with the package (its ``tasks/``, or the checkout's for an editable install),
    the config's ``tasks_path`` and ``extra_masked_dirs``, and ``WHIP_TASKS_PATH`` as it is now:
    a pack path set after the config was read is masked too (masking more costs nothing).
    Computed here rather than asked of ``tasks``: the sandbox layer does not import it."""
    from .filesystem import PACKAGE_DIR

    package = Path(PACKAGE_DIR).resolve()
    dirs = [package / "tasks", package.parent / "tasks"]
    now = SandboxConfig.from_env()
    dirs += [Path(p) for p in (*(config.masked_dirs if config else ()), *now.masked_dirs)]
    return sorted({str(p.resolve()) for p in dirs})


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
            _sweep_stale(base, name.split("-", 1)[0])
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


def _sweep_stale(base: str, prefix: str) -> None:
    """Remove the empty cgroups of pools whose host process is gone (``PREFIX-PID-...``): a
    killed process never removes its own, and they would pile up."""
    try:
        entries = os.listdir(base)
    except OSError:
        return
    for entry in entries:
        parts = entry.split("-", 2)
        if len(parts) < 3 or parts[0] != prefix or not parts[1].isdigit():
            continue
        if os.path.exists(f"/proc/{parts[1]}"):
            continue
        with contextlib.suppress(OSError):  # not empty (a process still runs): keep it
            os.rmdir(os.path.join(base, entry))


def _read(base: str, name: str) -> str:
    try:
        with open(os.path.join(base, name)) as f:
            return f.read()
    except OSError:
        return ""
