"""Calibration of every task pack, measured on real kernels: the grader separates buggy, partial
and fixed code, gives cheats nothing, and gives the same code the same score."""

from __future__ import annotations

import pytest

from whipstudio_nb import list_tasks, load_task
from whipstudio_nb.grading import grade_code
from whipstudio_nb.grading.calibration import cheat_codes
from whipstudio_nb.tasks import render_variant

TASK_IDS = [t.id for t in list_tasks()]
SEED_TASKS = {
    "task1": ("Broken Training Loop", "easy"),
    "task2": ("Silent NaN Loss", "medium"),
    "task3": ("OOM + Data Leakage", "hard"),
    "task4": ("Wrong Loss Function", "medium"),
    "task5": ("Frozen Backbone", "medium"),
    "task6": ("Input-Output mismatch", "hard"),
}
CATEGORIES = {"model", "tensors_and_inputs", "training/optimizer", "training/loss",
              "training/hyperparameters", "training/data", "api"}  # fmt: skip


def test_seed_tasks_match_the_reference():
    infos = {t.id: t for t in list_tasks()}
    for task_id, (name, difficulty) in SEED_TASKS.items():
        if task_id in infos:
            assert (infos[task_id].name, infos[task_id].difficulty) == (name, difficulty)


def test_every_task_has_a_known_category():
    for info in list_tasks():
        assert info.category in CATEGORIES, (info.id, info.category)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_calibration(task_id, sandbox):
    task = load_task(task_id)
    assert task.partial_code is not None, "every pack ships a partial fix"

    def score(code: str) -> float:
        return grade_code(task, code, sandbox).score

    buggy, solution, partial = score(task.buggy_code), score(task.solution_code), score(task.partial_code)
    problems = []
    if buggy > 0.25:
        problems.append(f"buggy scores {buggy}")
    if solution < 0.9:
        problems.append(f"solution scores {solution}")
    if not buggy < partial < solution:
        problems.append(f"partial {partial} not between buggy {buggy} and solution {solution}")
    for name, code in cheat_codes(task).items():
        s = score(code)
        if s > 0.05:
            problems.append(f"cheat '{name}' scores {s}")
    again = score(task.solution_code)
    if abs(again - solution) > 0.01:
        problems.append(f"solution scored {solution} then {again}")
    assert problems == []


@pytest.mark.parametrize("task_id", [t for t in TASK_IDS if load_task(t).variants])
def test_variants(task_id, sandbox):
    base = load_task(task_id)
    variant = render_variant(base, 7)
    again = load_task(task_id, seed=7)
    assert again.buggy_code == variant.buggy_code and again.params == variant.params  # same seed
    # the code is rendered from the pack's templates with the variant's own values
    assert "{{" not in variant.buggy_code and "{{" not in variant.solution_code
    others = {render_variant(base, s).buggy_code for s in range(12)}
    if any(len(v) > 1 for v in base.variants.values()):
        assert len(others) > 1, "different seeds must give different code"
    assert grade_code(variant, variant.solution_code, sandbox).score >= 0.9
    assert grade_code(variant, variant.buggy_code, sandbox).score <= 0.25
