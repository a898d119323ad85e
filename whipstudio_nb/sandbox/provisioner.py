"""The jupyter_client provisioner of fork-server kernels: it asks the fork server for a kernel
from the host process itself, over the server's Unix socket.

No process stands between jupyter_client and the kernel: a helper process per kernel (a Python
interpreter starting up) cost about a sixth of a kernel's whole CPU time. The socket ties the
lifetimes instead (see forkserver.py): when it closes (the kernel is killed, or the host dies),
the server kills the kernel's process group; when the kernel ends, the server sends its exit
status on it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from importlib.metadata import EntryPoint
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.provisioning.factory import KernelProvisionerFactory

__all__ = ["NAME", "ForkServerProvisioner", "ForkedKernelProcess", "register"]

NAME = "whipstudio-forkserver"


class ForkedKernelProcess:
    """A kernel forked by the fork server, seen through its socket with the part of the
    ``subprocess.Popen`` interface that jupyter_client's ``LocalProvisioner`` uses."""

    stdin = stdout = stderr = None

    def __init__(
        self, server: str, connection_file: str, cwd: str, env: dict[str, str], args: list[str]
    ) -> None:
        self.returncode: int | None = None
        self._buffer = b""
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(30)
            self._sock.connect(server)
            # The signing key reaches the kernel through a pipe that travels with the request:
            # the server passes it on unread, so the key never enters the memory that later
            # kernels are forked from.
            with open(connection_file, "rb") as f:
                connection = f.read()
            r, w = os.pipe()
            try:
                os.write(w, connection)  # a few hundred bytes: well within a pipe's buffer
                os.close(w)
                request = {"connection_file": connection_file, "cwd": cwd, "env": env}
                request["kernel_args"] = args
                socket.send_fds(self._sock, [json.dumps(request).encode() + b"\n"], [r])
            finally:
                os.close(r)
            reply = json.loads(self._line() or b"{}")
        except BaseException:
            self._sock.close()
            raise
        if not reply.get("pid"):
            self._sock.close()
            raise RuntimeError(f"fork server refused: {reply.get('error', 'no reply')}")
        self.pid = int(reply["pid"])  # in the server's PID namespace, not the host's
        self._sock.setblocking(False)

    def _line(self) -> bytes | None:
        """One line from the server; None when none is there yet (a non-blocking socket)."""
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return None
            if not chunk:  # the server closed the connection (or died)
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                line = self._line()
            except OSError:
                line = b""
            if line is not None:
                self._end(_exit_status(line))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._sock.settimeout(timeout)
            try:
                line = self._line()
            except TimeoutError:
                self._sock.setblocking(False)
                raise subprocess.TimeoutExpired("forked kernel", timeout or 0) from None
            except OSError:
                line = b""
            self._end(_exit_status(line))
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if signum == signal.SIGKILL:
            self.kill()
            return
        if self.returncode is None:  # the server sends it on: it sees the kernel's PID
            try:
                self._sock.sendall(json.dumps({"signal": signum}).encode() + b"\n")
            except OSError:
                pass

    def kill(self) -> None:
        """Closing the connection makes the server kill the kernel's process group."""
        if self.returncode is None:
            self._end(-signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _end(self, code: int) -> None:
        self.returncode = int(code)
        self._sock.close()


def _exit_status(line: bytes | None) -> int:
    """The kernel's exit status from the server's last line; 1 when it sent none."""
    try:
        return int(json.loads(line or b"{}").get("exit", 1))
    except (ValueError, TypeError, AttributeError):
        return 1


class ForkServerProvisioner(LocalProvisioner):  # type: ignore[misc]
    """``LocalProvisioner`` with the kernel forked by the fork server at ``config["server"]``
    instead of a process started with ``Popen``."""

    def __init__(self, **kwargs: Any) -> None:
        self.server = str(kwargs.pop("server"))
        super().__init__(**kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        connection_file = str(getattr(self.parent, "connection_file", ""))
        args = cmd[cmd.index(connection_file) + 1 :] if connection_file in cmd else []
        cwd = str(kwargs.get("cwd") or os.getcwd())
        env = dict(kwargs.get("env") or os.environ)
        # the Popen interface LocalProvisioner uses, without a process of its own
        self.process = ForkedKernelProcess(self.server, connection_file, cwd, env, args)  # type: ignore[assignment]
        self.pid = None  # no host process of its own: the kernel lives in the server's view
        self.pgid = None  # signals go through the server
        self.cwd = cwd
        return self.connection_info


def register() -> None:
    """Make the provisioner known to jupyter_client under ``NAME`` (as an installed entry point
    would, without depending on how the package was installed)."""
    KernelProvisionerFactory.provisioners.setdefault(
        NAME,
        EntryPoint(
            name=NAME,
            value=f"{__name__}:ForkServerProvisioner",
            group=KernelProvisionerFactory.GROUP_NAME,
        ),
    )
