"""Task packs: the shipped task1, unknown ids, malformed packs, extra pack directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from whipstudio_nb import TaskPackError, UnknownTaskError, list_tasks, load_task
from whipstudio_nb.tasks import builtin_tasks_dir, load_task_dir


def test_task1_loads():
    t = load_task("task1")
    assert t.info.name == "Broken Training Loop"
    assert t.info.difficulty == "easy"
    assert "optimizer.step()" in t.buggy_code and t.solution_code != t.buggy_code
    assert len(t.hints) >= 2
    assert "task1" in [i.id for i in list_tasks()]


def test_unknown_task_message():
    with pytest.raises(ValueError) as info:
        load_task("task99")
    assert isinstance(info.value, UnknownTaskError)
    assert str(info.value).startswith("Unknown task_id: task99. Available: task1")


def _copy_pack(tmp_path: Path, new_id: str = "mytask") -> Path:
    dst = tmp_path / new_id
    shutil.copytree(builtin_tasks_dir() / "task1", dst)
    toml = dst / "task.toml"
    toml.write_text(toml.read_text().replace('id = "task1"', f'id = "{new_id}"'))
    return dst


def test_extra_packs_from_env(tmp_path, monkeypatch):
    _copy_pack(tmp_path, "course_a")
    monkeypatch.setenv("WHIP_TASKS_PATH", str(tmp_path))
    assert load_task("course_a").info.id == "course_a"
    assert {"task1", "course_a"} <= {t.id for t in list_tasks()}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: (p / "buggy.py").unlink(), "missing required file 'buggy.py'"),
        (lambda p: (p / "task.toml").write_text("id = 'mytask'\nname = "), "invalid TOML"),
        (
            lambda p: (p / "task.toml").write_text(
                (p / "task.toml")
                .read_text()
                .replace('difficulty = "easy"', 'difficulty = "trivial"')
            ),
            "field 'difficulty' must be one of easy, medium, hard",
        ),
        (
            lambda p: (p / "task.toml").write_text(
                (p / "task.toml").read_text().replace('id = "mytask"', 'id = "other"')
            ),
            "field 'id' must match the directory name",
        ),
        (
            lambda p: (p / "task.toml").write_text(
                (p / "task.toml").read_text().replace("max_turns = 10", "max_turns = 0")
            ),
            "field 'max_turns' must be an integer >= 1",
        ),
    ],
)
def test_malformed_packs_name_file_and_field(tmp_path, edit, expected):
    pack = _copy_pack(tmp_path)
    edit(pack)
    with pytest.raises(TaskPackError) as info:
        load_task_dir(pack)
    assert expected in str(info.value)
    assert str(pack) in str(info.value)
