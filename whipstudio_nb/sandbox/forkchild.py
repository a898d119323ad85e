"""What a child of the fork server does to become one sandbox kernel (it never returns).

The fork server (zygote.py) forks one child per kernel request; the child drops everything of
the server it must not keep (listening socket, other kernels' connections, signal handlers),
applies the resource limits, and, under strict isolation, builds its private world and forks
the kernel itself, which it then supervises (see private_view.py). Then it turns into an
ipykernel ``IPKernelApp`` on the connection info the host sent (provisioner.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import resource
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from .private_view import (
    CLONE_NEWNET,
    CLONE_NEWPID,
    drop_capabilities,
    enter_private_view,
    loopback_up,
    make_read_only,
    mount_proc,
    unshare,
)

if TYPE_CHECKING:
    from .zygote import ZygoteServer

__all__ = ["EXIT_NO_RESOURCES", "become_kernel", "prctl"]

EXIT_NO_RESOURCES = 75  # a kernel's exit status when it got no process or memory to start

# prctl options that tie lifetimes together (see forkserver.py): die with the parent, keep
# escaped descendants as our own children, and keep our memory unreadable by a kernel.
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4


def prctl(option: int, value: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def become_kernel(
    request: dict[str, Any], conn: socket.socket, server: ZygoteServer, connection_fd: int | None
) -> None:
    """In the forked child: turn into an IPython kernel for the request. Never returns.

    Under strict isolation this child is PID 1 of a new PID namespace: it builds the kernel's
    private world, then forks the kernel itself and supervises it (see private_view.py)."""
    code = 1
    mark = _Phases(server.timing)
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
        for fd in server.pids_fds or ():  # how busy the pool is: not a kernel's business
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the server
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # keep escaped descendants as our own
        mark("cleanup")
        _apply_limits(server.limits)
        mark("limits")
        ready: tuple[int, int] | None = None
        if server.private_views:
            # This process builds the kernel's private world and supervises it; the kernel is
            # its child, PID 1 of a PID namespace of its own.
            # A network namespace of its own: no loopback or abstract Unix socket is shared
            # with another kernel (another session, or the grader's re-run of a submission).
            # The host reaches the kernel over Unix socket files, which namespaces do not hide.
            unshare(CLONE_NEWPID | CLONE_NEWNET)
            loopback_up()
            own = os.path.dirname(request["cwd"])  # the kernel's directory: work/ is in it
            view = server.private_views
            enter_private_view(own, view["pool"], int(server.limits["scratch_mb"]), view["keep"])
            mark("private_view")
            ready = _supervise_kernel(own, log)  # returns in the kernel only
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the supervisor
            mark("supervisor_fork")
            mount_proc()
            # No capability and the filter before anything is imported or run.
            drop_capabilities()
            server.kernel_filter.load()
        mark("seccomp")
        prctl(PR_SET_DUMPABLE, 0 if ready is None else 1)
        conn.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.chdir(request["cwd"])
        env = dict(request["env"])
        env.pop("JPY_PARENT_PID", None)  # our parent is the server; lifetime is handled here
        os.environ.clear()
        os.environ.update(env)
        mark("environment")
        _reseed()
        mark("reseed")
        app = _kernel_app(connection)
        app.initialize(["-f", request["connection_file"], *request.get("kernel_args", [])])
        mark("ipkernel_initialize")
        if ready is not None:  # sockets are bound: the supervisor makes our directory read-only
            os.write(ready[1], b"1")
            os.read(ready[0], 1)
        mark("read_only_dir")
        mark.report(log)
        os.close(log)
        log = -1
        app.start()
        code = 0
    except BaseException as exc:
        code = EXIT_NO_RESOURCES if _for_want_of_resources(exc) else 1
        if log >= 0:
            import traceback

            with contextlib.suppress(OSError):
                os.write(log, f"kernel {os.getpid()} failed to start:\n".encode())
                os.write(log, traceback.format_exc().encode())
    finally:
        os._exit(code)


def _for_want_of_resources(exc: BaseException) -> bool:
    """Whether a kernel failed to start because it got no process, thread or memory: the
    pool's process cap is full (another kernel holds it), not a fault of this kernel's."""
    if isinstance(exc, MemoryError | BlockingIOError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ENOMEM):
        return True
    return isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)


class _Phases:
    """When the server runs with ``WHIP_KERNEL_TIMING=1``: the time since the fork at which
    each phase of a kernel's start ended, written to the server's log as one line
    ``kernel-phases {"limits": ms, ...}`` (read by benchmarks/kernel_start.py)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # this process's CPU time (user + system) so far

    def __call__(self, phase: str) -> None:
        if self.enabled:
            self.marks[phase] = round((time.perf_counter() - self.start) * 1000, 2)
            r = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu[phase] = round((r.ru_utime + r.ru_stime) * 1000, 1)

    def report(self, fd: int) -> None:
        if self.enabled:
            with contextlib.suppress(OSError):
                os.write(fd, f"kernel-phases {json.dumps(self.marks)}\n".encode())
                os.write(fd, f"kernel-phases-cpu {json.dumps(self.cpu)}\n".encode())
                forked = time.monotonic() - (time.perf_counter() - self.start)
                os.write(fd, f"kernel-forked-at {forked:.4f}\n".encode())  # the host's clock too


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
        prctl(PR_SET_DUMPABLE, 0)  # the kernel may not read a privileged process's memory
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
    holds, sent by the host's provisioner) the app takes its ports and key from memory and
    never writes a connection file: the signing key stays off every disk that sandboxed code
    can read."""
    from ipykernel.kernelapp import IPKernelApp

    if connection is None:
        return IPKernelApp.instance()
    app = _in_memory_app_class().instance()
    app.connection_info = dict(connection)
    return app


@functools.cache
def _in_memory_app_class() -> Any:
    """Built once in the fork server (``warm_app_class``): a new traitlets class costs
    milliseconds to set up, which every kernel would pay again."""
    from ipykernel.kernelapp import IPKernelApp

    # (no leading underscore: traitlets turns the class name into command-line options)
    class InMemoryConnectionApp(IPKernelApp):  # type: ignore[misc]
        connection_info: dict[str, Any] = {}

        def init_connection_file(self) -> None:
            self.load_connection_info(self.connection_info)  # type: ignore[arg-type]

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

    return InMemoryConnectionApp


def warm_app_class() -> None:
    _in_memory_app_class()


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
