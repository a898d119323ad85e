"""Latency of execute_snippet through WhipEnv, against the naive path, measured in one run.

    .venv/bin/python benchmarks/tool_latency.py [--calls 20] [--naive-calls 5] [--pool-size 2]

Prints p50/p95 at an interactive pace (one call a second), back to back (sustained throughput),
and for the naive path (a new kernel per call that imports torch), then the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

SNIPPET = "import torch\nx = torch.randn(64, 64) @ torch.randn(64, 64)\nprint(tuple(x.shape))\n"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def naive_call() -> float:
    """What a tool call costs without a pool: a fresh kernel that imports torch, then dies."""
    from jupyter_client.manager import KernelManager

    t0 = time.perf_counter()
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    reply = kc.execute_interactive(SNIPPET, timeout=60, output_hook=lambda msg: None)
    elapsed = time.perf_counter() - t0
    assert reply["content"]["status"] == "ok", reply["content"]
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def wait_for_pool(env, timeout: float = 120.0) -> None:
    pool = env.sandbox.pool
    deadline = time.monotonic() + timeout
    while pool.stats()["ready"] < pool.size and time.monotonic() < deadline:
        time.sleep(0.1)


def timed_step(env) -> float:
    t0 = time.perf_counter()
    res = env.step({"action_type": "execute_snippet", "code": SNIPPET})
    elapsed = time.perf_counter() - t0
    obs = res.observation
    assert obs.error is None and obs.exit_code == 0, obs
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--naive-calls", type=int, default=5)
    ap.add_argument("--pool-size", type=int, default=2)
    ap.add_argument("--pace", type=float, default=1.0, help="seconds between interactive calls")
    args = ap.parse_args()

    from whipstudio_nb import WhipEnv
    from whipstudio_nb.env import make_sandbox  # the tools' modules imported in the fork server
    from whipstudio_nb.sandbox import Sandbox
    from whipstudio_nb.sandbox.forkserver import ForkServerLauncher

    def interactive_run(sandbox: Sandbox, label: str) -> list[float]:
        with WhipEnv(sandbox=sandbox, max_turns=10_000) as env:
            env.reset("task1")
            wait_for_pool(env)
            out = []
            for i in range(args.calls):
                start = time.perf_counter()
                out.append(timed_step(env))
                print(
                    f"  {label} call {i + 1}/{args.calls}: {out[-1] * 1000:.0f} ms", file=sys.stderr
                )
                time.sleep(max(0.0, args.pace - (time.perf_counter() - start)))
        return out

    isolated_sb = make_sandbox(args.pool_size)  # the default level (strict where possible)
    level = isolated_sb.isolation
    try:
        interactive = interactive_run(isolated_sb, f"interactive ({level})")
        with WhipEnv(sandbox=isolated_sb, max_turns=10_000) as env:
            env.reset("task1")
            wait_for_pool(env)
            t0 = time.perf_counter()
            burst = [timed_step(env) for _ in range(args.calls)]
            burst_wall = time.perf_counter() - t0
    finally:
        isolated_sb.close()
    plain_sb = make_sandbox(args.pool_size, launcher=ForkServerLauncher(isolation="none"))
    try:
        unisolated = interactive_run(plain_sb, "interactive (none)")
    finally:
        plain_sb.close()

    naive = []
    for i in range(args.naive_calls):
        naive.append(naive_call())
        print(
            f"  naive call {i + 1}/{args.naive_calls}: {naive[-1] * 1000:.0f} ms", file=sys.stderr
        )

    def row(name: str, xs: list[float]) -> str:
        return (
            f"{name:<26} p50 {pct(xs, 50) * 1000:8.1f} ms   p95 {pct(xs, 95) * 1000:8.1f} ms"
            f"   mean {statistics.mean(xs) * 1000:8.1f} ms   n={len(xs)}"
        )

    print(f"execute_snippet latency (pool size {args.pool_size}, {args.pace:g} s pace)")
    print(row(f"interactive ({level})", interactive))
    print(row("interactive (no isolation)", unisolated))
    print(row(f"back-to-back ({level})", burst))
    print(row("naive (new kernel+torch)", naive))
    print(f"back-to-back throughput     {len(burst) / burst_wall:.2f} calls/s")
    print(
        f"ratio naive/interactive p50 {pct(naive, 50) / pct(interactive, 50):.1f}x  (target >= 20x)"
    )
    print(f"ratio naive/interactive p95 {pct(naive, 95) / pct(interactive, 95):.1f}x")
    print(f"ratio naive/back-to-back p50 {pct(naive, 50) / pct(burst, 50):.1f}x")
    ratio = pct(interactive, 50) / pct(unisolated, 50)
    print(f"ratio {level}/unisolated p50 {ratio:.2f}x  (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
