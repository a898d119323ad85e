"""The fork server process ("zygote"): run as ``python -m whipstudio_nb.sandbox.zygote SOCKET``
by ``ForkServerLauncher`` (forkserver.py, which explains the lifetimes). It imports torch,
ipykernel and the in-kernel helpers once, then forks one kernel per request (forkchild.py).

The server is single-threaded (a selector loop), so forking it is safe.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from typing import Any

from .forkchild import PR_SET_CHILD_SUBREAPER, become_kernel, prctl, warm_app_class

__all__ = ["ZygoteServer", "main"]

FORK_RETRY_S = 2.0  # how long a kernel request waits for a free process slot
KERNEL_SLOTS = 32  # processes and threads a kernel needs to start (ipykernel, zmq, torch)


class ZygoteServer:
    """The fork server's single-threaded selector loop: accepts a kernel request (from
    provisioner.py), forks a kernel for it, relays signals and exit statuses, reaps and kills
    what is left over."""

    def __init__(self, path: str, limits: dict[str, int]) -> None:
        self.path = path
        self.limits = limits
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # kernel pid -> its requester's connection
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
        self.timing = False  # log each kernel's start phases (WHIP_KERNEL_TIMING=1)
        # fds of the pool cgroup's pids.current and pids.max, when the host opened them
        self.pids_fds: tuple[int, int] | None = None

    def _on_term(self, *args: Any) -> None:
        self.running = False

    def serve(self) -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while self.running:
            for key, _ in self.sel.select(timeout=1.0):
                # One request's failure is that request's: the server (and with it every
                # kernel it forked, for every session) must outlive it.
                try:
                    self._on_event(key)
                except Exception:
                    traceback.print_exc()
            try:
                self._reap()
            except Exception:
                traceback.print_exc()
        self.shutdown()

    def _on_event(self, key: selectors.SelectorKey) -> None:
        if key.data == "accept":
            self._accept()
        elif key.data == "signal":
            os.read(self.wake_r, 4096)
        elif key.data == "host":
            if not os.read(sys.stdin.fileno(), 4096):  # the host closed it, or died
                self.running = False
        else:
            self._on_request_data(key.data, key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        fds: list[int] = []
        try:
            # the first read also takes the pipe with the connection info (see provisioner.py)
            data, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            while data and not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data.endswith(b"\n"):
                raise ConnectionError("the requester closed before its request")
            request = json.loads(data)
        except Exception as exc:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            conn.close()
            return
        try:
            pid = self._fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            refusal = (
                f"cannot start a kernel ({exc.strerror or exc}): this pool's process limit "
                f"({self.limits.get('processes', 'per user')}) is reached. It frees up as the "
                "kernels holding it end, at their timeout at the latest."
            )
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": refusal}).encode() + b"\n")
            conn.close()
            return
        if pid == 0:  # child: never returns
            become_kernel(request, conn, self, fds[0] if fds else None)
        for fd in fds:  # unread here: the key must not stay in the memory kernels fork from
            os.close(fd)
        conn.settimeout(None)
        self.children[pid] = conn
        self.sel.register(conn, selectors.EVENT_READ, pid)
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:  # the requester gave up waiting: nobody will use this kernel
            self._kill(pid)

    def _free_slots(self) -> int | None:
        """How many more processes and threads the pool's cap allows (None: no cap known)."""
        if self.pids_fds is None:
            return None
        try:
            now, cap = (os.pread(fd, 64, 0).strip() for fd in self.pids_fds)
        except OSError:
            return None
        return None if cap == b"max" else int(cap) - int(now)

    def _fork(self) -> int:
        """fork() once the pool's cap leaves a kernel the slots it needs to start (one started
        with too few dies in a thread start it cannot handle: a segfault in C). Waits a moment,
        reaping, for the slots of kernels that just ended; then raises the OSError to refuse."""
        deadline = time.monotonic() + FORK_RETRY_S
        while True:
            free = self._free_slots()
            try:
                if free is not None and free < KERNEL_SLOTS:
                    raise BlockingIOError(errno.EAGAIN, f"{free} process slots free")
                return os.fork()
            except OSError:
                if time.monotonic() > deadline:
                    raise
            self._reap()
            time.sleep(0.05)

    def _on_request_data(self, pid: int, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the requester is gone (or killed it): the kernel goes too
            with contextlib.suppress(Exception):
                self.sel.unregister(conn)  # a closed socket stays readable: stop watching it
            self._kill(pid)
            return
        # The requester forwards signals as lines ({"signal": N}): it cannot see our PID namespace.
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


_KERNEL_INIT_MODULES = (
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.debugger",
    "IPython.core.completerlib",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "tornado.gen",
    "tornado.locks",
    "tornado.queues",
    "tornado.platform.asyncio",
    "pdb",
    "pydoc",
    "mimetypes",
    "xmlrpc.client",
    "http.server",
    "encodings.idna",
    "encodings.latin_1",
    "encodings.ascii",
    "stringprep",
    "faulthandler",
)


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
    warm_app_class()
    # Every object so far is shared with the kernels: out of the collector's sight, so that a
    # kernel's collections do not write to (and so copy) the pages they live on.
    gc.collect()
    gc.freeze()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    limits = json.loads(os.environ.pop("WHIP_LIMITS", "{}") or "{}")
    server = ZygoteServer(path, limits)
    server.timing = os.environ.pop("WHIP_KERNEL_TIMING", "") == "1"
    pids_fds = os.environ.pop("WHIP_PIDS_FDS", "")
    if pids_fds:
        current, cap = (int(fd) for fd in pids_fds.split(","))
        server.pids_fds = (current, cap)
    views = os.environ.pop("WHIP_PRIVATE_VIEWS", "")
    if views:
        from .seccomp import build_kernel_filter

        server.private_views = json.loads(views)
        server.kernel_filter = build_kernel_filter()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
