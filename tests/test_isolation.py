"""Adversarial tests: submitted code must not reach the network, the solutions, the secrets or
the host. Each attack goes through execute_snippet (and some through submit_fix); each test
asserts that the attack failed and that the next call still works.

They need strict isolation (bubblewrap). CI installs it, so there the tests must run: a missing
bwrap is a failure when CI is set, a skip elsewhere.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from whipstudio_nb import WhipEnv
from whipstudio_nb.sandbox import Sandbox
from whipstudio_nb.sandbox.isolation import bwrap_problem
from whipstudio_nb.tasks import builtin_tasks_dir

problem = bwrap_problem()
if problem and os.environ.get("CI"):
    raise RuntimeError(f"CI must test strict isolation, but: {problem}")
pytestmark = pytest.mark.skipif(
    problem is not None, reason=f"strict isolation unavailable: {problem}"
)


@pytest.fixture(scope="module")
def strict_sandbox():
    sb = Sandbox(pool_size=2)
    assert sb.isolation == "strict"
    yield sb
    sb.close()


@pytest.fixture
def env(strict_sandbox):
    e = WhipEnv(sandbox=strict_sandbox, max_turns=100, tool_timeout_s=20)
    e.reset("task1")
    yield e
    e.close()


def snippet(env: WhipEnv, code: str):
    return env.step({"action_type": "execute_snippet", "code": code}).observation


def still_works(env: WhipEnv) -> None:
    obs = snippet(env, "import torch\nprint(int(torch.ones(3).sum()))")
    assert obs.stdout == "3\n" and obs.exit_code == 0, obs


@pytest.fixture
def listener():
    """A TCP listener on the host's loopback that records every connection it gets."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    hits: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except OSError:
                continue
            hits.append(str(addr))
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join(2)
    srv.close()


# ------------------------------------------------------------------------------ network


def test_no_network(env, listener):
    port, hits = listener
    child = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')"
    attacks = {
        # socket is already imported inside the kernel (by zmq): no import statement needed
        "direct": f"import sys\ns = sys.modules['socket'].create_connection(('127.0.0.1', {port}), timeout=2)\nprint('CONNECTED')",
        "os.system": f'import os\nos.system("python3 -c \\"{child}\\"")',
        "os.popen": f'import os\nprint(os.popen("python3 -c \\"{child}\\" 2>&1").read())',
        "child python": f'import os, sys\nos.system(sys.executable + " -c \\"{child}\\"")',
    }
    for name, code in attacks.items():
        obs = snippet(env, code)
        assert "CONNECTED" not in obs.stdout, name
    time.sleep(0.5)
    assert hits == []
    still_works(env)


def test_no_network_from_a_submission(env, listener):
    port, hits = listener
    code = (
        f"import sys\nsys.modules['socket'].create_connection(('127.0.0.1', {port}), timeout=2)\n"
        + env.task.solution_code
    )
    res = env.step({"action_type": "submit_fix", "fixed_code": code})
    assert hits == []
    assert "script_error" in res.observation.grader_details  # the connection attempt raised
    env.reset("task1")
    still_works(env)


# ------------------------------------------------------------------------------ files


def test_solutions_are_hidden(env):
    tasks = builtin_tasks_dir()
    obs = snippet(env, f"print(open({str(tasks / 'task1' / 'solution.py')!r}).read())")
    assert obs.exit_code == 1 and "FileNotFoundError" in obs.stderr
    obs = snippet(
        env, f"import os\nprint(os.path.exists({str(tasks)!r}) and os.listdir({str(tasks)!r}))"
    )
    assert obs.stdout in ("False\n", "[]\n"), obs
    obs = snippet(
        env, f"import os\nos.system('cat {tasks}/*/solution.py {tasks}/*/grader.py; ls -R {tasks}')"
    )
    assert "HELDOUT_SEED" not in obs.stdout and "solution" not in obs.stdout
    still_works(env)


def test_submission_cannot_read_solutions(env):
    path = builtin_tasks_dir() / "task1" / "solution.py"
    res = env.step(
        {"action_type": "submit_fix", "fixed_code": f"exec(open({str(path)!r}).read())\n"}
    )
    assert res.reward <= 0.05  # no model came out of it, whatever the trick
    env.reset("task1")
    still_works(env)


def test_writes_outside_the_work_dir_do_not_reach_the_host(env, tmp_path):
    pkg_dir = Path(__file__).resolve().parent.parent / "whipstudio_nb"
    host_tmp = Path("/tmp") / f"whip-attack-{os.getpid()}"
    home = Path.home() / f"whip-attack-{os.getpid()}"
    code = (
        "import os\n"
        "for p in [{!r}, {!r}, {!r}, {!r}]:\n"
        "    try:\n"
        "        open(p, 'w').write('pwned')\n"
        "        print('wrote', p)\n"
        "    except OSError as e:\n"
        "        print('refused', p, type(e).__name__)\n"
    ).format(str(host_tmp), str(home), str(pkg_dir / "pwned.py"), str(tmp_path / "pwned.txt"))
    obs = snippet(env, code)
    assert "refused " + str(pkg_dir / "pwned.py") in obs.stdout  # read-only system
    for p in (host_tmp, home, pkg_dir / "pwned.py", tmp_path / "pwned.txt"):
        assert not p.exists(), p
    obs = snippet(env, "open('notes.txt', 'w').write('ok')\nprint(open('notes.txt').read())")
    assert obs.stdout == "ok\n"  # the kernel's own work dir is writable
    still_works(env)


# ------------------------------------------------------------------------------ secrets


def test_host_secrets_are_invisible(monkeypatch):
    monkeypatch.setenv("WHIP_TEST_SECRET", "s3cr3t-value")
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    sb = Sandbox(pool_size=1)  # started after the secrets were set
    try:
        with WhipEnv(sandbox=sb) as env:
            env.reset("task1")
            obs = snippet(
                env,
                (
                    "import os\n"
                    "print(dict(os.environ))\n"
                    'os.system(\'cat /proc/*/environ 2>/dev/null | tr "\\\\0" "\\\\n"\')\n'
                ),
            )
            assert "s3cr3t-value" not in obs.stdout and "hf_fake_token" not in obs.stdout
            assert "WHIP_TEST_SECRET" not in obs.stdout
            still_works(env)
    finally:
        sb.close()


# ------------------------------------------------------------------------------ resources


def test_memory_over_the_limit_fails_cleanly(env):
    obs = snippet(
        env,
        "import torch\nx = torch.ones(6 * 2**30, dtype=torch.uint8)\nprint('allocated', x.sum())",
    )
    assert "allocated" not in obs.stdout
    assert obs.exit_code != 0
    still_works(env)


def test_fork_bomb_is_bounded_and_cleaned_up(env):
    code = (
        "import os\n"
        "r, w = os.pipe()\n"
        "n = 0\n"
        "end = os.times().elapsed + 12\n"  # a loaded machine forks slowly: stay in the timeout
        "for i in range(3000):\n"  # bounded by the test
        "    if os.times().elapsed > end:\n"
        "        break\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        os.read(r, 1)\n"  # each child blocks until the call is over
        "        os._exit(0)\n"
        "    n += 1\n"
        "print('forked', n)\n"
    )
    obs = snippet(env, code)
    forked = int(obs.stdout.split()[-1])
    assert forked < 3000, "the process cap did not stop the fork loop"
    still_works(env)


def _host_processes_matching(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmd:
                found.append(int(entry.name))
    return found


def test_background_sleep_does_not_survive(env):
    obs = snippet(
        env,
        "import os\nos.system('sleep 4321 &')\nos.system('nohup setsid sleep 4322 > /dev/null 2>&1 &')\nprint('started')",
    )
    assert "started" in obs.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _host_processes_matching("sleep 432"):
        time.sleep(0.2)
    assert _host_processes_matching("sleep 432") == []
    still_works(env)


def test_infinite_loop_ends_at_the_timeout(strict_sandbox):
    with WhipEnv(sandbox=strict_sandbox, tool_timeout_s=2) as env:
        env.reset("task1")
        obs = snippet(env, "while True:\n    pass")
        assert obs.timed_out is True
        still_works(env)


def test_50_mib_of_output_comes_back_capped(env):
    obs = snippet(
        env,
        "import sys\nchunk = 'y' * 2**20\nfor _ in range(50):\n    sys.stdout.write(chunk)\nprint('done')",
    )
    assert len(obs.stdout) <= 70_000 and "[output truncated:" in obs.stdout
    still_works(env)


# ------------------------------------------------------------------------------ the host survives


def test_killing_the_parent_or_exiting_leaves_the_host_alive(env, strict_sandbox):
    before = strict_sandbox.pool.launcher.server_pid
    snippet(env, "import os\nos.kill(os.getppid(), 9)")  # the kernel's supervisor (PID 1)
    still_works(env)
    # the fork server is out of every kernel's sight, so out of its reach
    assert strict_sandbox.pool.launcher.server_pid == before
    obs = snippet(env, "import os\nos._exit(1)")
    assert obs.exit_code == 1 and "exited while running" in obs.stderr
    still_works(env)
    obs = snippet(env, "import os\nos.kill(1, 9)\nos.kill(-1, 9)")  # everything it can see
    still_works(env)


def test_segfault_by_deep_recursion(env):
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)"
    obs = snippet(env, code)
    assert obs.exit_code != 0
    still_works(env)


def test_submission_that_kills_its_parent(env):
    res = env.step(
        {"action_type": "submit_fix", "fixed_code": "import os\nos.kill(os.getppid(), 9)\n"}
    )
    assert res.reward == 0.0
    env.reset("task1")
    still_works(env)


def test_a_checkout_under_tmp_still_works_and_keeps_solutions_hidden(monkeypatch, tmp_path):
    """CI may clone the repo under /tmp: the sandbox's /tmp is a fresh tmpfs, so the package and
    the venv are bound after it, and the task packs are hidden after those."""
    from whipstudio_nb.sandbox import filesystem

    fake_repo = tmp_path / "checkout"
    (fake_repo / "whipstudio_nb" / "tasks").mkdir(parents=True)
    monkeypatch.setattr(filesystem, "python_roots", lambda: [(str(fake_repo), "test")])
    plan = filesystem.mount_plan(
        pool_dir=str(tmp_path / "pool"), hidden=[], passwd="/etc/passwd", group="/etc/group"
    )
    order = [(m.kind, m.dest) for m in plan]
    assert order.index(("tmpfs", "/tmp")) < order.index(("ro-bind", str(fake_repo)))
    assert order.index(("ro-bind", str(fake_repo))) < order.index(
        ("tmpfs", str(fake_repo / "whipstudio_nb" / "tasks"))
    )
    assert not any(m.dest in ("/", "/root", "/home") for m in plan)


# A kernel that reads another kernel's connection file gets its signing key, and with the
# zmq and jupyter_client modules already loaded in every kernel it could then drive that one:
# plant code in a warm kernel that will later grade a submission. The key must never be
# readable from inside the sandbox, not even while a kernel is starting.
_HUNT_KEYS = r"""
import os, json, time
found = set()
end = time.monotonic() + 8
while time.monotonic() < end:
    for root, dirs, files in os.walk("/tmp"):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path) as f:
                    text = f.read(100_000)
            except Exception:
                continue
            # a connection file is JSON with the key (a checkout under /tmp shows up here
            # too, and jupyter_client's sources name both fields: those are not keys)
            try:
                conn = json.loads(text)
            except ValueError:
                continue
            if isinstance(conn, dict) and conn.get("key") and "signature_scheme" in conn:
                found.add(path)
    os.sched_yield()
print("FOUND", sorted(found))
"""


def test_no_kernel_can_read_another_kernels_signing_key(strict_sandbox):
    from whipstudio_nb.sandbox import SandboxKernel

    result: dict[str, object] = {}
    with strict_sandbox.kernel() as hunter:
        t = threading.Thread(
            target=lambda: result.update(res=hunter.execute(_HUNT_KEYS, timeout=60))
        )
        t.start()
        started = []
        try:
            for _ in range(3):  # kernels starting while the hunter looks
                started.append(SandboxKernel(strict_sandbox.pool.launcher))
        finally:
            t.join(70)
            for k in started:
                k.shutdown()
    res = result["res"]
    assert "FOUND" in res.stdout, (res.stdout, res.stderr)  # type: ignore[attr-defined]
    assert "FOUND []" in res.stdout, res.stdout  # type: ignore[attr-defined]


_LOOK_AROUND = r"""
import os, json
own = os.path.dirname(os.getcwd())
pool = os.path.dirname(own)
seen = sorted(os.listdir(pool))
print(json.dumps({"own": os.path.basename(own), "seen": seen}))
"""


def test_each_kernel_sees_only_its_own_part_of_the_pool(strict_sandbox):
    # Kernels of one pool must not see each other's work dirs (another session's code) or IPC
    # sockets (another kernel's output channel), nor the fork server's socket and log.
    import json

    with strict_sandbox.kernel() as a, strict_sandbox.kernel() as b:
        sa = json.loads(a.execute(_LOOK_AROUND, timeout=30).stdout)
        sb = json.loads(b.execute(_LOOK_AROUND, timeout=30).stdout)
        assert sa["seen"] == [sa["own"]] and sb["seen"] == [sb["own"]], (sa, sb)
        assert sa["own"] != sb["own"]
        # and no capability is left to undo that view
        caps = a.execute(
            "print([l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd'))])",
            timeout=30,
        ).stdout
        assert "CapEff:\\t0000000000000000" in caps and "CapBnd:\\t0000000000000000" in caps, caps


_HOLD_EVERY_PROCESS_SLOT = r"""
import os, time
r, w = os.pipe()
n = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.read(r, 1)  # each child holds its slot until the kernel is gone
        os._exit(0)
    n += 1
time.sleep(6)
print('held', n)
"""


def _pool_is_full(launcher) -> bool:
    cg = launcher._cgroup  # the pool's process cap, where there is one
    if cg is None:  # the cap is RLIMIT_NPROC: give the loop its time
        time.sleep(10)
        return True
    count = lambda name: int((Path(cg.path) / name).read_text())  # noqa: E731
    return count("pids.current") >= count("pids.max") - 4


def test_a_kernel_that_takes_every_process_slot_does_not_take_the_server_down(strict_sandbox):
    # One kernel (one session) fills the pool's process cap. Kernels asked for meanwhile may
    # fail, with a reason; the fork server, and with it every other session's kernel, stays up.
    from whipstudio_nb.errors import SandboxError
    from whipstudio_nb.sandbox import SandboxKernel

    launcher = strict_sandbox.pool.launcher
    with strict_sandbox.kernel() as bystander, strict_sandbox.kernel() as hog:
        before = launcher.server_pid
        assert before is not None
        done: dict[str, object] = {}
        t = threading.Thread(
            target=lambda: done.update(res=hog.execute(_HOLD_EVERY_PROCESS_SLOT, timeout=90))
        )
        t.start()
        time.sleep(1)
        deadline = time.monotonic() + 60
        while not _pool_is_full(launcher) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _pool_is_full(launcher), "the fork loop never reached the cap"
        try:
            SandboxKernel(launcher, startup_timeout=20).shutdown()
        except SandboxError as exc:
            assert "process" in str(exc), exc  # says why
        t.join(90)
        assert "held" in done["res"].stdout, done  # type: ignore[attr-defined]
        assert launcher.server_pid == before
        assert bystander.execute("print(6 * 7)", timeout=30).stdout == "42\n"
    with strict_sandbox.kernel() as fresh:  # the hog's processes are gone with it
        assert fresh.execute("print(6 * 7)", timeout=30).stdout == "42\n"
    assert launcher.server_pid == before
