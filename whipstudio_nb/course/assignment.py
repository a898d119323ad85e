"""``assignment.toml``: which tasks a class works on, and under which rules.

```toml
name = "Week 3: training loops"
tasks = ["task1", "task2"]          # built-in ids, or packs found through WHIP_TASKS_PATH
seed_policy = "per_student"         # or "fixed": everyone gets the variant drawn from `seed`
seed = 7                            # fixed: the variant seed; per_student: mixed into each seed
max_turns = 15                      # per episode (default: each task's own)
max_submissions = 3                 # per episode
hints = 1                           # hints a student may reveal per task; "all" or 0
deadline = 2026-12-11T23:59:00Z     # with a time zone
solved_at = 0.9                     # the score that counts as solved
```

Every problem is reported with the file and the field, like a task pack's.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import SUCCESS_THRESHOLD
from ..errors import WhipError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Assignment",
    "AssignmentError",
    "TaskRefusedError",
    "load_assignment",
    "load_pinned",
]

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SEED_RANGE = 1_000_000


class AssignmentError(WhipError, ValueError):
    """An assignment file is invalid, or a student id is missing where the rules need one."""


class TaskRefusedError(AssignmentError):
    """A task outside the assignment was asked for."""


class Assignment(BaseModel):
    """A validated assignment. ``path`` is the file it was read from (None when built in code)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    seed_policy: Literal["fixed", "per_student"] = "fixed"
    seed: int | None = None
    max_turns: int | None = Field(default=None, ge=1)
    max_submissions: int = Field(default=3, ge=1)
    hints: int | Literal["all"] = "all"
    deadline: datetime | None = None
    solved_at: float = Field(default=SUCCESS_THRESHOLD, gt=0.0, le=1.0)
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("tasks")
    @classmethod
    def _unique_ids(cls, tasks: list[str]) -> list[str]:
        for t in tasks:
            if not _ID.match(t):
                raise ValueError(f"'{t}' is not a task id")
        dupes = sorted({t for t in tasks if tasks.count(t) > 1})
        if dupes:
            raise ValueError(f"lists {', '.join(dupes)} more than once")
        return tasks

    @field_validator("hints")
    @classmethod
    def _hints(cls, hints: int | str) -> int | str:
        if isinstance(hints, int) and hints < 0:
            raise ValueError('must be a number >= 0 or "all"')
        return hints

    @field_validator("deadline")
    @classmethod
    def _aware(cls, deadline: datetime | None) -> datetime | None:
        if deadline is not None and deadline.utcoffset() is None:
            raise ValueError("needs a time zone, e.g. 2026-12-11T23:59:00Z or ...+01:00")
        return deadline

    # ------------------------------------------------------------------ rules

    @property
    def hint_limit(self) -> int | None:
        """How many hints a student may reveal per task (None: all of them)."""
        return None if self.hints == "all" else int(self.hints)

    def check_task(self, task_id: str) -> None:
        """Raise TaskRefusedError unless ``task_id`` belongs to the assignment."""
        if task_id not in self.tasks:
            raise TaskRefusedError(
                f"{task_id} is not part of the assignment '{self.name}': "
                f"its tasks are {', '.join(self.tasks)}"
            )

    def seed_for(self, task_id: str, student_id: str) -> int | None:
        """The variant seed of ``task_id`` for this student: the same for everyone under
        ``fixed``, drawn from the student id under ``per_student`` (stable: the same student
        always gets the same variant, and the grader recomputes it rather than trusting a file)."""
        if self.seed_policy == "fixed":
            return self.seed
        student_id = student_id.strip()
        if not student_id:
            raise AssignmentError(
                f"the assignment '{self.name}' gives each student their own variant: set your "
                "student id first (%config WhipMagics.student_id = 'your-id', or the "
                "WHIP_STUDENT_ID environment variable; JupyterHub sets JUPYTERHUB_USER)"
            )
        key = f"{self.seed or 0}\0{self.name}\0{task_id}\0{student_id}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % _SEED_RANGE

    def is_late(self, when: datetime) -> bool:
        return self.deadline is not None and when > self.deadline

    def limits_text(self) -> str:
        turns = f"{self.max_turns} turns" if self.max_turns else "the task's turn limit"
        subs = f"{self.max_submissions} submission{'s' if self.max_submissions != 1 else ''}"
        hints = {None: "all hints", 0: "no hints", 1: "1 hint"}.get(
            self.hint_limit, f"{self.hint_limit} hints"
        )
        return f"{turns}, {subs} and {hints} per task"


def _field_problem(err: Any) -> str:
    loc = ".".join(str(x) for x in err.get("loc", ())) or "file"
    kind = err.get("type")
    if kind == "missing":
        return f"field '{loc}' is required"
    if kind == "extra_forbidden":
        return f"field '{loc}' is not an assignment setting"
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    return f"field '{loc}': {msg}{shown}"


def load_assignment(path: str | os.PathLike[str], *, check_tasks: bool = True) -> Assignment:
    """Read and validate an assignment file. With ``check_tasks`` every task id must name a
    pack that loads (built-in, or through ``WHIP_TASKS_PATH``).

    Raises AssignmentError (a ValueError) naming the file and the field.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AssignmentError(f"{p}: cannot read the assignment: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{p}: invalid TOML: {exc}") from exc
    if "path" in raw:
        raise AssignmentError(f"{p}: field 'path' is not an assignment setting")
    try:
        assignment = Assignment.model_validate({**raw, "path": p})
    except ValidationError as exc:
        problems = "; ".join(_field_problem(e) for e in exc.errors())
        raise AssignmentError(f"{p}: {problems}") from exc
    if check_tasks:
        _check_packs(assignment, p)
    return assignment


def _check_packs(assignment: Assignment, path: Path) -> None:
    from ..errors import TaskPackError
    from ..tasks import find_task_dirs, load_task_dir

    found = find_task_dirs()
    for task_id in assignment.tasks:
        if task_id not in found:
            raise AssignmentError(
                f"{path}: field 'tasks': no task pack '{task_id}' (built-in or in "
                f"WHIP_TASKS_PATH); available: {', '.join(found)}"
            )
        try:
            load_task_dir(found[task_id])
        except TaskPackError as exc:
            raise AssignmentError(f"{path}: field 'tasks': {task_id}: {exc}") from exc


_pinned: dict[tuple[str, float], Assignment] = {}


def load_pinned(path: str | os.PathLike[str]) -> Assignment:
    """``load_assignment`` for a notebook session that pins it: read again only when the file
    changes."""
    p = Path(path).expanduser()
    try:
        key = (str(p.resolve()), p.stat().st_mtime)
    except OSError as exc:
        raise AssignmentError(
            f"{p}: cannot read the assignment pinned by WhipMagics.assignment: "
            f"{exc.strerror or exc}"
        ) from exc
    if key not in _pinned:
        _pinned.clear()
        _pinned[key] = load_assignment(p)
    return _pinned[key]
