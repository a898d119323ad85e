"""Finding what each student handed in, the way nbgrader collects: one directory per student.

    SUBMISSIONS/<student>/**/<anything>.json     episode files (%whip_save, WhipEnv.export)
    SUBMISSIONS/<student>/**/<task>.py           plain fixed scripts
    SUBMISSIONS/<anything>.json                  an episode whose student is the one it names

The student is the directory's name whenever there is one: the collection, not the file, says
whose work it is. Every (student, task) pair of the assignment becomes one submission, a
missing one included, so the gradebook has a row for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from ..episode_file import EpisodeFileError, EpisodeRecord, load_episode
from .assignment import Assignment

__all__ = ["Submission", "collect", "read_roster"]

_SKIP_DIRS = {".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass
class Submission:
    student: str
    task_id: str
    kind: Literal["episode", "script", "missing", "invalid"]
    path: Path | None = None
    episode: EpisodeRecord | None = None
    problem: str | None = None  # why it cannot be graded
    notes: list[str] = field(default_factory=list)
    collected_at: datetime | None = None  # from a collection's timestamp.txt (nbgrader)

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.task_id


def read_roster(path: str | os.PathLike[str]) -> list[str]:
    """Student ids, one per line (a CSV's first column; a header named 'student' or 'id' and
    '#' comments are skipped)."""
    ids: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        first = line.split(",")[0].strip().strip('"')
        if first and not first.startswith("#") and first.lower() not in ("student", "id"):
            ids.append(first)
    return ids


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def collection_time(path: Path, top: Path) -> datetime | None:
    """When the file was handed in, from the nearest ``timestamp.txt`` between its directory
    and ``top`` (nbgrader writes one per submission; a time without a zone is UTC)."""
    for folder in [path.parent, *path.parent.parents]:
        stamp = folder / "timestamp.txt"
        if stamp.is_file():
            text = stamp.read_text(encoding="utf-8", errors="replace").strip()
            for fmt in ("%Y-%m-%d %H:%M:%S.%f %Z", "%Y-%m-%d %H:%M:%S %Z"):
                try:
                    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
                except ValueError:
                    pass
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return when if when.utcoffset() is not None else when.replace(tzinfo=timezone.utc)
        if folder == top:
            break
    return None


def _task_from_name(path: Path) -> str:
    return path.name.split(".")[0]


def _read(path: Path, student: str | None) -> Submission:
    """One file as a submission (its task read from the episode, or from the script's name)."""
    if path.suffix == ".py":
        if student is None:
            return Submission(
                "?",
                _task_from_name(path),
                "invalid",
                path,
                problem="a script outside a student directory: whose is it? "
                "Put it at <student>/<task>.py",
            )
        return Submission(student, path.stem, "script", path)
    try:
        record = load_episode(path)
    except EpisodeFileError as exc:
        guess = _task_from_name(path)
        return Submission(student or "?", guess, "invalid", path, problem=str(exc))
    who = student if student is not None else record.student_id.strip()
    if not who:
        return Submission(
            "?",
            record.task_id,
            "invalid",
            path,
            record,
            problem="the episode names no student and is not in a student directory",
        )
    return Submission(who, record.task_id, "episode", path, record)


def _pick(candidates: list[Submission]) -> Submission:
    """One submission per (student, task): a gradable one first, episodes before scripts, the
    latest saved episode; the others are named in a note."""

    def rank(s: Submission) -> tuple[int, int, float]:
        saved = s.episode.saved_at.timestamp() if s.episode is not None else 0.0
        return (s.problem is None, s.kind == "episode", saved)

    best = max(candidates, key=rank)
    others = [str(s.path) for s in candidates if s is not best and s.path is not None]
    if others:
        best.notes.append(f"also handed in, not graded: {', '.join(others)}")
    return best


def collect(
    submissions_dir: str | os.PathLike[str],
    assignment: Assignment,
    roster: list[str] | None = None,
) -> list[Submission]:
    """Every submission under ``submissions_dir``, one per (student, task) of the assignment
    (plus one per file for tasks outside it, which are refused), in student then task order."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    found: list[Submission] = []
    students: set[str] = set(roster or [])
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
            continue
        if entry.is_dir():
            students.add(entry.name)
            for path in _files(entry):
                if path.suffix in (".json", ".py"):
                    sub = _read(path, entry.name)
                    sub.collected_at = collection_time(path, entry)
                    found.append(sub)
        elif entry.suffix in (".json", ".py"):
            found.append(_read(entry, None))
    by_key: dict[tuple[str, str], list[Submission]] = {}
    for sub in found:
        if sub.student != "?":
            students.add(sub.student)
        if sub.task_id not in assignment.tasks and sub.problem is None:
            sub.problem = (
                f"{sub.task_id} is not part of the assignment '{assignment.name}' "
                f"(its tasks: {', '.join(assignment.tasks)})"
            )
        by_key.setdefault(sub.key, []).append(sub)
    if roster is not None:
        for sub in found:
            if sub.student not in roster and sub.problem is None and sub.student != "?":
                sub.notes.append(f"'{sub.student}' is not on the roster")
    for student in students:
        for task_id in assignment.tasks:
            if (student, task_id) not in by_key:
                by_key[(student, task_id)] = [
                    Submission(student, task_id, "missing", problem="no submission")
                ]
    order = {t: i for i, t in enumerate(assignment.tasks)}
    picked = [_pick(c) if len(c) > 1 else c[0] for c in by_key.values()]
    # refused extra files keep their own rows; within a key only one is graded
    return sorted(picked, key=lambda s: (s.student, order.get(s.task_id, len(order)), s.task_id))
