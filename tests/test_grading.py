"""Grading task1 on real kernels: the grader measures; printed numbers and cheats count for nothing."""

from __future__ import annotations

import pytest

from whipstudio_nb import UnknownTaskError, grade
from whipstudio_nb.grading import grade_code

PRINT_ONLY = 'print("LOSSES:[0.9, 0.5, 0.1]")\nprint("VAL_ACC:0.99")\n'


def partial_order_fix(buggy: str) -> str:
    """Only the step/backward order fixed; lr=10 left in."""
    return buggy.replace("    optimizer.step()\n    logits", "    logits").replace(
        "    loss.backward()\n", "    loss.backward()\n    optimizer.step()\n"
    )


@pytest.fixture(scope="module")
def scores(sandbox, task1):
    cases = {
        "buggy": task1.buggy_code,
        "solution": task1.solution_code,
        "partial": partial_order_fix(task1.buggy_code),
        "print_only": PRINT_ONLY,
        "buggy_plus_prints": task1.buggy_code + 'print("VAL_ACC:0.99")\n',
        "exit_early": 'print("VAL_ACC:0.99")\nimport os\nos._exit(0)\n',
        "monkeypatch": "import torch\ntorch.Tensor.backward = lambda self, *a, **k: None\n"
        + task1.solution_code,
        "patch_functional": "import torch\nimport torch.nn.functional as F\nF.cross_entropy = lambda *a, **k: torch.tensor(0.0)\n"
        + task1.solution_code,
        "crash_after_training": task1.solution_code + "\nraise RuntimeError('late crash')\n",
        "no_model": task1.solution_code.replace("model", "net"),
        "policy": "import requests\n" + task1.solution_code,
    }
    return {name: grade_code(task1, code, sandbox) for name, code in cases.items()}


def test_buggy_scores_low(scores):
    assert scores["buggy"].score <= 0.25


def test_reference_fix_scores_high(scores):
    res = scores["solution"]
    assert res.score >= 0.9
    d = res.details
    assert d["val_acc"] >= 0.93 and d["loss_steps"] == 100 and d["optimizer_steps"] == 100
    assert set(d["components"]) == {"heldout_metric", "heldout_loss", "loss_decrease", "trained"}
    assert len(d["losses"]) == 100 and d["final_loss"] == pytest.approx(d["losses"][-1], abs=1e-5)


def test_partial_fix_is_between(scores):
    assert scores["buggy"].score < scores["partial"].score < scores["solution"].score
    assert 0.25 < scores["partial"].score < 0.9


@pytest.mark.parametrize(
    "name", ["print_only", "buggy_plus_prints", "exit_early", "monkeypatch", "patch_functional"]
)
def test_cheats_score_near_zero(scores, name):
    assert scores[name].score <= 0.05, scores[name].details


def test_reasons_are_explained(scores):
    assert "nn.Module named 'model'" in scores["print_only"].details["model_error"]
    assert "ended the sandbox process" in scores["exit_early"].details["error"]
    assert "torch.Tensor.backward" in scores["monkeypatch"].details["error"]
    assert "torch.nn.functional.cross_entropy" in scores["patch_functional"].details["error"]
    assert scores["policy"].details["error"].startswith("Security violation: import 'requests'")
    assert "nn.Module named 'model'" in scores["no_model"].details["model_error"]


def test_crash_is_capped(scores):
    res = scores["crash_after_training"]
    assert res.details["script_error"] == "RuntimeError: late crash"
    assert res.score == 0.5


def test_printed_output_is_shown_not_scored(scores):
    assert "VAL_ACC:0.99" in scores["print_only"].output
    assert scores["print_only"].score == 0.0


def test_same_code_same_score(sandbox, task1, scores):
    again = grade_code(task1, task1.solution_code, sandbox)
    assert again.score == pytest.approx(scores["solution"].score, abs=0.01)
    assert again.details["val_acc"] == scores["solution"].details["val_acc"]
    again_partial = grade_code(task1, partial_order_fix(task1.buggy_code), sandbox)
    assert again_partial.score == pytest.approx(scores["partial"].score, abs=0.01)


def test_timeout_gives_zero_with_reason(sandbox, task1):
    short = task1.model_copy(update={"time_budget_s": 1.5})
    res = grade_code(short, "while True:\n    pass\n", sandbox)
    assert res.score == 0.0 and "time budget of 1.5 s" in res.details["error"]


def test_grade_function(task1):
    res = grade("task1", task1.solution_code)
    assert res.score >= 0.9
    with pytest.raises(UnknownTaskError, match="Unknown task_id: nope"):
        grade("nope", "print(1)")
