"""The sandbox on real kernels: timeouts, truncation, deaths, the pool, and clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from whipstudio_nb.sandbox import KernelPool, Sandbox
from whipstudio_nb.sandbox.kernel import RESULT_MIME


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_dead(pids, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def descendants(pid: int) -> set[int]:
    """Every live process whose parent chain reaches ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


# ------------------------------------------------------------------ timeouts and output


def test_timeout_kills_kernel_and_next_call_works(make_env):
    env = make_env(tool_timeout_s=2)
    env.reset("task1")
    # the pool's cold start (fork server, torch) is not what this test is about
    assert (
        env.step({"action_type": "execute_snippet", "code": "print(0)"}).observation.stdout == "0\n"
    )
    t0 = time.monotonic()
    obs = env.step(
        {
            "action_type": "execute_snippet",
            "code": "print('started', flush=True)\nwhile True:\n    pass",
        }
    ).observation
    assert time.monotonic() - t0 < 8
    assert obs.timed_out is True and obs.exit_code == 1
    assert "started" in obs.stdout and "Timed out after 2 s" in obs.stderr
    nxt = env.step({"action_type": "execute_snippet", "code": "print('fine')"}).observation
    assert nxt.stdout == "fine\n" and nxt.timed_out is False


def test_timeout_in_probe_and_inspect(make_env):
    env = make_env(tool_timeout_s=1.5)
    env.reset("task1")
    obs = env.step(
        {"action_type": "run_training_probe", "code": "while True:\n    pass", "steps": 2}
    ).observation
    assert obs.timed_out is True and obs.error.startswith("Timed out")
    obs = env.step(
        {
            "action_type": "inspect_tensor",
            "setup_code": "while True: pass",
            "target_expression": "1",
        }
    ).observation
    assert obs.timed_out is True and obs.error.startswith("Timed out")


def test_output_is_capped_with_marker(env):
    code = "import sys\nprint('x' * 200_000)\nsys.stderr.write('e' * 100_000)"
    obs = env.step({"action_type": "execute_snippet", "code": code}).observation
    assert len(obs.stdout) < 70_000 and "[output truncated:" in obs.stdout
    assert len(obs.stderr) < 70_000 and "[output truncated:" in obs.stderr
    assert obs.stdout.startswith("x" * 1000)


def test_kernel_exit_is_reported_and_next_call_works(env):
    obs = env.step(
        {
            "action_type": "execute_snippet",
            "code": "import os\nprint('bye', flush=True)\nos._exit(7)",
        }
    ).observation
    assert obs.exit_code == 7
    assert "exited while running" in obs.stderr
    assert (
        env.step({"action_type": "execute_snippet", "code": "print(2)"}).observation.stdout == "2\n"
    )


def test_kernel_environment_is_scrubbed(make_env, monkeypatch):
    monkeypatch.setenv("WHIP_FAKE_SECRET", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # A new sandbox, so its fork server starts after the secrets were set.
    sb = Sandbox(pool_size=1)
    try:
        env = make_env(max_turns=5)
        env.sandbox = sb
        env.reset("task1")
        code = "import os\nprint(sorted(os.environ))\nprint(os.getcwd() == os.environ['HOME'])"
        obs = env.step({"action_type": "execute_snippet", "code": code}).observation
        assert "WHIP_FAKE_SECRET" not in obs.stdout and "OPENAI_API_KEY" not in obs.stdout
        assert "hunter2" not in obs.stdout
        assert obs.stdout.splitlines()[1] == "True"
    finally:
        sb.close()


def test_results_travel_as_display_data(sandbox):
    with sandbox.kernel() as k:
        res = k.execute(
            "from IPython.display import publish_display_data\n"
            f"publish_display_data({{{RESULT_MIME!r}: {{'answer': 42}}}})\nprint('not parsed')",
            timeout=10,
        )
    assert res.results == [{"answer": 42}] and res.stdout == "not parsed\n"


def test_megabytes_of_arguments_travel_beside_the_cell(sandbox):
    # A cell's text goes through IPython line by line (seconds for megabytes of held-out
    # inputs); big arguments go in the execute request's metadata and arrive whole.
    from whipstudio_nb.sandbox import INLINE_ARGS_MAX, dispatch_cell

    small = dispatch_cell("builtins:dict", {"n": 1})
    assert "builtins:dict" in small and not hasattr(small, "attachment")
    args = {"blob": "x" * (2 * INLINE_ARGS_MAX) + "end", "n": 7}
    setup = ("builtins:print", "setup ran")
    big = dispatch_cell("builtins:dict", args, setup)
    assert len(big) < 200 and len(big.attachment) > 2 * INLINE_ARGS_MAX  # type: ignore[attr-defined]
    res = sandbox.call("builtins:dict", args, timeout=60, setup=setup)
    assert res.results == [args] and res.stdout == "setup ran\n", (res.stdout, res.stderr)
    with sandbox.kernel() as k:  # a plain cell naming the attachment without one: a clear error
        res = k.execute(str(big), timeout=30)
    assert "did not arrive" in res.results[0]["internal_error"]


def test_fresh_kernels_have_fresh_random_state(env):
    code = "import random, numpy as np\nprint(random.random(), np.random.rand())"
    a = env.step({"action_type": "execute_snippet", "code": code}).observation.stdout
    b = env.step({"action_type": "execute_snippet", "code": code}).observation.stdout
    assert a != b
    # torch seeds itself from entropy in a new process; a forked kernel must too.
    code = "import torch\nprint(torch.initial_seed(), torch.rand(1).item())"
    seeds = {
        env.step({"action_type": "execute_snippet", "code": code}).observation.stdout
        for _ in range(3)
    }
    assert len(seeds) == 3


# ------------------------------------------------------------------ pool and cleanup


def test_pool_refills_and_leaves_nothing_behind():
    pool = KernelPool(2)
    pool.start()
    kernels, tmpdirs = [], []
    for _ in range(5):
        k = pool.acquire()
        res = k.execute(
            "import os\nprint(1, os.getcwd(), globals().get('seen'))\nseen = 1", timeout=10
        )
        assert res.stdout.startswith("1 ")
        kernels.append(res.stdout)
        tmpdirs.append(k.tmpdir)
        pool.release(k)
    assert len(set(kernels)) == 5  # a fresh kernel every time (its own directory)
    assert all(out.endswith(" None\n") for out in kernels)  # nothing left by the last call
    deadline = time.monotonic() + 30
    while pool.stats()["ready"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = pool.stats()
    # at least its idle size (more for a few seconds: the pool followed the calls' demand)
    assert stats["ready"] >= 2 and stats["kernels_started"] >= 7
    server = pool.launcher.server_pid
    base_dir = pool.launcher.base_dir
    # This pool's processes: its fork server and the kernels it forked.
    mine = {server} | descendants(server)
    assert len(mine) >= 1 + 2 + 2
    pool.close()
    assert wait_dead(mine) == []
    assert not any(Path(d).exists() for d in tmpdirs)
    assert not Path(base_dir).exists()


def test_fork_server_recovers_after_being_killed():
    sb = Sandbox(pool_size=1)
    try:
        with sb.kernel() as k:
            assert k.execute("print(1)", timeout=10).stdout == "1\n"
        os.kill(sb.pool.launcher.server_pid, signal.SIGKILL)
        # Kernels forked by the dead server die with it; the pool starts a new server.
        for _ in range(3):
            with sb.kernel() as k:
                res = k.execute("print(2)", timeout=10)
            if res.stdout == "2\n":
                break
        assert res.stdout == "2\n"
    finally:
        sb.close()


def test_background_processes_die_with_the_call(env, tmp_path):
    marker = tmp_path / "still-running"
    code = textwrap.dedent(f"""
        import os
        if os.fork() == 0:
            os.setsid()  # try to escape the kernel's process group
            if os.fork() == 0:
                os.setsid()  # and once more, out of the first escapee's group too
                os.system("sleep 3")
                open({str(marker)!r}, "w").write("escaped")
            os._exit(0)
        print("spawned")
    """)
    obs = env.step({"action_type": "execute_snippet", "code": code}).observation
    assert "spawned" in obs.stdout
    time.sleep(4.5)
    assert not marker.exists(), "a double-forked setsid process outlived the call"


SCRIPT_EXIT = """
import sys, time
from whipstudio_nb import WhipEnv
env = WhipEnv(pool_size=2, tool_timeout_s=60)
env.reset("task1")
env.step({"action_type": "execute_snippet", "code": "print(1)"})
print("ready", flush=True)
if sys.argv[1] == "hang":
    env.step({"action_type": "execute_snippet", "code": "while True:\\n    pass"})
"""


@pytest.mark.parametrize("how", ["exit", "ctrl-c", "sigterm"])
def test_no_process_or_file_survives_the_host(how, tmp_path):
    """Interpreter exit without close(), Ctrl-C in a long call, and SIGTERM all clean up."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT_EXIT, "exit" if how == "exit" else "hang"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "ready"
    kids = descendants(proc.pid)
    assert kids, "the host should have a fork server and kernels"
    if how == "ctrl-c":
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
    elif how == "sigterm":
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert wait_dead(kids) == [], f"left behind after {how}: {kids}"
    assert [p.name for p in tmp_path.iterdir()] == []


def test_direct_launcher_runs_the_same_tools(make_env, monkeypatch):
    """WHIP_LAUNCHER=direct: one `python -m ipykernel_launcher` process per kernel, no fork server."""
    monkeypatch.setenv("WHIP_LAUNCHER", "direct")
    sb = Sandbox(pool_size=1)
    try:
        assert sb.info()["launcher"] == "direct"
        env = make_env()
        env.sandbox = sb
        env.reset("task1")
        obs = env.step(
            {
                "action_type": "execute_snippet",
                "code": "import torch\nprint(torch.ones(2).sum().item())",
            }
        ).observation
        assert obs.stdout == "2.0\n" and obs.exit_code == 0
        res = env.step({"action_type": "submit_fix", "fixed_code": env.task.solution_code})
        assert res.reward >= 0.9
    finally:
        sb.close()


def test_unknown_launcher_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WHIP_LAUNCHER", "docker")
    with pytest.raises(ValueError, match="WHIP_LAUNCHER must be one of forkserver, direct"):
        Sandbox(pool_size=1)


def test_cgroups_of_dead_pools_are_swept():
    """A killed host process never removes its pool's cgroup: the next pool removes it."""
    from whipstudio_nb.sandbox.isolation import PidsCgroup

    probe = PidsCgroup.create(f"whipstudio-{os.getpid()}-probe", 64)
    if probe is None:
        pytest.skip("no writable pids cgroup controller here")
    base = os.path.dirname(probe.path)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone
    stale = PidsCgroup.create(f"whipstudio-{dead.pid}-stale", 64)
    assert stale is not None and os.path.isdir(stale.path)
    mine = PidsCgroup.create(f"whipstudio-{os.getpid()}-mine", 64)
    assert mine is not None
    try:
        assert not os.path.exists(stale.path)  # swept
        assert os.path.isdir(probe.path)  # a live process's cgroup stays
        assert os.path.dirname(mine.path) == base
    finally:
        for c in (probe, mine, stale):
            c.remove()
