"""``whip course grade``: regrade every submission from scratch, in parallel, never trusting
what the student's side recorded.

Each submission's code is graded by the public grading API (``grading.grade_code``) in a fresh
sandbox kernel, against the variant the assignment gives that student (recomputed here, not
read from the file). What the episode file claims (its score, seed, student, limits, the code it
says it submitted) is only compared with that, and every mismatch flags the row as tampered
with its reason. A submission that cannot be graded becomes a row with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..episode_file import EpisodeRecord, code_digest
from ..models import GradeResult
from .assignment import Assignment
from .collect import Submission, collect

__all__ = ["CSV_FIELDS", "GradeRow", "grade_submissions", "regrade"]

CSV_FIELDS = (
    "student",
    "task",
    "score",
    "solved",
    "turns",
    "submissions",
    "components",
    "tampered",
    "late",
    "recorded_score",
    "seed",
    "file",
    "reason",
)
# Every grading run draws its own hidden data, so the same code scores a little differently in
# the student's notebook and in the regrade (the reference fix of task1: 0.90-1.00). A recorded
# score above the regrade is noted past NOTE_GAP, and counts as tampering only past
# TAMPER_GAP, which no honest run comes near; a recorded score that its own recorded components
# do not give is tampering at any size.
NOTE_GAP = 0.05
TAMPER_GAP = 0.5
MAX_SCRIPT_BYTES = 1024 * 1024


@dataclass
class GradeRow:
    """One (student, task) of the gradebook, with what its feedback page needs."""

    student: str
    task: str
    score: float = 0.0
    solved: bool = False
    graded: bool = False
    turns: int | None = None
    submissions: int | None = None
    components: dict[str, float] = field(default_factory=dict)
    tampered: bool = False
    late: bool = False
    recorded_score: float | None = None
    seed: int | None = None
    file: str = ""
    reasons: list[str] = field(default_factory=list)
    code: str | None = None
    buggy_code: str | None = None
    result: GradeResult | None = None
    seconds: float = 0.0

    def csv_row(self) -> dict[str, str]:
        comps = " ".join(f"{k}={v:.2f}" for k, v in self.components.items())
        opt = lambda v: "" if v is None else str(v)  # noqa: E731
        return {
            "student": _cell(self.student),
            "task": _cell(self.task),
            "score": f"{self.score:.4f}",
            "solved": str(self.solved).lower(),
            "turns": opt(self.turns),
            "submissions": opt(self.submissions),
            "components": comps,
            "tampered": str(self.tampered).lower(),
            "late": str(self.late).lower(),
            "recorded_score": "" if self.recorded_score is None else f"{self.recorded_score:.4f}",
            "seed": opt(self.seed),
            "file": _cell(self.file),
            "reason": _cell("; ".join(self.reasons)),
        }


def _cell(text: str) -> str:
    """Text a student may have chosen, made inert for spreadsheets: a cell starting with = + - @
    would be run as a formula when the CSV is opened."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _code_of(sub: Submission, row: GradeRow) -> str | None:
    """The code to grade, or None with the reason in the row."""
    if sub.kind == "script":
        assert sub.path is not None
        try:
            if sub.path.stat().st_size > MAX_SCRIPT_BYTES:
                row.reasons.append(f"the script is larger than {MAX_SCRIPT_BYTES // 1024} KiB")
                return None
            return sub.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            row.reasons.append(f"cannot read the script: {exc}")
            return None
    ep = sub.episode
    assert ep is not None
    if ep.final_code is not None:
        return ep.final_code
    row.reasons.append("never submitted: graded the working copy")
    return ep.working_code


def _claims(
    ep: EpisodeRecord, sub: Submission, a: Assignment, row: GradeRow, variants: bool
) -> list[str]:
    """What the episode file claims that the regrade and the assignment contradict."""
    out = []
    if ep.student_id.strip() and ep.student_id.strip() != sub.student:
        out.append(f"saved by '{ep.student_id}' but collected from '{sub.student}'")
    if variants and ep.seed != row.seed:
        out.append(f"played variant seed {ep.seed}; the assignment gives this student {row.seed}")
    if ep.assignment is not None and ep.assignment != a.name:
        out.append(f"saved under another assignment, '{ep.assignment}'")
    if ep.score is not None:
        implied = _score_of(ep.components, (row.result.details if row.result else {}))
        if implied is not None and ep.score > implied + 0.001:
            out.append(
                f"recorded score {ep.score:.3f}, but its recorded components give {implied:.3f}"
            )
        elif ep.score > row.score + TAMPER_GAP:
            out.append(f"recorded score {ep.score:.3f}, regraded {row.score:.3f}")
    submits = [t for t in ep.trail if t.action_type == "submit_fix" and t.code_sha256]
    if ep.final_code is not None and (
        not submits or submits[-1].code_sha256 != code_digest(ep.final_code)
    ):
        out.append("the final code is not the code the trail last submitted")
    if len(submits) != ep.submissions or (ep.trail and ep.trail[-1].turn != ep.turns):
        out.append("the trail does not match the recorded turns and submissions")
    if a.max_turns is not None and ep.turns > a.max_turns:
        out.append(f"{ep.turns} turns; the assignment allows {a.max_turns}")
    if ep.submissions > a.max_submissions:
        out.append(f"{ep.submissions} submissions; the assignment allows {a.max_submissions}")
    return out


def _score_of(components: dict[str, float | None], details: dict[str, Any]) -> float | None:
    """The score that recorded components give under the task's weights (the grader's sum;
    a crash cap only lowers it). None when the weights or a component are missing."""
    from ..grading.metrics import weighted_score

    weights = details.get("weights") or {}
    if not weights or any(components.get(name) is None for name in weights):
        return None
    return weighted_score({k: float(v or 0.0) for k, v in components.items()}, weights)


def _grader_problems(details: dict[str, Any]) -> list[str]:
    """The grade's problems in one line each: the grader's error, the script's exception (its
    last line and where it happened), the missing model."""
    out = [str(details["error"])] if details.get("error") else []
    if script := str(details.get("script_error") or "").strip():
        lines = script.splitlines()
        where = next((ln.strip() for ln in lines if ln.strip().startswith("File ")), "")
        out.append(f"script error: {lines[-1].strip()}" + (f" ({where})" if where else ""))
    if details.get("model_error"):
        out.append(f"model: {details['model_error']}")
    if details.get("reference_error"):
        out.append(f"held-out check: {details['reference_error']}")
    return out


def regrade(sub: Submission, assignment: Assignment, sandbox: Any) -> GradeRow:
    """Grade one submission from scratch. Never raises: a failure is a row with its reason."""
    from ..grading import grade_code
    from ..tasks import load_task

    row = GradeRow(sub.student, sub.task_id, file=str(sub.path or ""))
    row.reasons += sub.notes
    if sub.problem:
        row.reasons.insert(0, sub.problem)
        return row
    started = time.monotonic()
    try:
        row.seed = assignment.seed_for(sub.task_id, sub.student)
        task = load_task(sub.task_id, seed=row.seed)
        code = _code_of(sub, row)
        if code is None:
            return row
        row.code, row.buggy_code = code, task.buggy_code
        result = grade_code(task, code, sandbox)
    except Exception as exc:  # a sandbox failure, a broken pack: this row, not the run
        row.reasons.insert(0, f"grading failed: {type(exc).__name__}: {exc}")
        return row
    row.seconds = time.monotonic() - started
    row.graded, row.result = True, result
    row.score = result.score
    row.solved = result.score >= assignment.solved_at
    row.components = dict(result.details.get("components") or {})
    row.reasons += _grader_problems(result.details)
    if result.details.get("tampered"):
        row.tampered = True
    ep = sub.episode
    if ep is not None:
        row.turns, row.submissions, row.recorded_score = ep.turns, ep.submissions, ep.score
        claims = _claims(ep, sub, assignment, row, bool(task.variants))
        row.tampered = row.tampered or bool(claims)
        row.reasons += claims
        if not claims and ep.score is not None and ep.score > row.score + NOTE_GAP:
            row.reasons.append(
                f"scored {ep.score:.3f} in the notebook and {row.score:.3f} in the regrade "
                "(each grading draws its own hidden data)"
            )
    # lateness: the collection's timestamp when there is one (nbgrader's), else the episode's
    if sub.collected_at is not None and assignment.is_late(sub.collected_at):
        row.late = True
        row.reasons.append(f"handed in after the deadline ({sub.collected_at.isoformat()})")
    elif sub.collected_at is None and ep is not None and assignment.is_late(ep.saved_at):
        row.late = True
        row.reasons.append(f"saved after the deadline ({ep.saved_at.isoformat()})")
    return row


def grade_submissions(
    submissions_dir: str | os.PathLike[str],
    assignment: Assignment,
    *,
    workers: int = 2,
    roster: list[str] | None = None,
    sandbox: Any = None,
    on_row: Callable[[GradeRow, int, int], None] | None = None,
) -> list[GradeRow]:
    """Regrade everything under ``submissions_dir`` over ``workers`` parallel sandboxes.
    ``on_row(row, done, total)`` is called as each row is finished (for a progress bar).
    Rows come back in student, then task order."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    subs = collect(Path(submissions_dir), assignment, roster)
    own = sandbox is None and any(s.problem is None for s in subs)
    if own:  # only when something can be graded
        from ..env import make_sandbox

        sandbox = make_sandbox(workers)
    rows: dict[int, GradeRow] = {}
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whip-grade") as pool:
            futures = {pool.submit(regrade, s, assignment, sandbox): i for i, s in enumerate(subs)}
            for fut in as_completed(futures):
                i = futures[fut]
                rows[i] = fut.result()
                if on_row is not None:
                    on_row(rows[i], len(rows), len(subs))
    finally:
        if own:
            sandbox.close()
    return [rows[i] for i in range(len(subs))]
