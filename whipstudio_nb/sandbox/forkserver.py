"""A fork server ("zygote") that makes sandbox kernels in tens of milliseconds.

Starting a kernel and importing torch costs seconds; forking a process that already did both
costs milliseconds. The server process imports torch, ipykernel and the in-kernel helpers once,
then forks one child per kernel request. Each child becomes a real IPython kernel (ipykernel's
``IPKernelApp``) on the connection file jupyter_client wrote, in its own session and process
group, with the environment and working directory of the request.

jupyter_client launches ``_forkshim.py`` (see ``ForkServerLauncher.wrap``), which stands in for
the kernel. Lifetimes are tied both ways:
- the shim is killed (kernel shutdown, timeout) -> its connection closes -> the server kills the
  kernel's process group;
- the kernel exits -> the server reaps it and sends the exit status -> the shim exits with it;
- the server dies -> every child gets SIGKILL (PR_SET_PDEATHSIG);
- the host dies -> the server's stdin (a pipe only the host holds) reaches EOF; the server
  kills the children and exits (this works across the PID namespace of strict isolation);
- a process that escapes its kernel's process group (double fork + setsid) is still re-parented
  to its kernel (a child subreaper) and, when the kernel ends, to the server (also a subreaper),
  which kills every child that is not a live kernel.

The server is single-threaded (a selector loop), so forking it is safe.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

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
from .private_view import (
    CLONE_NEWPID,
    drop_capabilities,
    enter_private_view,
    make_read_only,
    mount_proc,
    unshare,
)

__all__ = ["ForkServerLauncher"]

_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_forkshim.py")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


# =============================================================================== host side


class ForkServerLauncher(Launcher):
    """Launches kernels by asking a warm fork server; the server is started on first use."""

    name = "forkserver"

    def __init__(self, startup_timeout: float = 120.0, isolation: str | None = None) -> None:
        self.startup_timeout = startup_timeout
        self.isolation = resolve_level(isolation)  # raises if strict is required but impossible
        self.limits = Limits()
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
            self._identity = sandbox_identity() if self.isolation == "strict" else None
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
        env.update(PYTHONSAFEPATH="1", PYTHONNOUSERSITE="1", HOME="/", TMPDIR="/tmp",
                   PYDEVD_DISABLE_FILE_VALIDATION="1",
                   MPLCONFIGDIR="/tmp/mpl")  # fmt: skip
        join = ""
        if self.isolation != "none" and os.geteuid() == 0:
            # one cap for this pool's processes, whatever user they run as
            name = f"whipstudio-{os.getpid()}-{os.path.basename(self._root)}"
            self._cgroup = PidsCgroup.create(name, self.limits.processes)
            if self._cgroup is not None:
                join = f'echo $$ > "{self._cgroup.procs_file}" || exit 1; '
        limits = json.loads(self.limits.to_env())
        limits["nproc_rlimit"] = self._cgroup is None
        env["WHIP_LIMITS"] = json.dumps(limits) if self.isolation != "none" else "{}"
        env["WHIP_KERNEL_PRELOAD"] = json.dumps(list(self.preload))
        argv = [sys.executable, "-m", "whipstudio_nb.sandbox.forkserver", self.socket_path]
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
        plan = mount_plan(pool_dir=self._dir, hidden=hidden_paths(), passwd=passwd, group=group)
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
        prefix = unprivileged_prefix(list(staged.items()))
        return [*prefix, *bwrap_argv(plan, env=env, staged=staged), *argv]

    def own_kernel_dir(self, path: str) -> None:
        """Hand a kernel's directory (its sockets and work dir) to the sandbox user."""
        if self._identity is not None:
            for root, dirs, _files in os.walk(path):
                for name in [root, *(os.path.join(root, d) for d in dirs)]:
                    os.chown(name, *self._identity)

    def wrap(self, argv: list[str], *, workdir: str, tmpdir: str) -> list[str]:
        # argv is "python -m ipykernel_launcher -f {connection_file} <kernel args>".
        kernel_args = argv[argv.index("-f") + 2 :]
        return [
            sys.executable,
            "-I",
            "-S",
            _SHIM,
            self.socket_path,
            "{connection_file}",
            *kernel_args,
        ]

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


# ============================================================================= server side


class _Server:
    def __init__(self, path: str, limits: dict[str, int]) -> None:
        self.path = path
        self.limits = limits
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # kernel pid -> its shim's connection
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(64)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.signal(signal.SIGTERM, self._on_term)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "signal")
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "host")
        self.running = True
        # strict: {"pool": dir, "keep": [...]}; each kernel then gets its own PID namespace
        self.private_views: dict[str, Any] | None = None
        self.kernel_filter: Any = None  # the seccomp filter, built once before any fork

    def _on_term(self, *args: Any) -> None:
        self.running = False

    def serve(self) -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while self.running:
            for key, _ in self.sel.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "signal":
                    os.read(self.wake_r, 4096)
                elif key.data == "host":
                    if not os.read(sys.stdin.fileno(), 4096):  # the host closed it, or died
                        self.running = False
                else:
                    self._on_shim_data(key.data, key.fileobj)  # type: ignore[arg-type]
            self._reap()
        self.shutdown()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        fds: list[int] = []
        try:
            # the first read also takes the pipe that carries the connection info (see the shim)
            data, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            while data and not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data.endswith(b"\n"):
                raise ConnectionError("shim closed before its request")
            request = json.loads(data)
        except Exception as exc:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            conn.close()
            return
        pid = os.fork()
        if pid == 0:  # child: never returns
            _become_kernel(request, conn, self, fds[0] if fds else None)
        for fd in fds:  # unread here: the key must not stay in the memory kernels fork from
            os.close(fd)
        conn.settimeout(None)
        self.children[pid] = conn
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        self.sel.register(conn, selectors.EVENT_READ, pid)

    def _on_shim_data(self, pid: int, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the shim is gone: the kernel goes too
            with contextlib.suppress(Exception):
                self.sel.unregister(conn)  # a closed socket stays readable: stop watching it
            self._kill(pid)
            return
        # The shim forwards signals as lines ({"signal": N}): it cannot see our PID namespace.
        for line in data.splitlines():
            with contextlib.suppress(ValueError, TypeError, ProcessLookupError):
                signum = int(json.loads(line)["signal"])
                if signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    os.kill(pid, signum)

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _sweep_orphans(self) -> None:
        """Kill children of this server that are not kernels: processes that escaped a kernel
        which has since ended (they were re-parented here)."""
        me = os.getpid()
        try:
            text = open(f"/proc/{me}/task/{me}/children").read()
            kids = {int(p) for p in text.split()}
        except OSError:
            kids = set()
        for pid in kids - set(self.children):
            self._kill(pid)

    def _reap(self) -> None:
        self._sweep_orphans()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # Anything the kernel left running in its process group goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            self._sweep_orphans()  # what this kernel left behind was just re-parented here
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                conn.sendall(
                    json.dumps({"exit": code if code >= 0 else 128 - code}).encode() + b"\n"
                )
            with contextlib.suppress(Exception):
                self.sel.unregister(conn)
            conn.close()

    def shutdown(self) -> None:
        for pid in list(self.children):
            self._kill(pid)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        # The kernels are gone: remove their files and this server's own, so that nothing is left
        # even when the host could not clean up (it was killed, or interrupted while exiting).
        import shutil

        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def _become_kernel(
    request: dict[str, Any], conn: socket.socket, server: _Server, connection_fd: int | None
) -> None:
    """In the forked child: turn into an IPython kernel for the request. Never returns.

    Under strict isolation this child is PID 1 of a new PID namespace: it builds the kernel's
    private world, then forks the kernel itself and supervises it (see private_view.py)."""
    code = 1
    log = os.dup(2)  # the server's log, for failures before the kernel runs (closed then)
    try:
        connection = None
        if connection_fd is not None:
            with os.fdopen(connection_fd, "rb") as pipe:
                connection = json.loads(pipe.read())
        server.sel.close()
        server.listener.close()
        os.close(0)
        for other in server.children.values():
            other.close()
        os.close(server.wake_r)
        os.close(server.wake_w)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the server
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # keep escaped descendants as our own
        _apply_limits(server.limits)
        ready: tuple[int, int] | None = None
        if server.private_views:
            # This process builds the kernel's private world and supervises it; the kernel is
            # its child, PID 1 of a PID namespace of its own.
            unshare(CLONE_NEWPID)
            own = os.path.dirname(request["cwd"])  # the kernel's directory: work/ is in it
            view = server.private_views
            enter_private_view(own, view["pool"], int(server.limits["scratch_mb"]), view["keep"])
            ready = _supervise_kernel(own, log)  # returns in the kernel only
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the supervisor
            mount_proc()
            # No capability and the filter before anything is imported or run.
            drop_capabilities()
            server.kernel_filter.load()
        _prctl(_PR_SET_DUMPABLE, 0 if ready is None else 1)
        conn.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.chdir(request["cwd"])
        env = dict(request["env"])
        env.pop("JPY_PARENT_PID", None)  # our parent is the server; lifetime is handled here
        os.environ.clear()
        os.environ.update(env)
        _reseed()
        app = _kernel_app(connection)
        app.initialize(["-f", request["connection_file"], *request.get("kernel_args", [])])
        if ready is not None:  # sockets are bound: the supervisor makes our directory read-only
            os.write(ready[1], b"1")
            os.read(ready[0], 1)
        os.close(log)
        log = -1
        app.start()
        code = 0
    except BaseException:
        code = 1
        if log >= 0:
            import traceback

            with contextlib.suppress(OSError):
                os.write(log, f"kernel {os.getpid()} failed to start:\n".encode())
                os.write(log, traceback.format_exc().encode())
    finally:
        os._exit(code)


def _supervise_kernel(own_dir: str, log: int) -> tuple[int, int]:
    """Fork the kernel. In the kernel, return the pipe ends of the "sockets bound" handshake;
    here (still privileged, running no user code) wait for that, make the kernel's own
    directory read-only (no write ever reaches the host's disk), forward signals and exit with
    the kernel's status. The kernel is PID 1 of its namespace: when it ends, so does every
    process it started."""
    to_sup_r, to_sup_w = os.pipe()
    to_kernel_r, to_kernel_w = os.pipe()
    kernel = os.fork()
    if kernel == 0:
        os.close(to_sup_r)
        os.close(to_kernel_w)
        return to_kernel_r, to_sup_w
    code = 1
    try:
        os.close(to_sup_w)
        os.close(to_kernel_r)
        _prctl(_PR_SET_DUMPABLE, 0)  # the kernel may not read a privileged process's memory
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: os.kill(kernel, signum))
        try:
            if os.read(to_sup_r, 1):
                make_read_only(own_dir)
                os.write(to_kernel_w, b"1")
        except OSError as exc:  # fail closed: a kernel that could write here never runs code
            with contextlib.suppress(OSError):
                os.write(log, f"kernel supervisor: {exc}\n".encode())
                os.kill(kernel, signal.SIGKILL)
        os.close(log)
        while True:
            try:
                _, status = os.waitpid(kernel, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
    finally:
        os._exit(code)


def _kernel_app(connection: dict[str, Any] | None) -> Any:
    """The IPKernelApp for this kernel. With ``connection`` (what the host's connection file
    holds, sent by the shim) the app takes its ports and key from memory and never writes a
    connection file: the signing key stays off every disk that sandboxed code can read."""
    from ipykernel.kernelapp import IPKernelApp

    if connection is None:
        return IPKernelApp.instance()
    info = dict(connection)

    # (no leading underscore: traitlets turns the class name into command-line options)
    class InMemoryConnectionApp(IPKernelApp):  # type: ignore[misc]
        def init_connection_file(self) -> None:
            self.load_connection_info(info)  # type: ignore[arg-type]

        def write_connection_file(self, **kwargs: Any) -> None:
            pass

        def parse_command_line(self, argv: Any = None) -> None:
            # Our own arguments are all "-f FILE" and "--Class.trait=value": applying them
            # directly skips building an argparse parser for every configurable (~60 ms).
            config = _simple_config(list(argv or []))
            if config is None:
                super().parse_command_line(argv)
            else:
                self.update_config(config)

    return InMemoryConnectionApp.instance()


def _simple_config(argv: list[str]) -> Any:
    """A traitlets Config for ``-f FILE --A.b=c ...``, or None for anything else."""
    from traitlets.config import Config

    config = Config()
    args = iter(argv)
    for arg in args:
        if arg == "-f":
            config.IPKernelApp.connection_file = next(args, "")
        elif arg.startswith("--") and "=" in arg and arg.count(".", 0, arg.index("=")) == 1:
            key, value = arg[2:].split("=", 1)
            cls, trait = key.split(".")
            parsed: Any = {"True": True, "False": False}.get(value, value)
            setattr(getattr(config, cls), trait, parsed)
        else:
            return None
    return config


def _apply_limits(limits: dict[str, int]) -> None:
    """rlimits for this kernel and everything it starts."""
    if not limits:  # isolation "none"
        return
    mb = 2**20
    wanted = {
        resource.RLIMIT_AS: limits["address_space_mb"] * mb,
        resource.RLIMIT_CPU: limits["cpu_time_s"],
        resource.RLIMIT_FSIZE: limits["file_size_mb"] * mb,
        resource.RLIMIT_NOFILE: limits["open_files"],
        resource.RLIMIT_CORE: 0,
    }
    # RLIMIT_NPROC counts every process of the user on the whole host (all sandboxes run as the
    # same user): only where no per-pool cgroup caps the processes instead.
    if limits.get("nproc_rlimit", True):
        wanted[resource.RLIMIT_NPROC] = limits["processes"]
    for res, value in wanted.items():
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(res, (value, value))


def _reseed() -> None:
    """A forked child inherits its parent's random state; give it fresh entropy, as a new
    process has (Python, numpy and torch all seed themselves that way)."""
    import random

    random.seed()
    with contextlib.suppress(Exception):
        import numpy as np

        np.random.seed()
    with contextlib.suppress(Exception):
        import torch

        torch.seed()


_KERNEL_INIT_MODULES = (
    "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "IPython.core.debugger",
    "IPython.core.completerlib", "IPython.core.oinspect", "IPython.extensions.storemagic",
    "IPython.utils.wildcard", "tornado.gen", "tornado.locks", "tornado.queues",
    "tornado.platform.asyncio", "pdb", "pydoc", "mimetypes", "xmlrpc.client", "http.server",
    "encodings.idna", "encodings.latin_1", "encodings.ascii", "stringprep", "faulthandler",
)  # fmt: skip


def main() -> int:
    path = sys.argv[1]
    # Import everything a kernel needs once, here, so every fork starts warm: each kernel's
    # IPKernelApp.initialize() would otherwise import ~150 modules (the shell, the debugger).
    import importlib

    import ipykernel.kernelapp  # noqa: F401

    from . import kernel_lib

    for name in _KERNEL_INIT_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

    kernel_lib.warm_up(json.loads(os.environ.pop("WHIP_KERNEL_PRELOAD", "[]") or "[]"))
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    limits = json.loads(os.environ.pop("WHIP_LIMITS", "{}") or "{}")
    server = _Server(path, limits)
    views = os.environ.pop("WHIP_PRIVATE_VIEWS", "")
    if views:
        from .seccomp import build_kernel_filter

        server.private_views = json.loads(views)
        server.kernel_filter = build_kernel_filter()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
