"""A fork server ("zygote") that makes sandbox kernels in tens of milliseconds.

Starting a kernel and importing torch costs seconds; forking a process that already did both
costs milliseconds. The server process imports torch, ipykernel and the in-kernel helpers once,
then forks one child per kernel request. Each child becomes a real IPython kernel (ipykernel's
``IPKernelApp``) on the connection file jupyter_client wrote, in its own session and process
group, with the environment and working directory of the request.

jupyter_client asks the server for each kernel through ``ForkServerProvisioner``
(provisioner.py), over a Unix socket held by the host process. Lifetimes are tied both ways:
- the kernel is killed (shutdown, timeout) or the host dies -> the socket closes -> the server
  kills the kernel's process group;
- the kernel exits -> the server reaps it and sends the exit status on the socket;
- the server dies -> every child gets SIGKILL (PR_SET_PDEATHSIG);
- the host dies -> the server's stdin (a pipe only the host holds) reaches EOF; the server
  kills the children and exits (this works across the PID namespace of strict isolation);
- a process that escapes its kernel's process group (double fork + setsid) is still re-parented
  to its kernel (a child subreaper) and, when the kernel ends, to the server (also a subreaper),
  which kills every child that is not a live kernel.

This module is the host side (``ForkServerLauncher``); the server process is zygote.py and what
each forked child does to become a kernel is forkchild.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import Any

from ..config import SandboxConfig
from ..errors import SandboxError
from .filesystem import mount_plan, untraversable
from .isolation import (
    Limits,
    PidsCgroup,
    bwrap_argv,
    hidden_paths,
    resolve_level,
    sandbox_identity,
    unprivileged_prefix,
)
from .kernel import Launcher, kernel_env
from .provisioner import NAME as PROVISIONER
from .provisioner import register as register_provisioner

__all__ = ["ForkServerLauncher"]


class ForkServerLauncher(Launcher):
    """Launches kernels by asking a warm fork server; the server is started on first use."""

    name = "forkserver"

    def __init__(
        self,
        startup_timeout: float = 120.0,
        isolation: str | None = None,
        *,
        config: SandboxConfig | None = None,
    ) -> None:
        # The config is read here, once (WHIP_* variables when none is given); ``isolation``
        # overrides its level.
        self.config = (config or SandboxConfig.from_env()).with_overrides(isolation=isolation)
        self.startup_timeout = startup_timeout
        # raises if strict is required but impossible
        self.isolation = resolve_level(self.config.isolation)
        self.limits = Limits.from_config(self.config)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._root: str | None = None  # holds the pool directory and the connection files
        self._dir: str | None = None  # the pool: sockets, kernels' work dirs (seen by kernels)
        self._cgroup: PidsCgroup | None = None
        self._identity: tuple[int, int] | None = None  # the sandbox user, under a root host
        self._closed = False

    @property
    def socket_path(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "fork.sock")

    @property
    def connection_dir(self) -> str | None:  # type: ignore[override]
        # Connection files hold each kernel's signing key: with it, code in one kernel could
        # drive another (plant code in a warm kernel that will grade a submission). They live
        # beside the pool, never inside it, and strict isolation hides this directory.
        return None if self._root is None else os.path.join(self._root, "conn")

    @property
    def base_dir(self) -> str | None:  # type: ignore[override]
        # Kernels keep their files under the server's directory, so that if the host dies
        # without cleaning up, the server's own exit removes everything in one place.
        return self._dir

    def prepare(self) -> None:
        self.ensure_started()

    def ensure_started(self) -> None:
        with self._lock:
            if self._closed:
                raise SandboxError("fork server launcher is closed")
            if self._proc is not None and self._proc.poll() is None:
                return
            self._stop_locked()
            self._identity = (
                sandbox_identity(self.config.sandbox_user) if self.isolation == "strict" else None
            )
            self._root = tempfile.mkdtemp(prefix="whip-fs-", dir=self._reachable_tmp())
            self._dir = os.path.join(self._root, "pool")
            os.mkdir(self._dir)
            os.mkdir(os.path.join(self._root, "conn"), 0o700)  # signing keys: host only
            workdir = os.path.join(self._dir, "work")
            os.mkdir(workdir)
            if self._identity is not None:
                # The sandbox user creates the kernels' sockets in the pool; nothing else here
                # is theirs (conn/ stays root-only).
                os.chmod(self._root, 0o711)
                os.chown(self._dir, *self._identity)
            argv, env = self._server_command(workdir)
            # The server's stderr goes to a file: a pipe nobody reads could fill up and block it.
            # Its stdin is a pipe that only this process holds: EOF tells it the host is gone.
            log_path = os.path.join(self._root, "server.log")  # host only, never in the pool
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    cwd=workdir,
                    start_new_session=True,
                )
            line = _readline_with_timeout(proc, self.startup_timeout)
            if line.strip() != b"ready":
                proc.kill()
                proc.wait()
                err = ""
                with contextlib.suppress(OSError), open(log_path, "rb") as f:
                    err = f.read().decode(errors="replace")
                raise SandboxError(f"fork server failed to start: {line!r} {err[-2000:]}")
            self._proc = proc

    def _reachable_tmp(self) -> str | None:
        """Where the pool goes: the temporary directory, unless the sandbox user cannot reach
        it (a root-only TMPDIR), then /tmp."""
        if self._identity is None:
            return None
        uid, gid = self._identity
        for candidate in (tempfile.gettempdir(), "/tmp", "/dev/shm"):
            if os.path.isdir(candidate) and not untraversable(candidate, uid, {gid}):
                return candidate
        return None

    def _server_command(self, workdir: str) -> tuple[list[str], dict[str, str]]:
        assert self._dir is not None and self._root is not None
        env = kernel_env(workdir)
        # No user-writable directory on the server's sys.path or as its cwd: it is "/" (read-only)
        # under strict, and neither the cwd nor a user site directory is ever on its path.
        env.update(
            PYTHONSAFEPATH="1",
            PYTHONNOUSERSITE="1",
            HOME="/",
            TMPDIR="/tmp",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            MPLCONFIGDIR="/tmp/mpl",
        )
        join = ""
        if self.isolation != "none" and os.geteuid() == 0:
            # one cap for this pool's processes, whatever user they run as
            name = f"whipstudio-{os.getpid()}-{os.path.basename(self._root)}"
            self._cgroup = PidsCgroup.create(name, self.limits.processes)
            if self._cgroup is not None:
                # The server reads the cap's count through fds 3 and 4 (it sees no cgroup fs
                # inside bwrap): it starts no kernel that would find no slot for its threads.
                cg = self._cgroup.path
                join = (
                    f'echo $$ > "{self._cgroup.procs_file}" || exit 1; '
                    f'exec 3<"{cg}/pids.current" 4<"{cg}/pids.max" || exit 1; '
                )
                env["WHIP_PIDS_FDS"] = "3,4"
        limits = json.loads(self.limits.to_env())
        limits["nproc_rlimit"] = self._cgroup is None
        env["WHIP_LIMITS"] = json.dumps(limits) if self.isolation != "none" else "{}"
        env["WHIP_KERNEL_PRELOAD"] = json.dumps(list(self.preload))
        if os.environ.get("WHIP_KERNEL_TIMING") == "1":  # benchmarks/kernel_start.py
            env["WHIP_KERNEL_TIMING"] = "1"
        argv = [sys.executable, "-m", "whipstudio_nb.sandbox.zygote", self.socket_path]
        if self.isolation == "strict":
            env["WHIP_PRIVATE_VIEWS"] = json.dumps({"pool": self._dir, "keep": self._keep})
            argv = self._sandboxed(argv, env)
        # A small shell stays outside the sandbox: it joins the cgroup, runs the server and, when
        # the server is gone (even if this host was killed), removes the pool's directory, which
        # the server itself cannot remove from inside bwrap (it is a mount point there).
        script = f'{join}"$@"; rc=$?; [ $rc = 0 ] && rm -rf "{self._root}"; exit $rc'
        return ["/bin/sh", "-c", script, "sh", *argv], env

    @property
    def _keep(self) -> list[str]:
        """Bound directories under /tmp, which each kernel's private /tmp must keep visible."""
        from .filesystem import python_roots

        return [p for p, _ in python_roots() if p == "/tmp" or p.startswith("/tmp/")]

    def _sandboxed(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """``argv`` inside bwrap, as the unprivileged sandbox user when the host is root."""
        assert self._root is not None and self._dir is not None
        passwd, group = os.path.join(self._root, "passwd"), os.path.join(self._root, "group")
        with open(passwd, "w") as f:
            f.write("root:x:0:0::/:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n")
        with open(group, "w") as f:
            f.write("root:x:0:\nnogroup:x:65534:\n")
        for path in (passwd, group):
            os.chmod(path, 0o644)
        hidden = hidden_paths(self.config)
        plan = mount_plan(pool_dir=self._dir, hidden=hidden, passwd=passwd, group=group)
        staged: dict[str, str] = {}
        if self._identity is not None:
            uid, gid = self._identity
            for m in plan:
                if m.kind in ("ro-bind", "bind") and untraversable(m.source, uid, {gid}):
                    stage = os.path.join(self._root, f"stage{len(staged)}")
                    if os.path.isdir(m.source):
                        os.mkdir(stage, 0o755)
                    else:
                        open(stage, "w").close()
                    staged[m.source] = stage
        prefix = unprivileged_prefix(list(staged.items()), self.config.sandbox_user)
        return [*prefix, *bwrap_argv(plan, env=env, staged=staged), *argv]

    def own_kernel_dir(self, path: str) -> None:
        """Hand a kernel's directory (its sockets and work dir) to the sandbox user."""
        if self._identity is not None:
            for root, dirs, _files in os.walk(path):
                for name in [root, *(os.path.join(root, d) for d in dirs)]:
                    os.chown(name, *self._identity)

    def provisioner(self) -> dict[str, Any] | None:
        # argv stays "python -m ipykernel_launcher -f {connection_file} <kernel args>": nothing
        # runs it; the provisioner asks the server for a fork with those arguments.
        register_provisioner()
        return {"provisioner_name": PROVISIONER, "config": {"server": self.socket_path}}

    def server_log(self) -> str:
        """What the fork server wrote to its log (failures; start phases with timing on)."""
        if self._root is None:
            return ""
        try:
            with open(
                os.path.join(self._root, "server.log"), encoding="utf-8", errors="replace"
            ) as f:
                return f.read()
        except OSError:
            return ""

    @property
    def server_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the server kills its kernels and exits
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._root is not None:
            import shutil

            shutil.rmtree(self._root, ignore_errors=True)
            self._root = self._dir = None


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    result: list[bytes] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else b""
