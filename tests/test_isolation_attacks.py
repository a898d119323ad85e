"""Escape attempts against strict isolation, one test per attack class of the sandbox issue.

Every test plants a real secret or marker on the host (or in a second session running at the same
time), attacks from inside a kernel, and asserts that the target stayed out of reach, that the
host is unchanged and that the next call still works. Run with ``WHIP_ISOLATION=none`` they fail:
that is how we know they can.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from whipstudio_nb import WhipEnv
from whipstudio_nb.sandbox import Sandbox
from whipstudio_nb.sandbox.isolation import bwrap_problem, resolve_level

problem = bwrap_problem()
if problem and os.environ.get("CI"):
    raise RuntimeError(f"CI must test strict isolation, but: {problem}")
pytestmark = pytest.mark.skipif(
    problem is not None, reason=f"strict isolation unavailable: {problem}"
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sandbox():
    # WHIP_ISOLATION=none runs the same attacks against an unisolated pool: they must then fail.
    sb = Sandbox(pool_size=2)
    assert sb.isolation == resolve_level()
    yield sb
    sb.close()


def run(sb: Sandbox, code: str, timeout: float = 60) -> str:
    with sb.kernel() as k:
        res = k.execute(code, timeout=timeout)
    return res.stdout + res.stderr


def still_works(sb: Sandbox) -> None:
    assert run(sb, "import torch\nprint(int(torch.ones(3).sum()))").strip().endswith("3")


@pytest.fixture
def marker():
    return "whip-marker-" + secrets.token_hex(8)


# ------------------------------------------------------------- 1. privilege and host writes

# Plant a module in every directory a kernel can write that some *other* process imports from:
# the cwd and sys.path entries of every process visible in /proc, through /proc/<pid>/root.
# Only sandbox directories are targets (their paths hold "whip-"), so that with isolation off
# (the check that these tests can fail) a successful attack never touches the rest of the host.
_PLANT = r"""
import os
planted = []
names = ["resource.py", "json.py", "secrets.py", "zmq.py", "tornado.py", "sitecustomize.py"]
payload = "import builtins\nbuiltins.WHIP_PWNED = True\n"
dirs = set()
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    for link in ("cwd", "root"):
        try:
            dirs.add(os.path.realpath(f"/proc/{pid}/{link}"))
        except OSError:
            pass
    try:
        root = f"/proc/{pid}/root"
        cwd = os.readlink(f"/proc/{pid}/cwd").lstrip("/")
        dirs.add(os.path.join(root, cwd))
        dirs.add(os.path.dirname(os.path.join(root, cwd)))
    except OSError:
        pass
for d in sorted(x for x in dirs if "whip-" in x):
    for n in names:
        try:
            with open(os.path.join(d, n), "x") as f:
                f.write(payload)
            planted.append(os.path.join(d, n))
        except OSError:
            pass
print("PLANTED", planted)
"""


def test_no_kernel_can_plant_code_that_another_process_imports(sandbox):
    run(sandbox, _PLANT)
    for _ in range(3):  # kernels forked after the attempt must be clean
        out = run(
            sandbox,
            "import builtins, resource\nprint('PWNED' if hasattr(builtins, 'WHIP_PWNED') else 'clean', resource.__file__)",
        )
        assert out.startswith("clean"), out
    still_works(sandbox)


def test_kernels_run_as_an_unprivileged_host_user(sandbox, tmp_path):
    # The host's uid as seen from outside: a root-only file must stay unreadable even if it were
    # mounted in. The venv is mounted in, so a 0600 file there is the real test.
    if os.geteuid() != 0:
        pytest.skip("the host is not root: kernels already run as this unprivileged user")
    site = Path(sysconfig_purelib())
    secret = site / f"whip-root-only-{secrets.token_hex(4)}.txt"
    secret.write_text("root-only-secret")
    secret.chmod(0o600)
    try:
        name = "whip" + secrets.token_hex(5)  # a process name the host can find the kernel by
        uids: list[str] = []

        def watch() -> None:
            for _ in range(100):
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        if open(f"/proc/{pid}/comm").read().strip() == name:
                            status = open(f"/proc/{pid}/status").read()
                            uids.append(status.split("Uid:")[1].split()[0])
                            return
                    except OSError:
                        continue
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        out = run(
            sandbox,
            (
                "import ctypes, time\n"
                f"ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
                f"try:\n    print(open({str(secret)!r}).read())\nexcept OSError as e:\n    print('denied', type(e).__name__)\n"
                "time.sleep(3)\n"
            ),
        )
        t.join()
        assert "root-only-secret" not in out and "denied" in out, out
        assert uids and uids[0] != "0", f"the kernel runs as host uid {uids}"
    finally:
        secret.unlink()
    still_works(sandbox)


def sysconfig_purelib() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


# ------------------------------------------------------------- 2. what the sandbox can see

_FIND = r"""
import os, sys
hits = []
targets = {targets!r}
for t in targets:
    if os.path.exists(t):
        hits.append(t)
for root, dirs, files in os.walk("/", topdown=True):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    for name in files + dirs:
        pack = name == "grader.py" and "task.toml" in files  # the package's own grader.py is code
        if pack or name in ("solution.py", "partial.py", "task.toml", ".git", "shadow", ".env") or "whip-secret" in name:
            hits.append(os.path.join(root, name))
print("HITS", hits)
"""


def test_the_filesystem_is_an_allowlist(sandbox, marker, tmp_path):
    planted = []
    for place in (Path.home(), Path("/opt"), Path("/tmp"), REPO):
        p = place / f"whip-secret-{marker}.txt"
        try:
            p.write_text(marker)
            planted.append(p)
        except OSError:
            pass
    env_file = REPO / "notebooks" / ".env"
    targets = [str(p) for p in planted] + [
        "/etc/shadow",
        str(REPO / ".git"),
        str(REPO / "tasks"),
        str(env_file),
        str(Path(sysconfig_purelib()) / "whipstudio_nb" / "tasks" / "task1" / "solution.py"),
    ]
    try:
        out = run(sandbox, _FIND.format(targets=targets), timeout=120)
    finally:
        for p in planted:
            p.unlink()
    assert "HITS []" in out, out[-3000:]
    still_works(sandbox)


def test_git_objects_of_the_checkout_are_out_of_reach(sandbox):
    out = run(
        sandbox,
        f"import os\nos.system('git -C {REPO} show HEAD:tasks/task1/solution.py 2>&1 | head -3; ls {REPO}')",
    )
    assert "import torch" not in out and "tasks" not in out.split(), out
    still_works(sandbox)


_MOUNTS = r"""
import json
mounts = sorted({line.split()[4] for line in open('/proc/self/mountinfo')})
print("MOUNTS", json.dumps(mounts))
"""

_CALLER = """
import json, sys
from whipstudio_nb.sandbox import Sandbox
sb = Sandbox(pool_size=1)
with sb.kernel() as k:
    res = k.execute(sys.argv[1], timeout=60)
sb.close()
print(res.stdout.strip().splitlines()[-1])
"""


def _mounts_seen_by_a_script_in(directory: Path) -> list[str]:
    script = directory / f"whip_caller_{secrets.token_hex(4)}.py"
    script.write_text(_CALLER)
    try:
        proc = subprocess.run(
            [sys.executable, str(script), _MOUNTS],
            capture_output=True,
            text=True,
            cwd=directory,
            timeout=240,
        )
    finally:
        script.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    mounts = json.loads(proc.stdout.strip().split("MOUNTS", 1)[1])
    # the kernel's own directory has a random name: keep the shape, not the name
    return sorted({m if "whip-" not in m else "<kernel dir>" for m in mounts})


def test_the_callers_location_changes_nothing(tmp_path):
    home_dir = Path.home() / f"whip-caller-{secrets.token_hex(4)}"
    home_dir.mkdir()
    try:
        views = {
            str(d): _mounts_seen_by_a_script_in(d)
            for d in (Path("/tmp"), home_dir, REPO / "notebooks")
        }
    finally:
        home_dir.rmdir()
    first = next(iter(views.values()))
    assert all(v == first for v in views.values()), views
    assert not any(str(home_dir) in m or m.startswith("/tmp/whip_caller") for m in first), first


# ------------------------------------------------------------- 3. sessions kept apart

_VICTIM = r"""
import time, os
open("victim-notes.txt", "w").write({marker!r})
print("victim ready", flush=True)
time.sleep(6)
print("victim done", open("victim-notes.txt").read())
"""

_THIEF = r"""
import os, socket
found, connected, replaced = [], [], []
mine = os.path.dirname(os.getcwd())  # this kernel's own sockets are fair game
for root, dirs, files in os.walk("/", topdown=True):
    if root.startswith(mine):
        continue
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/sys", "/usr", "/dev", "/proc")]
    for name in files:
        path = os.path.join(root, name)
        if not os.path.isfile(path) and not name.startswith("ipc-") and name != "fork.sock":
            continue
        if name.startswith("ipc-") or name == "fork.sock":
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                connected.append(path)
            except OSError:
                pass
            s.close()
        if name == "victim-notes.txt" and root != os.getcwd():
            found.append(path)
        if name == "fork.sock" and os.access(os.path.dirname(path), os.W_OK):
            replaced.append(path)  # could be replaced (not done: a test must not break others)
print("THIEF", found, connected, replaced)
"""


def test_sessions_cannot_see_or_touch_each_other(sandbox, marker):
    victim_out: dict[str, str] = {}

    def victim() -> None:
        victim_out["out"] = run(sandbox, _VICTIM.format(marker=marker), timeout=60)

    t = threading.Thread(target=victim)
    t.start()
    time.sleep(2.5)  # the victim's kernel is running and has written its notes
    out = run(sandbox, _THIEF, timeout=60)
    t.join(70)
    assert "THIEF [] [] []" in out, out
    assert f"victim done {marker}" in victim_out["out"], victim_out
    still_works(sandbox)


def test_a_grading_run_is_out_of_reach_of_two_concurrent_sessions(sandbox, marker):
    """Three sessions at once on one pool: one grades a submission, the other two hunt for its
    code, its held-out inputs or its sockets, and must find nothing, while the grade is normal."""
    from whipstudio_nb import load_task
    from whipstudio_nb.grading import grade_code

    task = load_task("task1")
    solution = task.solution_code + f"\n# {marker}\n"
    grade: dict[str, object] = {}
    t = threading.Thread(target=lambda: grade.update(r=grade_code(task, solution, sandbox)))
    t.start()
    hunters = []
    hunt = _THIEF.replace(
        'name == "victim-notes.txt"',
        f"os.path.isfile(path) and os.path.getsize(path) < 10**6 and {marker!r} in open(path, errors='ignore').read()",
    )
    for _ in range(2):
        h = threading.Thread(target=lambda: hunters.append(run(sandbox, hunt, timeout=90)))
        h.start()
        time.sleep(0.5)
        h.join(100)
    t.join(120)
    for out in hunters:
        assert "THIEF [] [] []" in out, out
    assert grade["r"].score >= 0.9, grade["r"]  # type: ignore[attr-defined]
    still_works(sandbox)


# ------------------------------------------------------------- 4. seccomp

_SYSCALLS = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
nr = {"mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "pivot_root": 155,
      "ptrace": 101, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
      "io_uring_setup": 425, "userfaultfd": 323, "kexec_load": 246, "init_module": 175,
      "finit_module": 313, "open_by_handle_at": 304}
allowed = []
for name, n in nr.items():
    args = {"unshare": (0x10000000,), "mount": (b"none", b"/tmp", b"tmpfs", 0, None),
            "ptrace": (16, 1, 0, 0), "userfaultfd": (0,), "io_uring_setup": (1, ctypes.create_string_buffer(120)),
            "bpf": (0, None, 0), "keyctl": (0, 0), "perf_event_open": (None, 0, -1, -1, 0)}.get(name, (0, 0, 0, 0))
    ret = libc.syscall(n, *args)
    err = ctypes.get_errno()
    if ret >= 0 or err not in (1, 38):  # EPERM / ENOSYS: refused by the filter
        allowed.append((name, ret, os.strerror(err)))
print("ALLOWED", allowed)
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")
def test_dangerous_syscalls_are_filtered(sandbox):
    out = run(sandbox, _SYSCALLS)
    assert "ALLOWED []" in out, out
    still_works(sandbox)


# ------------------------------------------------------------- 5. resources


def test_scratch_space_is_private_capped_and_freed(sandbox, marker):
    out = run(
        sandbox,
        (
            "import os\n"
            f"for d in ('/tmp', '/dev/shm', '.'):\n"
            f"    open(os.path.join(d, 'm-{marker}'), 'w').write('x')\n"
            "total = 0\n"
            "try:\n"
            "    with open('/tmp/big', 'wb') as f:\n"
            "        for _ in range(2048):\n"
            "            f.write(b'\\0' * 2**20); total += 1\n"
            "except OSError as e:\n"
            "    print('stopped', type(e).__name__)\n"
            "os.unlink('/tmp/big')\n"
            "print('MB', total)\n"
        ),
        timeout=120,
    )
    for d in ("/tmp", "/dev/shm"):  # left on the host only if isolation is off
        Path(d, f"m-{marker}").unlink(missing_ok=True)
    assert "stopped" in out, out
    mb = int(out.split("MB")[-1].split()[0])
    assert mb <= 520, out  # the 512 MiB default cap, with the small files beside it
    out = run(
        sandbox,
        f"import os\nprint([p for d in ('/tmp', '/dev/shm', '.') for p in os.listdir(d) if '{marker}' in p])",
    )
    assert "[]" in out, out  # nothing survives into the next kernel
    still_works(sandbox)


def test_a_precreated_stash_path_does_not_break_later_kernels(sandbox):
    run(
        sandbox,
        "import os\nfor i in range(1, 70000, 7):\n    try:\n        os.mkdir(f'/tmp/.whip-own-{i}')\n    except OSError:\n        pass",
    )
    for _ in range(3):
        still_works(sandbox)


def test_the_host_keeps_only_capped_results(sandbox):
    with sandbox.kernel() as k:
        res = k.execute(
            "import whipstudio_nb.sandbox.kernel_lib as kl\n"
            "for i in range(40):\n    kl.emit({'blob': 'x' * 10_000_000, 'i': i})\n",
            timeout=120,
        )
    kept = sum(len(json.dumps(r)) for r in res.results)
    assert kept <= 64 * 2**20 and len(res.results) <= 16, (len(res.results), kept)
    assert any(r.get("truncated") for r in res.results) or res.results_dropped > 0
    still_works(sandbox)


# ------------------------------------------------------------- 6. host-side checks


def test_huge_or_deeply_nested_code_is_an_in_band_error(sandbox):
    with WhipEnv(sandbox=sandbox, max_turns=50) as env:
        env.reset("task1")
        for code in ("x = 1\n" * 400_000, "a" + "+a" * 200_000):
            obs = env.step({"action_type": "execute_snippet", "code": code}).observation
            assert obs.error and "limit" in obs.error, obs
            assert env.state().turn == 0  # rejected before it ran: no turn used
        for code in ("(" * 60_000 + ")" * 60_000, "-" * 100_000 + "1", "[" * 50_000 + "]" * 50_000):
            obs = env.step({"action_type": "execute_snippet", "code": code}).observation
            assert obs.error or obs.exit_code != 0, obs  # in-band, never raised
        obs = env.step(
            {
                "action_type": "get_variable_state",
                "setup_code": "x=1",
                "expressions": ["x" * 300_000],
            }
        ).observation
        assert obs.error and "limit" in obs.error, obs
        obs = env.step({"action_type": "execute_snippet", "code": "print(2)"}).observation
        assert obs.stdout == "2\n", obs


def test_infrastructure_failures_are_in_band_and_the_pool_heals():
    sb = Sandbox(pool_size=1)
    try:
        with WhipEnv(sandbox=sb, max_turns=50) as env:
            env.reset("task1")
            assert (
                env.step({"action_type": "execute_snippet", "code": "print(1)"}).observation.stdout
                == "1\n"
            )
            launcher = sb.pool.launcher
            pid = getattr(launcher, "server_pid", None)
            if pid is None:
                pytest.skip("no fork server to break")
            os.kill(pid, 9)  # the fork server dies under everyone's feet
            time.sleep(0.5)
            obs = env.step({"action_type": "execute_snippet", "code": "print(2)"}).observation
            assert obs.error is None or "sandbox" in obs.error.lower(), obs  # in-band, no raise
            for _ in range(60):
                obs = env.step({"action_type": "execute_snippet", "code": "print(3)"}).observation
                if obs.stdout == "3\n":
                    break
                time.sleep(0.5)
            assert obs.stdout == "3\n", obs
    finally:
        sb.close()


_WRITABLE = r"""
import os
own = os.getcwd()
writable = []
for root, dirs, files in os.walk("/", topdown=True):
    # devpts holds terminals, and no process can create a file in it
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev/pts")]
    if os.access(root, os.W_OK):  # the kernel's own view of permissions, mounts included
        writable.append(root)
print("WRITABLE", sorted(writable))
"""


def test_only_the_kernels_private_scratch_is_writable(sandbox):
    """Every directory a kernel can create a file in lies on its private, capped tmpfs: /tmp,
    /dev/shm and its work dir. Nothing shared with the fork server or other kernels."""
    out = run(sandbox, _WRITABLE, timeout=120)
    dirs = eval(out.split("WRITABLE", 1)[1].strip())  # a list literal printed by the kernel
    cwd = run(sandbox, "import os\nprint(os.getcwd())").strip()
    private = ("/tmp", "/dev/shm", os.path.dirname(cwd).rsplit("/", 1)[0])
    stray = [
        d
        for d in dirs
        if not any(d == p or d.startswith(p + "/") for p in ("/tmp", "/dev/shm"))
        and not d.endswith("/work")
    ]
    assert dirs and not stray, (stray, private)


def test_every_allowlisted_module_imports_in_the_sandbox(sandbox):
    from whipstudio_nb.sandbox import ALLOWED_IMPORTS

    modules = [
        *ALLOWED_IMPORTS,
        "sklearn.metrics",
        "sklearn.linear_model",
        "scipy.stats",
        "matplotlib.pyplot",
    ]
    out = run(
        sandbox,
        (
            "import importlib\nbad = []\n"
            f"for m in {modules!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except Exception as e:\n        bad.append((m, repr(e)))\n"
            "print('BAD', bad)\n"
        ),
        timeout=120,
    )
    assert "BAD []" in out, out


_LISTENER = r"""
import socket
name = {name!r}
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind("\0" + name)
u.listen(1)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp = True
try:
    t.bind(("127.0.0.1", {port}))
    t.listen(1)
except OSError as exc:
    tcp = False
    print("no loopback:", exc)
print("listening", flush=True)
for s in (u, t) if tcp else (u,):
    s.settimeout(6)
    try:
        c, _ = s.accept()
        c.sendall(b"whip-secret-" + name.encode())
        c.close()
    except OSError:
        pass
"""

_TALKER = r"""
import socket, time
time.sleep(1.5)
got = []
for family, addr in ((socket.AF_UNIX, "\0" + {name!r}), (socket.AF_INET, ("127.0.0.1", {port}))):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        got.append(s.recv(100).decode())
    except OSError:
        pass
print("TALKER", got)
"""


def test_kernels_share_no_network_or_abstract_sockets(sandbox, marker):
    """Two kernels at once (two sessions, or a grading run and the grader's re-run): one listens
    on an abstract Unix socket and on loopback TCP, the other must reach neither."""
    port = 20000 + secrets.randbelow(20000)
    listener: dict[str, str] = {}
    t = threading.Thread(
        target=lambda: listener.update(out=run(sandbox, _LISTENER.format(name=marker, port=port)))
    )
    t.start()
    out = run(sandbox, _TALKER.format(name=marker, port=port))
    t.join(30)
    assert "TALKER []" in out, out
    assert "listening" in listener["out"], listener
    still_works(sandbox)


def test_a_forked_childs_output_reaches_the_cell(sandbox, marker):
    """A kernel's network namespace of its own still has loopback: ipykernel forwards what a
    forked process prints (the grader's run of a submission, a snippet's child) over it. With
    loopback down each such print waited out a 3 s send timeout and was lost, and every graded
    script that printed ran past its time budget."""
    code = (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        f"    print('child says {marker}', flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent done')\n"
    )
    out = run(sandbox, code)
    assert f"child says {marker}" in out, out
    assert "parent done" in out, out


# The graded submission hunts for the task's solution while the grader's reference run holds it
# (the solution's code, in a kernel of its own, started with the graded run): in every file it
# can reach, in every visible process's command line, environment and memory.
_SOLUTION_HUNT = r"""
import os, sys
time = sys.modules["time"]  # the submission allowlist has no 'time'
want = {half1!r} + {half2!r}
me = {{os.getpid(), os.getppid()}}
found = []


def scan_processes():
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in me]:
        try:
            cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
            if want.encode() in cmdline or want.encode() in open(f"/proc/{{pid}}/environ", "rb").read():
                found.append(f"/proc/{{pid}}")
        except OSError:
            pass
        if b"python" not in cmdline:
            continue
        try:
            maps = open(f"/proc/{{pid}}/maps").read().splitlines()
            mem = open(f"/proc/{{pid}}/mem", "rb", buffering=0)
        except OSError:
            continue
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if "r" not in perms or hi - lo > 256 * 2**20 or len(line.split()) > 5:
                continue  # anonymous readable memory (heaps) only
            try:
                mem.seek(lo)
                if want.encode() in mem.read(hi - lo):
                    found.append(f"/proc/{{pid}}/mem")
                    break
            except (OSError, ValueError, OverflowError):
                pass


def scan_files(until):
    for root, dirs, files in os.walk("/", topdown=True):
        if time.monotonic() > until:
            return
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/sys", "/usr", "/dev", "/proc")]
        for name in files:
            path = os.path.join(root, name)
            try:
                if os.path.getsize(path) < 10**6 and want in open(path, errors="ignore").read():
                    found.append(path)
            except OSError:
                pass


deadline = time.monotonic() + 6
while time.monotonic() < deadline and not found:
    scan_processes()
    scan_files(deadline)
    time.sleep(0.2)
print("HUNT", sorted(set(found)))
"""


def test_the_reference_run_is_out_of_reach_of_the_submission(sandbox, marker):
    """Grading runs the task's solution (training off) in a second kernel to check the trained
    weights: the submission graded at the same time must find no trace of it."""
    from whipstudio_nb import load_task
    from whipstudio_nb.grading import grade_code

    task = load_task("task1")
    held = task.solution_code + f"\n_whip_secret = {marker!r}\nimport time\ntime.sleep(5)\n"
    task = task.model_copy(update={"solution_code": held})
    hunt = _SOLUTION_HUNT.format(half1=marker[:10], half2=marker[10:])
    result = grade_code(task, task.buggy_code + "\n" + hunt, sandbox)
    assert "HUNT []" in result.output, result.output[-2000:]
    still_works(sandbox)
