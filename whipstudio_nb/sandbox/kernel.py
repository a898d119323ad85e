"""One sandbox kernel: an IPython kernel launched through jupyter_client, used once, then killed.

The kernel runs this interpreter (``sys.executable -m ipykernel_launcher``) from a KernelSpec
built in code, so no installed kernelspec is needed. On Linux it talks over IPC sockets kept in a
private temporary directory that also holds its working directory; everything is removed on
shutdown. ``Launcher.wrap`` is the one place where an isolation wrapper (bwrap) is added.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import SandboxConfig
from ..errors import SandboxError

__all__ = [
    "PROGRESS_MIME",
    "RESULT_MIME",
    "AttachedCell",
    "ExecResult",
    "Launcher",
    "ProgressCallback",
    "SandboxKernel",
    "kernel_env",
]

RESULT_MIME = "application/vnd.whipstudio.result+json"
ATTACHMENT_KEY = "whip_dispatch"  # the execute request's metadata key (kernel_lib's too)
PROGRESS_MIME = "application/vnd.whipstudio.progress+json"
ProgressCallback = Callable[[dict[str, Any]], None]
OUTPUT_CAP = 64 * 1024

# Host variables a kernel may see; everything else (API keys, tokens...) is dropped.
_ENV_ALLOW = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)


def kernel_env(workdir: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_ALLOW if k in os.environ}
    env.update(
        HOME=workdir,
        TMPDIR=workdir,
        IPYTHONDIR=os.path.join(workdir, ".ipython"),
        MPLCONFIGDIR=os.path.join(workdir, ".mpl"),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        # One thread each: deterministic numerics, and two kernels don't fight over two cores.
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    env.setdefault("PATH", os.defpath)
    return env


class Launcher:
    """Builds the kernel's command line. Subclasses wrap it (for example in bwrap)."""

    name = "direct"
    isolation = "none"
    base_dir: str | None = None  # where kernels put their temporary directories
    connection_dir: str | None = None  # where connection files go (None: the kernel's tmpdir)
    preload: tuple[str, ...] = ()  # modules every kernel imports while warming up

    def __init__(self, config: SandboxConfig | None = None) -> None:
        # A direct launch applies no limits, but the host still caps what a call may return.
        self.config = config if config is not None else SandboxConfig.from_env()

    def prepare(self) -> None:
        """Called before each kernel launch (a fork server starts itself here)."""

    def wrap(self, argv: list[str], *, workdir: str, tmpdir: str) -> list[str]:
        return argv

    def provisioner(self) -> dict[str, Any] | None:
        """The kernel spec's ``kernel_provisioner`` stanza; None: jupyter_client's own, which
        starts the wrapped command as a process."""
        return None

    def own_kernel_dir(self, path: str) -> None:
        """Make a new kernel's directory usable by the identity its kernel runs as."""

    @property
    def result_caps(self) -> tuple[int, int]:
        """How many result messages a call may leave with the host, and how big each may be."""
        config = getattr(self, "config", None) or SandboxConfig()
        return config.max_results, config.max_result_bytes

    def close(self) -> None:
        """Release whatever the launcher keeps running (nothing, for direct launches)."""


@dataclass
class _Capped:
    limit: int
    parts: list[str] = field(default_factory=list)
    size: int = 0
    dropped: int = 0

    def add(self, text: str) -> None:
        room = self.limit - self.size
        if room <= 0:
            self.dropped += len(text)
            return
        self.parts.append(text[:room])
        self.size += min(len(text), room)
        self.dropped += max(0, len(text) - room)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [output truncated: {self.dropped} more characters]\n"
        return out


class AttachedCell(str):
    """A cell's text with data that travels beside it, in the execute request's metadata under
    ``ATTACHMENT_KEY`` (``kernel_lib.dispatch_attached`` reads it in the kernel)."""

    attachment: str

    def __new__(cls, text: str, attachment: str) -> AttachedCell:
        cell = super().__new__(cls, text)
        cell.attachment = attachment
        return cell


@dataclass
class ExecResult:
    """What one cell did: its streams, the structured results it emitted, and how it ended."""

    stdout: str = ""
    stderr: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None  # the Jupyter 'error' message content, if any
    timed_out: bool = False
    died: bool = False
    exit_status: int | None = None
    duration_s: float = 0.0
    results_dropped: int = 0  # result messages over the count or size cap, not kept

    @property
    def result(self) -> dict[str, Any] | None:
        return self.results[-1] if self.results else None


def _wait_for_ready(kc: Any, km: Any, timeout: float) -> None:
    """Like ``BlockingKernelClient.wait_for_ready`` without its fixed cost: that one ends by
    draining IOPub until 200 ms pass in silence. Here the kernel is ready as soon as IOPub
    carries the ``idle`` status of one of our ``kernel_info`` requests, which also proves that
    the IOPub subscription is live. Early messages to a new subscriber are lost, so a request
    is repeated soon after each shell reply that came without its status (any of them counts),
    and every second while the kernel has not answered at all."""
    deadline = time.monotonic() + timeout
    sent: set[str] = set()
    resend_at = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= resend_at:
            sent.add(kc.kernel_info())
            resend_at = now + 1.0
        try:
            msg = kc.get_iopub_msg(timeout=0.01)
        except queue.Empty:
            msg = None
        if (
            msg is not None
            and msg["parent_header"].get("msg_id") in sent
            and msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle"
        ):
            _drain(kc.shell_channel)
            return
        with contextlib.suppress(queue.Empty):
            reply = kc.get_shell_msg(timeout=0)
            if reply["parent_header"].get("msg_id") in sent:
                # the kernel is up; its status for that request may have gone before our
                # subscription was live: ask again shortly
                resend_at = min(resend_at, time.monotonic() + 0.02)
        if not km.is_alive():
            raise SandboxError(f"Kernel died before replying to kernel_info{_why_died(km)}")
    raise SandboxError(f"Kernel didn't respond in {timeout:g} seconds")


def _why_died(km: Any) -> str:
    from .forkchild import EXIT_NO_RESOURCES

    code = getattr(getattr(km.provisioner, "process", None), "returncode", None)
    if code == EXIT_NO_RESOURCES:
        return (
            ": it got no process or memory to start. The sandbox's process limit is reached "
            "(other kernels hold it); it frees up as they end, at their timeout at the latest"
        )
    return "" if code is None else f" (exit status {code})"


_context_lock = threading.Lock()
_context: Any = None


def _client_context() -> Any:
    """The zmq context of our kernel clients. A client connects before its new kernel has bound
    its sockets; zmq then retries every 100 ms by default, which a pool pays on every kernel.
    Retrying every 5 ms costs nothing here (IPC on the same machine). Its own context, so the
    host's other sockets (a notebook's own kernel) keep their settings."""
    global _context
    import zmq

    with _context_lock:
        if _context is None or _context.closed:
            _context = zmq.Context()
            _context.setsockopt(zmq.RECONNECT_IVL, 5)
        return _context


def _drain(channel: Any) -> None:
    """Drop the replies to our other kernel_info requests."""
    with contextlib.suppress(queue.Empty):
        while True:
            channel.get_msg(timeout=0)


def _keep_result(res: ExecResult, result: dict[str, Any], max_results: int, max_bytes: int) -> None:
    """Keep a result unless the call already left its share; an oversized one is replaced by a
    marker (the host's memory stays bounded whatever the code emits)."""
    if len(res.results) >= max_results:
        res.results_dropped += 1
        return
    size = len(json.dumps(result, default=str))
    if size > max_bytes:
        res.results_dropped += 1
        result = {
            "truncated": True,
            "internal_error": f"result of {size} bytes dropped "
            f"(limit {max_bytes}; set WHIP_MAX_RESULT_BYTES to raise it)",
        }
    res.results.append(result)


def _capped_error(content: dict[str, Any], cap: int) -> dict[str, Any]:
    out = dict(content)
    out["evalue"] = str(content.get("evalue", ""))[:cap]
    out["ename"] = str(content.get("ename", ""))[:200]
    tb = [str(line)[:cap] for line in content.get("traceback", [])[:200]]
    out["traceback"] = tb
    return out


class SandboxKernel:
    """A started kernel and its client. Not thread-safe: one caller at a time."""

    def __init__(self, launcher: Launcher | None = None, *, startup_timeout: float = 60.0) -> None:
        from jupyter_client.kernelspec import KernelSpec
        from jupyter_client.manager import KernelManager

        self.launcher = launcher or Launcher()
        self.launcher.prepare()
        self.tmpdir = tempfile.mkdtemp(prefix="whip-k-", dir=self.launcher.base_dir)
        self.workdir = os.path.join(self.tmpdir, "work")
        os.mkdir(self.workdir)
        self.launcher.own_kernel_dir(self.tmpdir)
        self._closed = False
        self._lock = threading.Lock()
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--HistoryManager.enabled=False",
            "--IPKernelApp.quiet=True",
        ]
        km = KernelManager(
            context=_client_context(),
            transport="ipc" if os.name == "posix" else "tcp",
            connection_file=os.path.join(
                self.launcher.connection_dir or self.tmpdir,
                f"{os.path.basename(self.tmpdir)}.json",
            ),
        )
        if os.name == "posix":
            km.ip = os.path.join(self.tmpdir, "ipc")
        provisioner = self.launcher.provisioner()
        km._kernel_spec = KernelSpec(
            argv=self.launcher.wrap(argv, workdir=self.workdir, tmpdir=self.tmpdir),
            display_name="WhipStudio sandbox",
            language="python",
            metadata={"kernel_provisioner": provisioner} if provisioner else {},
        )
        self.km = km
        self.kc: Any = None
        try:
            km.start_kernel(env=kernel_env(self.workdir), cwd=self.workdir)
            # our context: its sockets retry the connection every 5 ms (see _client_context),
            # and no kernel pays for a context (and its I/O thread) of its own
            self.kc = km.client(context=_client_context())
            self.kc.start_channels()
            _wait_for_ready(self.kc, km, startup_timeout)
        except Exception as exc:
            self.shutdown()
            raise SandboxError(f"sandbox kernel failed to start: {exc}") from exc
        # the host process jupyter_client started (None: forked by the fork server, in its view)
        self.pid: int | None = getattr(km.provisioner, "pid", None)

    # ------------------------------------------------------------------ running code

    def execute(
        self,
        code: str,
        timeout: float,
        *,
        output_cap: int = OUTPUT_CAP,
        on_progress: ProgressCallback | None = None,
    ) -> ExecResult:
        """Run one cell. Never raises for what the code does: timeouts and deaths are reported.
        ``on_progress`` receives the partial results the cell publishes while it runs."""
        if self._closed:
            raise SandboxError("this sandbox kernel has been shut down")
        start = time.monotonic()
        out, err = _Capped(output_cap), _Capped(output_cap)
        res = ExecResult()
        max_results, max_bytes = self.launcher.result_caps
        msg_id = self._send_execute(code)
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                res.timed_out = True
                break
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.25, remaining))
            except queue.Empty:
                if not self.km.is_alive():
                    res.died = True
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content.get("name") == "stdout" else err).add(content.get("text", ""))
            elif kind in ("display_data", "update_display_data", "execute_result"):
                data = content.get("data", {})
                if RESULT_MIME in data and isinstance(data[RESULT_MIME], dict):
                    _keep_result(res, data[RESULT_MIME], max_results, max_bytes)
                elif on_progress is not None and isinstance(data.get(PROGRESS_MIME), dict):
                    try:
                        on_progress(data[PROGRESS_MIME])
                    except Exception:
                        pass  # a broken live view must not break the call
            elif kind == "error":
                res.error = _capped_error(content, output_cap)
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if res.died:
            proc = getattr(self.km.provisioner, "process", None)
            res.exit_status = proc.poll() if proc is not None else None
        res.stdout, res.stderr = out.text(), err.text()
        res.duration_s = time.monotonic() - start
        return res

    def _send_execute(self, code: str) -> str:
        """Send the execute request; an ``AttachedCell``'s data goes in its metadata."""
        if not isinstance(code, AttachedCell):
            return str(self.kc.execute(code, silent=False, store_history=False, allow_stdin=False))
        content = {
            "code": str(code),
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.kc.session.msg(
            "execute_request", content, metadata={ATTACHMENT_KEY: code.attachment}
        )
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def is_alive(self) -> bool:
        return not self._closed and bool(self.km.is_alive())

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        """Kill the kernel (its whole process group) and remove its files. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        except Exception:
            pass
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        try:
            self.km.cleanup_resources()
        except Exception:
            pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)
