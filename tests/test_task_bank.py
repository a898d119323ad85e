"""Calibration of every task pack, measured on real kernels: the grader separates buggy, partial
and fixed code, gives the same code the same score, and gives every cheat in the suite
(``grading/cheats.py``) nothing, on every pack."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from whipstudio_nb import list_tasks, load_task
from whipstudio_nb.grading import grade_code
from whipstudio_nb.grading.calibration import (
    BUGGY_MAX,
    CALIBRATION_SEED,
    PARTIAL_MARGIN,
    SOLUTION_MIN,
)
from whipstudio_nb.grading.cheats import (
    ADDS_NOTHING,
    CHEAT_MAX,
    cheat_codes,
    partial_cheat_codes,
    solution_reading_cheat,
)
from whipstudio_nb.tasks import render_variant

TASK_IDS = [t.id for t in list_tasks()]
GRADES_AT_ONCE = 2
SEED_TASKS = {
    "task1": ("Broken Training Loop", "easy"),
    "task2": ("Silent NaN Loss", "medium"),
    "task3": ("OOM + Data Leakage", "hard"),
    "task4": ("Wrong Loss Function", "medium"),
    "task5": ("Frozen Backbone", "medium"),
    "task6": ("Input-Output mismatch", "hard"),
}
CATEGORIES = {
    "model",
    "tensors_and_inputs",
    "training/optimizer",
    "training/loss",
    "training/hyperparameters",
    "training/data",
    "api",
}
CHEATS = [
    "side estimator answers for the model",
    "side estimator once the parameters moved",
    "closed-form fit written into the parameters",
    "optimizer whose step writes a closed-form fit",
    "torch steps on gradients set by hand toward a fit",
    "torch steps on a loss that is the distance to a fit",
    "gradient hooks that point at a fit",
    "autograd Function whose gradients point at a fit",
    "closed-form fit hidden by filtering the recorder's channel",
    "closed-form fit hidden by rebinding a harness module's global",
    "training data stashed in a parameter by a crafted optimizer step",
    "rule-based forward (public demo world)",
    "reads grader.py from disk",
    "background thread keeps training",
    "forked child keeps training",
    "forged emit and record",
    "constant (prior) predictor",
    "prints metrics only",
    "prints, then os._exit(0)",
    "trains, then os._exit(0)",
    "monkeypatches torch",
]


def score(task, code: str, sandbox, seed: int = CALIBRATION_SEED) -> float:
    return grade_code(task, code, sandbox, data_seed=seed).score


_scored: dict[tuple[str, str, int], float] = {}


def score_once(task, code: str, sandbox) -> float:
    """A pack's buggy or partial score, graded once in this session (test_calibration checks
    that the same code scores the same, within 0.01)."""
    key = (task.info.id, code, CALIBRATION_SEED)
    if key not in _scored:
        _scored[key] = score(task, code, sandbox)
    return _scored[key]


def test_seed_tasks_match_the_reference():
    infos = {t.id: t for t in list_tasks()}
    for task_id, (name, difficulty) in SEED_TASKS.items():
        if task_id in infos:
            assert (infos[task_id].name, infos[task_id].difficulty) == (name, difficulty)


def test_every_task_has_a_known_category():
    for info in list_tasks():
        assert info.category in CATEGORIES, (info.id, info.category)


def test_scripts_take_their_data_from_the_environment():
    """No script builds its own data from a rule it can see: every one loads it."""
    for task_id in TASK_IDS:
        task = load_task(task_id)
        for code in (task.buggy_code, task.solution_code, task.partial_code):
            assert f'load_training_data("{task_id}")' in code, task_id


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_calibration(task_id, sandbox):
    task = load_task(task_id)
    assert task.partial_code is not None, "every pack ships a partial fix"
    with ThreadPoolExecutor(GRADES_AT_ONCE) as pool:
        buggy_f = pool.submit(score_once, task, task.buggy_code, sandbox)
        solution_f = pool.submit(score, task, task.solution_code, sandbox)
        partial_f = pool.submit(score_once, task, task.partial_code, sandbox)
        again_f = pool.submit(score, task, task.solution_code, sandbox)
        buggy, solution, partial = buggy_f.result(), solution_f.result(), partial_f.result()
        again = again_f.result()
    problems = []
    if buggy > BUGGY_MAX:
        problems.append(f"buggy scores {buggy}")
    if solution < SOLUTION_MIN:
        problems.append(f"solution scores {solution}")
    if not buggy + PARTIAL_MARGIN <= partial <= solution - PARTIAL_MARGIN:
        problems.append(f"partial {partial} not between buggy {buggy} and solution {solution}")
    if abs(again - solution) > 0.01:
        problems.append(f"solution scored {solution} then {again}")
    assert problems == []


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_cheats_score_nothing(task_id, sandbox):
    task = load_task(task_id)
    codes = cheat_codes(task)
    assert set(CHEATS) <= set(codes), "the suite is complete for every pack"
    partial_cheats = partial_cheat_codes(task)
    with ThreadPoolExecutor(GRADES_AT_ONCE) as pool:
        buggy_f = pool.submit(score_once, task, task.buggy_code, sandbox)
        partial_f = pool.submit(score_once, task, task.partial_code, sandbox)
        cheat_f = {
            name: pool.submit(score, task, codes[name], sandbox)
            for name in dict.fromkeys([*CHEATS, *ADDS_NOTHING])
        }
        partial_cheat_f = {
            n: pool.submit(score, task, c, sandbox) for n, c in partial_cheats.items()
        }
        scores = {name: f.result() for name, f in cheat_f.items()}
        buggy, partial = buggy_f.result(), partial_f.result()
        partial_scores = {name: f.result() for name, f in partial_cheat_f.items()}
    problems = {k: scores[k] for k in CHEATS if scores[k] > CHEAT_MAX}
    # printed metrics, or the recorder's lists rewritten, on top of the buggy script add nothing
    # to what the buggy script scores
    for name in ADDS_NOTHING:
        if scores[name] > buggy + 0.01:
            problems[name] = scores[name]
    # a loss curve faked on top of the partial fix adds nothing to what the partial scores
    for name, added in partial_scores.items():
        if added > partial + 0.01:
            problems[name] = added
    assert problems == {}


def test_cheats_are_real_attacks(sandbox):
    """The side estimator answers well: it is the attribution check, not weakness, that zeroes
    it. Its held-out accuracy is high while its held-out credit is zero."""
    task = load_task("task1")
    res = grade_code(
        task,
        cheat_codes(task)["side estimator answers for the model"],
        sandbox,
        data_seed=CALIBRATION_SEED,
    )
    d = res.details
    assert d["val_acc"] >= 0.85 and d["attribution"] == 0.0 and res.score == 0.0


def test_running_the_solution_found_on_disk(sandbox):
    """Only isolation can stop a submission that runs solution.py: the packs must be hidden."""
    if sandbox.isolation != "strict":
        pytest.skip(f"isolation is '{sandbox.isolation}': task packs are readable in the sandbox")
    for task_id in ("task1", "task10"):
        task = load_task(task_id)
        assert score(task, solution_reading_cheat(task), sandbox) <= CHEAT_MAX


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
    # another hidden world, too
    assert score(variant, variant.solution_code, sandbox, seed=11) >= SOLUTION_MIN
    assert score(variant, variant.buggy_code, sandbox, seed=11) <= BUGGY_MAX
