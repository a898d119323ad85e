"""Many sessions at once against a real `whip serve`: fresh-kernel call latency per session count.

    .venv/bin/python benchmarks/concurrency.py [--sessions 1 4 8 16] [--calls 10] [--pool-size N]

Starts `whip serve` on a free loopback port (no rate limits, as a trainer would run it), then for
each N opens N WebSocket sessions at once. Each resets task1 and calls `execute_snippet` `--calls`
times, once a second (paced), then again back to back. Every call runs in a fresh kernel.
Prints p50, p95 and max per N; the baseline is one session's p50 in the same run, and the target
is p95 at 8 sessions <= 8x that baseline (``--calls`` is at most the task's 10 turns). Also
prints the sustained fresh-kernel rate (back-to-back calls completed per second over all
sessions) and the PSS of the server and its kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from procs import pss_mb, tree  # benchmarks/procs.py

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = "import torch\nprint(torch.ones(3).sum().item())"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, pool_size: int | None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "whipstudio_nb.cli", "serve", "--port", str(port)]
    argv += ["--no-rate-limit", "--max-sessions", "32"]
    if pool_size is not None:
        argv += ["--pool-size", str(pool_size)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("whip serve did not start within 120 s")


def session(url: str, calls: int, paced: bool, out: list[float], errors: list[str]) -> None:
    from websockets.sync.client import connect

    with connect(url, max_size=2**24, open_timeout=60) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "task1"}}))
        json.loads(ws.recv(timeout=120))
        start = time.monotonic()
        for i in range(calls):
            if paced:  # one call a second, on a fixed schedule
                time.sleep(max(0.0, start + i - time.monotonic()))
            t0 = time.perf_counter()
            ws.send(
                json.dumps(
                    {"type": "step", "data": {"action_type": "execute_snippet", "code": SNIPPET}}
                )
            )
            reply = json.loads(ws.recv(timeout=120))
            out.append(time.perf_counter() - t0)
            obs = reply.get("data", {}).get("observation", {})
            if reply.get("type") != "observation" or obs.get("exit_code") != 0:
                errors.append(str(reply)[:200])


def run(url: str, n: int, calls: int, paced: bool) -> tuple[list[float], list[str], float]:
    lat: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=session, args=(url, calls, paced, lat, errors)) for _ in range(n)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors, time.monotonic() - t0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=None, help="default: the server's")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    port = free_port()
    proc = start_server(port, args.pool_size)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        run(url, 1, 2, paced=False)  # warm: the pool fills, torch is loaded everywhere
        print(
            f"{'mode':<13}{'sessions':>9}{'calls':>7}{'p50 ms':>9}{'p95 ms':>9}"
            f"{'max ms':>9}{'calls/s':>9}{'errors':>8}"
        )
        base_p50 = None
        p95_at_8 = None
        for paced in (True, False):
            for n in args.sessions:
                lat, errors, wall = run(url, n, args.calls, paced)
                p50, p95 = pct(lat, 0.5) * 1000, pct(lat, 0.95) * 1000
                if paced and n == 1:
                    base_p50 = p50
                if paced and n == 8:
                    p95_at_8 = p95
                mode = "1 call/s" if paced else "back-to-back"
                print(
                    f"{mode:<13}{n:>9}{len(lat):>7}{p50:>9.1f}{p95:>9.1f}"
                    f"{max(lat) * 1000:>9.1f}{len(lat) / wall:>9.2f}{len(errors):>8}"
                )
                for e in errors[:2]:
                    print(f"    error: {e}")
        if base_p50 and p95_at_8:
            print(
                f"\np95 at 8 sessions / p50 at 1 session: {p95_at_8 / base_p50:.2f}x (target <= 8x)"
            )
        procs = tree(proc.pid)
        total = sum(pss_mb(p) for p in procs)
        print(f"PSS of the server and its kernels now: {total:.0f} MiB over {len(procs)} processes")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
