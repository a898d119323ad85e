"""Many sessions at once on one pool: each gets its own results, never another's output or state.

Correctness only: how fast the pool serves them is measured in benchmarks/, not asserted here.
"""

from __future__ import annotations

import secrets
import threading
import time

from whipstudio_nb import WhipEnv
from whipstudio_nb.config import SandboxConfig
from whipstudio_nb.sandbox import KernelPool, Sandbox
from whipstudio_nb.sandbox import pool as pool_module

SESSIONS = 8
CALLS = 3


def test_eight_concurrent_sessions_each_get_their_own_results():
    sandbox = Sandbox(pool_size=2)
    errors: list[str] = []
    seen: dict[int, list[str]] = {}

    def session(i: int) -> None:
        token = secrets.token_hex(6)
        outputs: list[str] = []
        try:
            with WhipEnv(sandbox=sandbox, max_turns=20, tool_timeout_s=60) as env:
                env.reset("task1")
                for n in range(CALLS):
                    code = (
                        "import os\n"
                        "leftover = [k for k in globals() if k.startswith('mine_')]\n"
                        f"mine_{n} = {token!r}\n"
                        "open('note.txt', 'a').write('x')\n"
                        f"print({token!r}, {n}, leftover, len(open('note.txt').read()), [f for f in os.listdir('.') if not f.startswith('.')])\n"
                    )
                    obs = env.step({"action_type": "execute_snippet", "code": code}).observation
                    outputs.append(obs.stdout + obs.stderr + (obs.error or ""))
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(f"session {i}: {exc!r}")
        seen[i] = outputs

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
    finally:
        sandbox.close()
    assert not errors, errors
    tokens = {i: out[0].split()[0] for i, out in seen.items() if out}
    assert len(set(tokens.values())) == SESSIONS, seen
    for i, outputs in seen.items():
        assert len(outputs) == CALLS, outputs
        for n, out in enumerate(outputs):
            # its own token, the call number, no variable and no file left by an earlier call
            assert out.startswith(f"{tokens[i]} {n} [] 1 ['note.txt']"), (i, n, out)
            others = [t for j, t in tokens.items() if j != i]
            assert not any(t in out for t in others), (i, out)


def _wait_until(check, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_busy_session_does_not_starve_another():
    """One kernel at a time; session A queues five calls, then B queues one: B is served next
    after A's first, not after all of A's (first come, first served would put it last)."""
    config = SandboxConfig.from_env().with_overrides(pool_max=1, pool_starts=1)
    pool = KernelPool(1, config=config)
    grants: list[str] = []
    try:
        held = pool.acquire(owner="A")

        def call(owner: str) -> None:
            kernel = pool.acquire(timeout=120, owner=owner)
            grants.append(owner)
            pool.release(kernel)

        threads = [threading.Thread(target=call, args=("A",)) for _ in range(5)]
        for t in threads:
            t.start()
        assert _wait_until(lambda: pool.stats()["waiting"] == 5)
        threads.append(threading.Thread(target=call, args=("B",)))
        threads[-1].start()
        assert _wait_until(lambda: pool.stats()["waiting"] == 6)
        pool.release(held)
        for t in threads:
            t.join(180)
        assert sorted(grants) == ["A"] * 5 + ["B"]
        assert grants.index("B") <= 1, grants
    finally:
        pool.close()


def test_the_pool_grows_with_demand_and_shrinks_back(monkeypatch):
    monkeypatch.setattr(pool_module, "IDLE_TRIM_S", 0.5)
    monkeypatch.setattr(pool_module, "DEMAND_WINDOW_S", 5.0)  # room for a slow machine's starts
    config = SandboxConfig.from_env().with_overrides(pool_max=4, pool_starts=2)
    pool = KernelPool(1, config=config)
    try:
        pool.start()
        assert _wait_until(lambda: pool.stats()["ready"] == 1)
        kernels = [pool.acquire(timeout=120, owner=i) for i in range(4)]  # a burst of calls
        assert pool.target() == 4  # the recent calls
        for k in kernels:
            pool.release(k)
        # more than ``size`` kept ready while the burst is recent
        assert _wait_until(lambda: pool.stats()["ready"] >= 2, timeout=90), pool.stats()
        # then back to ``size`` once calls stop
        assert _wait_until(lambda: pool.stats()["ready"] == 1 and pool.target() == 1, 30), (
            pool.stats()
        )
    finally:
        pool.close()
