"""Many sessions at once on one pool: each gets its own results, never another's output or state.

Correctness only: how fast the pool serves them is measured in benchmarks/, not asserted here.
"""

from __future__ import annotations

import secrets
import threading

from whipstudio_nb import WhipEnv
from whipstudio_nb.sandbox import Sandbox

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
