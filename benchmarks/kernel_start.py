"""What a fresh sandbox kernel costs: start phases, sustained rate and memory.

    .venv/bin/python benchmarks/kernel_start.py [--starts 20] [--seconds 10] [--ready 16]

1. Phases. ``--starts`` kernels started one after another (a pool of size 0: each acquire starts
   its own), with ``WHIP_KERNEL_TIMING=1`` so that the fork child logs when each phase of its
   set-up ended (ms since the fork). Prints the median of each, and the host's view: kernel
   started (client connected, kernel_info answered) and warmed up.
2. Sustained rate. Fresh kernels used for one tiny cell and discarded, back to back, from 1
   caller (the baseline of this run) and from 4 and 8 callers, ``--seconds`` each, through
   the default demand-following pool. Target: >= 15 fresh kernels/s on 2 cores.
3. Memory. ``--ready`` idle kernels kept ready; PSS (``/proc/PID/smaps_rollup``) of the fork
   server, of one idle kernel (the median) and of all of them. Target: 16 ready < 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

os.environ["WHIP_KERNEL_TIMING"] = "1"  # before the fork server starts

from procs import children, cmdline, pss_mb, tree  # noqa: E402  benchmarks/procs.py

from whipstudio_nb.config import SandboxConfig  # noqa: E402
from whipstudio_nb.sandbox import KernelPool, Sandbox  # noqa: E402

ZYGOTE = "whipstudio_nb.sandbox.zygote"


def phases(starts: int) -> None:
    pool = KernelPool(0)
    host_ready: list[float] = []
    try:
        for _ in range(starts):
            t0 = time.perf_counter()
            kernel = pool.acquire()
            host_ready.append((time.perf_counter() - t0) * 1000)
            pool.release(kernel)
        log = getattr(pool.launcher, "server_log", lambda: "")()
    finally:
        pool.close()
    marks: dict[str, list[float]] = {}
    for line in log.splitlines():
        if line.startswith("kernel-phases "):
            for name, ms in json.loads(line.split(" ", 1)[1]).items():
                marks.setdefault(name, []).append(ms)
    print(f"1. Start phases, median of {starts} sequential starts (ms since the fork):")
    for name, values in sorted(marks.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"   {name:<22}{statistics.median(values):>8.1f}")
    if not marks:
        print("   (no phase lines: the fork server launcher is not in use)")
    print(
        f"   host: acquire -> warm kernel {statistics.median(host_ready):.0f} ms median, "
        f"p95 {sorted(host_ready)[int(0.95 * (len(host_ready) - 1))]:.0f} ms"
    )


def rate(sandbox: Sandbox, callers: int, seconds: float) -> tuple[float, int]:
    done = [0] * callers
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def caller(i: int) -> None:
        while time.monotonic() < stop:
            try:
                with sandbox.kernel() as k:
                    res = k.execute("x = 1", timeout=60)
                if res.error or res.died or res.timed_out:
                    errors.append(str(res.error))
                else:
                    done[i] += 1
            except Exception as exc:
                errors.append(repr(exc))

    t0 = time.monotonic()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0), len(errors)


def memory(ready: int) -> None:
    config = SandboxConfig.from_env().with_overrides(pool_max=ready)
    pool = KernelPool(ready, config=config)
    try:
        pool.start()
        deadline = time.monotonic() + 300
        while pool.stats()["ready"] < ready and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # let them settle
        server = pool.launcher.server_pid
        if server is None:
            print("3. Memory: no fork server (direct launcher): skipped")
            return
        kids = children()
        everything = tree(server, kids)
        # the zygote: the first process of the tree running the fork server's module; each of
        # its children is one kernel (its supervisor, the kernel and whatever it started)
        pythons = {p for p in everything if cmdline(p).split(" ")[1:3] == ["-m", ZYGOTE]}
        forked = {c for p in pythons for c in kids.get(p, [])}
        zygote = next(p for p in pythons if p not in forked)  # not forked by another one
        per_kernel = [sum(pss_mb(p) for p in tree(k, kids)) for k in kids.get(zygote, [])]
        server_only = sum(pss_mb(p) for p in everything) - sum(per_kernel)
        total = sum(pss_mb(p) for p in everything)
        print(f"3. Memory with {pool.stats()['ready']} idle kernels ready (PSS):")
        print(f"   fork server          {server_only:8.0f} MiB (with its sandbox's wrappers)")
        if per_kernel:
            print(f"   one idle kernel      {statistics.median(per_kernel):8.0f} MiB (median)")
        print(f"   server + kernels     {total:8.0f} MiB over {len(everything)} processes")
        print(
            f"   target: {ready} ready kernels < 2048 MiB -> {'met' if total < 2048 else 'MISSED'}"
        )
    finally:
        pool.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--ready", type=int, default=16)
    args = ap.parse_args()

    phases(args.starts)

    sandbox = Sandbox()
    try:
        rate(sandbox, 1, 3)  # warm: the fork server and pool are up
        print(f"2. Sustained fresh kernels per second ({args.seconds:g} s each, default pool):")
        base, _ = rate(sandbox, 1, args.seconds)
        print(f"   1 caller (baseline)  {base:8.2f}/s")
        for n in (4, 8):
            r, errs = rate(sandbox, n, args.seconds)
            print(
                f"   {n} callers            {r:8.2f}/s  ({r / base:.2f}x baseline, {errs} errors)"
            )
        print("   target: >= 15/s")
    finally:
        sandbox.close()

    memory(args.ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
