"""Helpers for the server tests: a real ``whip serve`` subprocess on a free loopback port.

(Not a test module: imported by test_server.py and test_server_limits.py.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_endpoint() -> str:
    """An OpenAI-compatible URL on loopback where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    startup_s: float = 0.0

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


def start_server(
    tmp: Path, *args: str, env: dict[str, str] | None = None, fake: bool = False
) -> ServerProc:
    """``whip serve ARGS``; with ``fake``, over an in-process FakeSandbox (tests/fakes.py): for
    servers whose tests run no code that needs a kernel (submit_fix and /grader cannot work)."""
    port = free_port()
    t0 = time.monotonic()
    log_path = tmp / f"server-{port}.log"
    full_env = {
        **os.environ,
        "API_BASE_URL": dead_endpoint(),
        "API_KEY": "test",
        "WHIP_AGENT_MAX_RETRIES": "0",
        "WHIP_AGENT_BACKOFF_S": "0",
        **(env or {}),
    }
    if "WHIP_SERVER_TOKEN" not in (env or {}):
        full_env.pop("WHIP_SERVER_TOKEN", None)
    entry = [str(ROOT / "tests" / "fakes.py")] if fake else ["-m", "whipstudio_nb.cli"]
    with open(log_path, "wb") as log:
        # -P: like the installed `whip` script, never import from the working directory
        proc = subprocess.Popen(
            [sys.executable, "-P", *entry, "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    srv = ServerProc(proc, f"http://127.0.0.1:{port}", log_path)
    token = None
    if "--token" in args:
        token = args[args.index("--token") + 1]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"whip serve exited early:\n{srv.log()}")
        try:
            if httpx.get(srv.url + "/health", headers=headers, timeout=2).status_code == 200:
                srv.startup_s = time.monotonic() - t0
                return srv
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    srv.stop()
    raise RuntimeError(f"whip serve did not start:\n{srv.log()}")


def ws_connect_from(srv: ServerProc, source_ip: str, **kwargs: object) -> object:
    """A WebSocket to ``srv`` from another loopback address: another client, with its own
    rate-limit budget and default session."""
    from websockets.sync.client import connect

    sock = socket.socket()
    sock.bind((source_ip, 0))
    sock.connect(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
    return connect(srv.ws_url, sock=sock, **kwargs)  # type: ignore[arg-type]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
