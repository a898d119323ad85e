"""Per-task scores and grading time, with a baseline measured in the same run.

    .venv/bin/python benchmarks/grading_time.py [--task ID ...] [--repeat 3]

For every task: the buggy, partial and reference-fix scores, the median time to grade the fix
(kernel from the warm pool, harness, held-out evaluation), and as a baseline the time to simply
run the same fix with `python` in a new process (on the pack's public demo data, which the loader
falls back to outside the environment). The target is <= 5 s per grading.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def plain_run_s(code: str) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fix.py"
        path.write_text(code)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(path)],
            cwd=d,
            capture_output=True,
            check=False,
            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", help="task id (default: all)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from whipstudio_nb import list_tasks, load_task
    from whipstudio_nb.env import make_sandbox
    from whipstudio_nb.grading import grade_code as _grade
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    def grade_code(task, code, sandbox):  # the calibration's hidden world: repeatable numbers
        return _grade(task, code, sandbox, data_seed=CALIBRATION_SEED)

    ids = args.task or [t.id for t in list_tasks()]
    sandbox = make_sandbox(2)  # as the product builds it: the harness imported in the server
    rows = []
    try:
        for task_id in ids:
            task = load_task(task_id)
            buggy = grade_code(task, task.buggy_code, sandbox).score
            partial = (
                grade_code(task, task.partial_code, sandbox).score if task.partial_code else None
            )
            times, solution = [], 0.0
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                solution = grade_code(task, task.solution_code, sandbox).score
                times.append(time.perf_counter() - t0)
            plain = plain_run_s(task.solution_code)
            rows.append(
                (
                    task_id,
                    task.info.category,
                    buggy,
                    partial,
                    solution,
                    statistics.median(times),
                    plain,
                )
            )
            print(f"  {task_id} done", file=sys.stderr)
    finally:
        sandbox.close()

    print(
        f"{'task':<8} {'category':<25} {'buggy':>6} {'partial':>7} {'fixed':>6} "
        f"{'grade s':>8} {'plain s':>8} {'ratio':>6}"
    )
    for task_id, cat, buggy, partial, solution, t, plain in rows:
        p = f"{partial:.3f}" if partial is not None else "-"
        print(
            f"{task_id:<8} {cat:<25} {buggy:>6.3f} {p:>7} {solution:>6.3f} {t:>8.2f} "
            f"{plain:>8.2f} {t / plain:>5.2f}x"
        )
    worst = max(r[5] for r in rows)
    print(f"slowest grading: {worst:.2f} s (target <= 5 s); ratio = grading / plain python run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
