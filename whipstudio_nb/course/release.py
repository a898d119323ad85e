"""``whip course release``: the student version of an assignment.

OUT/ receives the assignment file (the notebooks pin it) and one notebook per task, or one
combined notebook. Each has the instructions, a ready cell that loads the extension, pins the
assignment and starts the episode, and a last cell that saves the episode for collection. Task
packs are not copied: the students' environment finds them the way the instructor's does
(built in, or through WHIP_TASKS_PATH).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..tasks import load_task
from .assignment import Assignment, AssignmentError

__all__ = ["episode_file_name", "release"]

ASSIGNMENT_FILE = "assignment.toml"

_TOOLS = """\
| magic | what it does (the tools and submissions each cost a turn) |
|---|---|
| `%%whip_probe` / `%whip_probe` | run a few training steps: loss curve and gradient norms |
| `%%whip_snippet` | run any code in a fresh sandbox |
| `%%whip_inspect EXPR` | a tensor's shape, dtype, gradient and statistics |
| `%%whip_vars EXPR ...` | the values of several expressions |
| `%%whip_diff` | your fix against the original script |
| `%%whip_code --replace START END` | edit lines of your working copy (`%whip_code` shows it) |
| `%%whip_submit` | grade the cell (the whole fixed script); `%whip_submit`: the working copy |
| `%whip_hint` | the next hint, if the assignment allows one |
| `%whip_state` | your episode so far |"""


def episode_file_name(task_id: str) -> str:
    return f"{task_id}.episode.json"


def _cell(kind: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": kind,
        "id": uuid.uuid4().hex[:8],
        "metadata": {},
        "source": source.strip("\n"),
    }
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook(cells: list[dict[str, Any]], assignment: Assignment, tasks: list[str]) -> str:
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "whipstudio": {"assignment": assignment.name, "tasks": tasks},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _rules(assignment: Assignment) -> str:
    lines = [f"**Limits:** {assignment.limits_text()}."]
    if assignment.deadline is not None:
        lines.append(f"**Deadline:** {assignment.deadline.isoformat()}.")
    if assignment.seed_policy == "per_student":
        lines.append(
            "Your variant of each script is drawn from your student id, so your neighbour's "
            "differs in its details."
        )
    return "  \n".join(lines)


def _setup_cell(reset: str | None) -> str:
    lines = [
        "%load_ext whipstudio_nb",
        f'%config WhipMagics.assignment = "{ASSIGNMENT_FILE}"',
        "# Your student id is saved with your work (and picks your variant). JupyterHub sets it;",
        "# elsewhere, uncomment the next line and put your id in it.",
        '# %config WhipMagics.student_id = "your-id"',
    ]
    if reset:
        lines.append(reset)
    return "\n".join(lines)


def _how_it_works(task_ids: list[str], assignment: Assignment) -> str:
    saved = ", ".join(f"`{episode_file_name(t)}`" for t in task_ids)
    return f"""\
## How this works

1. Run the first code cell. It loads WhipStudio, pins this assignment (only its tasks, its
   limits and its hints are available) and starts your episode: the task's description and the
   buggy script with line numbers.
2. Investigate with the tools, fix the script, and submit: `%whip_submit` grades your working
   copy (edited with `%%whip_code --replace START END`), `%%whip_submit` a whole fixed script
   written in the cell. Each submission shows a grade report; you may submit
   {assignment.max_submissions} time{"s" if assignment.max_submissions != 1 else ""}.
3. Run the *Save* cell at the end. It writes {saved} next to this notebook: that file is what
   your instructor collects. The score shown here is a preview: your last submitted code is
   graded again, from scratch, on the instructor's side.

{_TOOLS}"""


def _task_cells(assignment: Assignment, task_id: str, heading: str) -> list[dict[str, Any]]:
    task = load_task(task_id)
    info = task.info
    intro = f"{heading} {info.name} (`{task_id}`, {info.difficulty})\n\n{info.description}"
    return [
        _cell("markdown", intro),
        _cell("markdown", "Your investigation: add as many cells as you need."),
        _cell("code", "# for example, a few training steps of your working copy:\n# %whip_probe"),
        _cell(
            "markdown",
            f"### Save your {task_id} episode\n\nRun this when you are done, and again after "
            "any later submission.",
        ),
        _cell("code", f"%whip_save {episode_file_name(task_id)}"),
    ]


def _copy_assignment(assignment: Assignment, out: Path) -> Path:
    target = out / ASSIGNMENT_FILE
    if assignment.path is None or not Path(assignment.path).is_file():
        raise AssignmentError("release needs an assignment read from a file (load_assignment)")
    if Path(assignment.path).resolve() != target.resolve():
        shutil.copyfile(assignment.path, target)
    return target


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "assignment"


def release(
    assignment: Assignment,
    out_dir: str | os.PathLike[str],
    *,
    combined: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write the student version into ``out_dir``; returns the files written. Existing
    notebooks are not overwritten unless ``force``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans: list[tuple[Path, list[str]]] = (
        [(out / f"{_slug(assignment.name)}.ipynb", list(assignment.tasks))]
        if combined
        else [(out / f"{t}.ipynb", [t]) for t in assignment.tasks]
    )
    existing = [str(p) for p, _ in plans if p.exists()]
    if existing and not force:
        raise AssignmentError(
            f"not overwriting {', '.join(existing)} (students may have started): pass --force"
        )
    written = [_copy_assignment(assignment, out)]
    for path, task_ids in plans:
        title = assignment.name if combined else f"{assignment.name}: {task_ids[0]}"
        cells = [
            _cell("markdown", f"# {title}\n\n{_rules(assignment)}"),
            _cell("markdown", _how_it_works(task_ids, assignment)),
        ]
        if combined:
            cells.append(_cell("code", _setup_cell(None)))
            for i, task_id in enumerate(task_ids, 1):
                body = _task_cells(assignment, task_id, f"## Task {i}:")
                body.insert(1, _cell("code", f"%whip_reset {task_id}"))
                cells += body
        else:
            body = _task_cells(assignment, task_ids[0], "## The task:")
            body.insert(1, _cell("code", _setup_cell(f"%whip_reset {task_ids[0]}")))
            cells += body
        path.write_text(_notebook(cells, assignment, task_ids), encoding="utf-8")
        written.append(path)
    return written
