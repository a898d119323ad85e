"""`whip validate-task` on a good pack and on broken ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from whipstudio_nb.tasks import builtin_tasks_dir

WHIP = Path(sys.executable).parent / "whip"


def pack(tmp_path: Path) -> Path:
    dst = tmp_path / "mypack"
    shutil.copytree(builtin_tasks_dir() / "task1", dst)
    toml = dst / "task.toml"
    toml.write_text(toml.read_text().replace('id = "task1"', 'id = "mypack"'))
    return dst


def validate(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WHIP), "validate-task", str(path), *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_good_pack_passes(tmp_path):
    out = validate(pack(tmp_path), "--seeds", "5")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS  solution scores high" in out.stdout
    assert "PASS  cheat 'prints metrics only'" in out.stdout
    assert "PASS  variant seed=5" in out.stdout
    assert "checks passed" in out.stdout.splitlines()[-1]


def test_schema_error_is_reported(tmp_path):
    p = pack(tmp_path)
    (p / "grader.py").unlink()
    out = validate(p)
    assert out.returncode == 1
    assert "FAIL  schema:" in out.stdout and "missing required file 'grader.py'" in out.stdout


def test_unknown_component_is_a_schema_error(tmp_path):
    p = pack(tmp_path)
    toml = p / "task.toml"
    toml.write_text(toml.read_text().replace("trained = 0.15", "trained = 0.15\nvibes = 0.5"))
    out = validate(p)
    assert out.returncode == 1 and "grading.weights.vibes" in out.stdout


def test_solution_that_fixes_nothing_fails(tmp_path):
    p = pack(tmp_path)
    shutil.copy(p / "buggy.py", p / "solution.py")
    out = validate(p, "--seeds")
    assert out.returncode == 1
    assert "FAIL  solution scores high" in out.stdout
    assert "FAIL  partial fix scores in between" in out.stdout


def test_buggy_code_that_works_fails(tmp_path):
    p = pack(tmp_path)
    shutil.copy(p / "solution.py", p / "buggy.py")
    out = validate(p, "--seeds")
    assert out.returncode == 1 and "FAIL  buggy code scores low" in out.stdout


def test_crashing_solution_fails(tmp_path):
    p = pack(tmp_path)
    (p / "solution.py").write_text((p / "solution.py").read_text() + "\nraise SystemExit('oops')\n")
    out = validate(p, "--seeds")
    assert out.returncode == 1 and "FAIL  solution runs" in out.stdout
