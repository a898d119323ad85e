"""``whip course release`` and ``whip course grade``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_course_parser"]


def cmd_release(args: argparse.Namespace) -> int:
    from .assignment import load_assignment
    from .release import release

    assignment = load_assignment(args.assignment)
    written = release(assignment, args.out, combined=args.combined, force=args.force)
    print(f"Released '{assignment.name}' ({', '.join(assignment.tasks)}) to {args.out}:")
    for path in written:
        print(f"  {path}")
    print("Hand the directory out as it is: the notebooks pin the assignment.toml next to them.")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .assignment import load_assignment
    from .collect import read_roster
    from .feedback import summary_text, write_outputs
    from .grade import GradeRow, grade_submissions
    from .progress import ProgressBar

    assignment = load_assignment(args.assignment)
    if not Path(args.submissions).is_dir():
        print(f"whip: error: no such directory: {args.submissions}", file=sys.stderr)
        return 2
    roster = read_roster(args.roster) if args.roster else None
    bar = None if args.no_progress else ProgressBar(f"grading {assignment.name}")

    def on_row(row: GradeRow, done: int, total: int) -> None:
        if bar is not None:
            bar.update(
                done,
                total,
                f"{row.student}/{row.task} " + (f"{row.score:.2f}" if row.graded else "not graded"),
            )

    rows = grade_submissions(
        args.submissions, assignment, workers=args.workers, roster=roster, on_row=on_row
    )
    written = write_outputs(rows, assignment, args.out, workers=args.workers)
    if bar is not None:
        print(bar.finish(sum(r.graded for r in rows)), file=sys.stderr)
    print(summary_text(rows, assignment))
    print(
        f"\nWrote {written[0]}, {written[2]} and {len(written) - 3} feedback pages in "
        f"{Path(args.out) / 'feedback'}"
    )
    return 0


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_course_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``whip course {release,grade}`` to the ``whip`` command's subparsers."""
    course = sub.add_parser("course", help="run an assignment: release notebooks, grade a class")
    csub = course.add_subparsers(dest="course_command", required=True, metavar="STEP")

    s = csub.add_parser("release", help="write the student notebooks of an assignment")
    s.add_argument("assignment", help="the assignment.toml")
    s.add_argument("out", help="directory to write the student version into")
    s.add_argument("--combined", action="store_true", help="one notebook for all the tasks")
    s.add_argument("--force", action="store_true", help="overwrite notebooks already there")
    s.set_defaults(func=cmd_release)

    s = csub.add_parser(
        "grade", help="regrade every collected submission from scratch; gradebook and feedback"
    )
    s.add_argument("submissions", help="SUBMISSIONS/<student>/... (episode .json or <task>.py)")
    s.add_argument("--assignment", required=True, help="the assignment.toml")
    s.add_argument("--out", required=True, help="directory for grades.csv, feedback/, summary")
    s.add_argument("--workers", type=_workers, default=2, help="parallel sandboxes (default 2)")
    s.add_argument("--roster", help="student ids, one per line: missing students get rows too")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_grade)
