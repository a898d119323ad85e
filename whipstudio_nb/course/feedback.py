"""What ``whip course grade`` writes: the gradebook (grades.csv, grades.json), one feedback
page per student and the class summary. Pages are self-contained HTML (plots as inline PNG)
and everything a student wrote is escaped."""

from __future__ import annotations

import csv
import hashlib
import re
import statistics
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..episode_file import dump_strict_json
from ..notebook.widgets._base import esc, fig_png, png_img_tag, table
from .assignment import Assignment
from .grade import CSV_FIELDS, GradeRow

__all__ = ["TaskSummary", "feedback_page", "summarize", "summary_text", "write_outputs"]

PASS_AT = 0.8  # a component below this is failing (the grade report's "pass" line)
_PAGE_CSS = """
body { font-family: -apple-system, 'Segoe UI', sans-serif; font-size: 14px; margin: 24px auto;
       max-width: 980px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-top: 1px solid #ddd; padding-top: 16px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
.note { color: #c62828; } .ok { color: #2e7d32; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_PAGE_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def safe_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", student).strip("._") or "student"


def feedback_page(student: str, rows: list[GradeRow], assignment: Assignment) -> str:
    """One student's page: a table of their tasks, then per task the grade report (with the
    training loss as a PNG) and the diff of their code against the buggy script."""
    from ..notebook.widgets import DiffViewer, GradeReport
    from ..tasks import load_task

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"<h1>{esc(assignment.name)}: feedback for {esc(student)}</h1>"
        f"<p>Graded {when}. Each fix was run again from scratch in a fresh sandbox and evaluated "
        "on held-out data; the score is what that run measured, whatever the notebook showed.</p>"
    )
    overview = [
        [esc(r.task), f"{r.score:.3f}", "yes" if r.solved else "no", esc("; ".join(r.reasons))]
        for r in rows
    ]
    parts = [head, table(overview, ["task", "score", "solved", "notes"])]
    for r in rows:
        try:
            name = load_task(r.task).info.name
        except ValueError:
            name = ""
        parts.append(f"<h2>{esc(r.task)}{': ' + esc(name) if name else ''}</h2>")
        for reason in r.reasons:
            parts.append(f'<p class="note">{esc(reason)}</p>')
        if r.result is None:
            parts.append("<p>Not graded.</p>")
            continue
        res = r.result
        parts.append(GradeReport(res.score, res.details, res.output).wrapped_html())
        if r.code is not None and r.buggy_code is not None:
            parts.append("<h3>Your changes to the buggy script</h3>")
            parts.append(DiffViewer(r.buggy_code, r.code).wrapped_html())
    return _page(f"{assignment.name}: {student}", "".join(parts))


class TaskSummary:
    """The class's results on one task."""

    def __init__(self, task: str, rows: list[GradeRow]) -> None:
        self.task = task
        graded = [r for r in rows if r.graded]
        self.scores = [r.score for r in graded]
        self.total = len(rows)
        self.graded = len(graded)
        self.solved = sum(r.solved for r in graded)
        self.tampered = sum(r.tampered for r in rows)
        self.mean = statistics.fmean(self.scores) if self.scores else None
        self.median = statistics.median(self.scores) if self.scores else None
        failing = Counter(n for r in graded for n, v in r.components.items() if v < PASS_AT)
        self.failing = failing.most_common(1)[0] if failing else None

    def failing_text(self) -> str:
        if self.failing is None:
            return "none"
        name, n = self.failing
        return f"{name} ({n} of {self.graded})"

    def histogram_png(self) -> bytes:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(4.2, 2.4))
        ax = fig.add_subplot(1, 1, 1)
        ax.hist(self.scores, bins=[i / 10 for i in range(11)], color="#1565c0", edgecolor="white")
        ax.set_xlim(0, 1)
        ax.set_xlabel("score")
        ax.set_ylabel("students")
        ax.set_title(f"{self.task}: {self.graded} graded", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # students come whole
        return fig_png(fig)


def summarize(rows: list[GradeRow], assignment: Assignment) -> list[TaskSummary]:
    tasks = list(assignment.tasks) + sorted({r.task for r in rows} - set(assignment.tasks))
    return [TaskSummary(t, [r for r in rows if r.task == t]) for t in tasks]


def summary_text(rows: list[GradeRow], assignment: Assignment) -> str:
    lines = [f"{'task':<10} {'graded':>7} {'solved':>7} {'mean':>6} {'median':>7}  most failing"]
    for s in summarize(rows, assignment):
        if s.task not in assignment.tasks and not s.graded:
            continue
        mean = "-" if s.mean is None else f"{s.mean:.3f}"
        median = "-" if s.median is None else f"{s.median:.3f}"
        lines.append(
            f"{s.task:<10} {s.graded:>3}/{s.total:<3} {s.solved:>7} {mean:>6} "
            f"{median:>7}  {s.failing_text()}"
        )
    flagged = [r for r in rows if r.tampered]
    if flagged:
        lines.append("tampered: " + ", ".join(f"{r.student}/{r.task}" for r in flagged))
    ungraded = [r for r in rows if not r.graded]
    if ungraded:
        lines.append(f"not graded: {len(ungraded)} (reasons in grades.csv)")
    return "\n".join(lines)


def summary_page(rows: list[GradeRow], assignment: Assignment) -> str:
    parts = [f"<h1>{esc(assignment.name)}: class summary</h1>"]
    stats = []
    for s in summarize(rows, assignment):
        stats.append(
            [
                esc(s.task),
                f"{s.graded}/{s.total}",
                str(s.solved),
                "-" if s.mean is None else f"{s.mean:.3f}",
                "-" if s.median is None else f"{s.median:.3f}",
                esc(s.failing_text()),
                str(s.tampered),
            ]
        )
    parts.append(
        table(
            stats,
            [
                "task",
                "graded",
                "solved",
                "mean",
                "median",
                "most common failing component",
                "tampered",
            ],
        )
    )
    parts.append("<h2>Score histograms</h2><div>")
    for s in summarize(rows, assignment):
        if s.scores:
            parts.append(png_img_tag(s.histogram_png(), f"{s.task} score histogram"))
    parts.append("</div><h2>Every row</h2>")
    body = [
        [
            esc(r.student),
            esc(r.task),
            f"{r.score:.3f}",
            "yes" if r.solved else "",
            "TAMPERED" if r.tampered else "",
            "late" if r.late else "",
            esc("; ".join(r.reasons)),
        ]
        for r in rows
    ]
    parts.append(table(body, ["student", "task", "score", "solved", "tampered", "late", "reason"]))
    return _page(f"{assignment.name}: summary", "".join(parts))


def _row_json(r: GradeRow) -> dict[str, Any]:
    out: dict[str, Any] = dict(r.csv_row())
    out.update(
        score=r.score,
        solved=r.solved,
        tampered=r.tampered,
        late=r.late,
        turns=r.turns,
        submissions=r.submissions,
        seed=r.seed,
        recorded_score=r.recorded_score,
        components=r.components,
        reasons=r.reasons,
        graded=r.graded,
        details=r.result.details if r.result else None,
    )
    out.pop("reason")
    return out


PARALLEL_FROM = 8  # students; below this, starting worker processes costs more than it saves


def _pages(
    work: list[tuple[str, list[GradeRow]]], assignment: Assignment, workers: int
) -> list[str]:
    """Every student's feedback page. Drawing the PNGs is CPU work that holds the GIL, so a big
    class is drawn in ``workers`` processes (spawned: safe from a notebook's threads)."""
    if workers < 2 or len(work) < PARALLEL_FROM:
        return [feedback_page(student, own, assignment) for student, own in work]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(feedback_page, student, own, assignment) for student, own in work]
        return [f.result() for f in futures]


def write_outputs(
    rows: list[GradeRow], assignment: Assignment, out_dir: str | Path, *, workers: int = 1
) -> list[Path]:
    """grades.csv, grades.json, summary.html and feedback/<student>.html (drawn in ``workers``
    processes for a big class); returns the paths."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    csv_path = out / "grades.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_FIELDS))
        writer.writeheader()
        writer.writerows(r.csv_row() for r in rows)
    json_path = out / "grades.json"
    json_path.write_text(
        dump_strict_json({"assignment": assignment.name, "rows": [_row_json(r) for r in rows]})
        + "\n",
        encoding="utf-8",
    )
    summary = out / "summary.html"
    summary.write_text(summary_page(rows, assignment), encoding="utf-8")
    written = [csv_path, json_path, summary]
    students: dict[str, list[GradeRow]] = {}
    for r in rows:
        if r.student != "?":
            students.setdefault(r.student, []).append(r)
    work = list(students.items())
    used: set[str] = set()
    for (student, _), html_page in zip(work, _pages(work, assignment, workers), strict=True):
        name = safe_name(student)
        if name in used:  # 'a b' and 'a_b' must not share a page
            name += "-" + hashlib.sha256(student.encode()).hexdigest()[:6]
        used.add(name)
        page = out / "feedback" / f"{name}.html"
        page.write_text(html_page, encoding="utf-8")
        written.append(page)
    return written
