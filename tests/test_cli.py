"""The `whip` console script, run as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

WHIP = Path(sys.executable).parent / "whip"


def whip(
    *args: str, input: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WHIP), *args], capture_output=True, text=True, input=input, timeout=timeout
    )


def test_console_script_installed():
    assert WHIP.exists()
    out = whip("--help")
    assert out.returncode == 0 and "tasks" in out.stdout and "doctor" in out.stdout


def test_tasks_table_and_json():
    out = whip("tasks")
    assert out.returncode == 0
    header, *rows = out.stdout.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "DIFFICULTY"]
    assert any(r.startswith("task1") and "Broken Training Loop" in r and "easy" in r for r in rows)
    data = json.loads(whip("tasks", "--json").stdout)
    assert data["tasks"][0]["id"] == "task1"


def test_grade_file_and_stdin(tmp_path, task1):
    fixed = tmp_path / "fixed.py"
    fixed.write_text(task1.solution_code)
    out = whip("grade", "task1", str(fixed))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("score: ")
    assert float(out.stdout.split()[1]) >= 0.9
    assert "heldout_metric" in out.stdout
    out = whip("grade", "task1", "-", "--json", input=task1.buggy_code)
    assert out.returncode == 0
    assert json.loads(out.stdout)["score"] <= 0.25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grade", "task99", "x.py"), "Unknown task_id: task99. Available: task1"),
        (("grade", "task1", "/no/such/file.py"), "no such file: /no/such/file.py"),
    ],
)
def test_grade_errors_are_one_line(args, message):
    out = whip(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_doctor():
    out = whip("doctor")
    assert out.returncode == 0, out.stderr
    for needle in (
        "torch",
        "jupyter_client",
        "sandbox        backend=local",
        "isolation=",
        "test call ok",
        "pool state",
    ):
        assert needle in out.stdout


def test_demo_ends_with_a_graded_fix():
    out = whip("demo", timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for action in (
        "execute_snippet",
        "run_training_probe",
        "inspect_tensor",
        "get_variable_state",
        "replace_lines",
        "inspect_diff",
        "submit_fix",
    ):
        assert f"[{action}," in text
    assert "Demo finished: the fix scored" in text
    score = re.search(r"Demo finished: the fix scored (\d\.\d\d)", text)
    assert score is not None and float(score.group(1)) >= 0.9
