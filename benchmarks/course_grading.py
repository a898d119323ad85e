"""Grading a class with ``whip course grade``, against the shell loop it replaces.

    .venv/bin/python benchmarks/course_grading.py [--students 40] [--workers 2]
        [--task task1 --task task2 --task task4] [--baseline-samples 3]

A synthetic class (per-student variants; half the submissions episode files, half
``<student>/<task>.py``; a mix of reference fixes, partial fixes, printed-metric cheats and
syntax errors) is graded end to end: sandbox start-up, regrading, grades.csv, feedback pages
with their PNGs and the summary. The baseline is what instructors did before: one
``whip grade TASK FILE`` process per submission, timed on a few files and scaled to the class.
Target: <= 3 s per submission amortised (40 x 3 on 2 cores within 6 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0


def build_class(root: Path, assignment, students: int) -> tuple[Path, dict[str, int]]:
    from whipstudio_nb.episode_file import EpisodeRecord, TrailEntry, code_digest
    from whipstudio_nb.tasks import load_task

    subs = root / "submitted"
    kinds: dict[str, int] = {}
    for i in range(students):
        student = f"student{i:02d}"
        for j, task_id in enumerate(assignment.tasks):
            task = load_task(task_id, seed=assignment.seed_for(task_id, student))
            kind = ("fix", "fix", "partial", "fix", "cheat", "fix", "partial", "syntax")[
                (i + j) % 8
            ]
            kinds[kind] = kinds.get(kind, 0) + 1
            code = {
                "fix": task.solution_code,
                "partial": task.partial_code or task.buggy_code,
                "cheat": task.buggy_code + 'print("VAL_ACC:0.99")\n',
                "syntax": task.solution_code.replace("(", "", 1),
            }[kind]
            folder = subs / student
            folder.mkdir(parents=True, exist_ok=True)
            if (i + j) % 2:
                (folder / f"{task_id}.py").write_text(code)
                continue
            EpisodeRecord(
                student_id=student,
                assignment=assignment.name,
                task_id=task_id,
                seed=assignment.seed_for(task_id, student),
                turns=1,
                submissions=1,
                final_code=code,
                working_code=code,
                trail=[TrailEntry(turn=1, action_type="submit_fix", code_sha256=code_digest(code))],
            ).write(folder / f"{task_id}.episode.json")
    return subs, kinds


def baseline(subs: Path, samples: int) -> float:
    """Median seconds of one `whip grade TASK FILE` process (the old shell loop)."""
    whip = Path(sys.executable).parent / "whip"
    files = sorted(subs.glob("*/*.py"))[:samples]
    times = []
    for f in files:
        t0 = time.perf_counter()
        subprocess.run([str(whip), "grade", f.stem, str(f)], capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) if times else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--task", action="append", help="task ids (default: task1 task2 task4)")
    ap.add_argument("--baseline-samples", type=int, default=3)
    args = ap.parse_args()

    from whipstudio_nb.course import grade_submissions, load_assignment, write_outputs

    tasks = args.task or ["task1", "task2", "task4"]
    with tempfile.TemporaryDirectory(prefix="whip-bench-course-") as d:
        root = Path(d)
        (root / "assignment.toml").write_text(
            f'name = "Benchmark"\ntasks = {tasks!r}\nseed_policy = "per_student"\n'.replace(
                "'", '"'
            )
        )
        assignment = load_assignment(root / "assignment.toml")
        subs, kinds = build_class(root, assignment, args.students)
        n = args.students * len(tasks)
        mix = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
        print(
            f"class: {args.students} students x {len(tasks)} tasks = {n} submissions ({mix})",
            file=sys.stderr,
        )
        t0 = time.perf_counter()
        rows = grade_submissions(subs, assignment, workers=args.workers)
        t_grade = time.perf_counter() - t0
        t1 = time.perf_counter()
        write_outputs(rows, assignment, root / "grades", workers=args.workers)
        t_out = time.perf_counter() - t1
        total = time.perf_counter() - t0
        base = baseline(subs, args.baseline_samples)

    graded = sum(r.graded for r in rows)
    per_grade = statistics.median([r.seconds for r in rows if r.graded] or [0.0])
    amortised = total / n
    print(f"{'measure':<44} {'value':>10}")
    for name, value in [
        ("submissions (graded)", f"{n} ({graded})"),
        ("workers (parallel sandboxes)", str(args.workers)),
        ("regrading, incl. sandbox start-up (s)", f"{t_grade:.1f}"),
        ("gradebook + feedback pages + summary (s)", f"{t_out:.1f}"),
        ("total wall time (s)", f"{total:.1f}"),
        ("median time of one grade in a worker (s)", f"{per_grade:.2f}"),
        ("amortised per submission (s)", f"{amortised:.2f}"),
        ("target per submission (s)", f"{TARGET_S:.2f}"),
        ("baseline: one `whip grade` process (s)", f"{base:.2f}"),
        ("baseline for the class, scaled (s)", f"{base * n:.0f}"),
        ("speed-up over the baseline", f"{base / amortised:.1f}x"),
    ]:
        print(f"{name:<44} {value:>10}")
    verdict = "met" if amortised <= TARGET_S else "MISSED"
    print(f"amortised / target = {amortised / TARGET_S:.2f} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
