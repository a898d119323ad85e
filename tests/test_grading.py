"""Grading task1 on real kernels: the grader measures; printed numbers and cheats count for nothing."""

from __future__ import annotations

import time

import pytest

from whipstudio_nb import UnknownTaskError, grade
from whipstudio_nb.grading import grade_code
from whipstudio_nb.grading.grader import EVAL_MARGIN_S, EVAL_TIMEOUT_S, RUN_MARGIN_S

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
    assert set(d["components"]) == {"heldout_metric", "loss_decrease", "trained"}
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


# ---------------------------------------------------------------- the record cannot be forged

# What a grade may take beyond its budget: the harness's own margins, plus room for a loaded
# machine to hand out a kernel (a bound, not a speed target).
GRADE_MARGIN_S = RUN_MARGIN_S + EVAL_TIMEOUT_S + EVAL_MARGIN_S + 15.0

FORGED_RESULT = """
import sys
_kl = sys.modules["whipstudio_nb.sandbox.kernel_lib"]
record = {"exit_code": 0, "losses": [1.0, 0.5, 0.1], "optimizer_steps": 3, "model_found": True,
          "param_changes": {"weight": 1.0, "bias": 1.0}, "tampered": []}
for nonce in ("", "0" * 32, None):
    _kl.emit({"status": "ran", "nonce": nonce, "record": record, "outputs": None})
"""


def test_forged_emit_is_named(sandbox, task1):
    from whipstudio_nb.grading.cheats import cheat_codes

    res = grade_code(task1, cheat_codes(task1)["forged emit and record"], sandbox)
    assert res.score == 0.0
    assert "whipstudio_nb.sandbox.kernel_lib.emit" in res.details["error"]
    assert (
        "whipstudio_nb.sandbox.kernel_lib.TrainingRecorder.param_changes" in res.details["tampered"]
    )


def test_patching_the_recorder_alone_is_named(sandbox, task1):
    code = task1.buggy_code + (
        "import sys\n"
        "_kl = sys.modules['whipstudio_nb.sandbox.kernel_lib']\n"
        "_kl.TrainingRecorder.param_changes = lambda self, m: {'weight': 1.0, 'bias': 1.0}\n"
    )
    res = grade_code(task1, code, sandbox)
    assert res.score == 0.0
    assert "TrainingRecorder.param_changes" in res.details["error"]


def test_results_published_by_the_script_are_not_trusted(sandbox, task1):
    """Calling the real emit (no patching) to publish a fake record: only the result carrying
    the host's nonce counts, and the script never sees it."""
    res = grade_code(task1, task1.buggy_code + FORGED_RESULT, sandbox)
    assert res.score <= 0.05 and res.details["optimizer_steps"] == 100


def test_nothing_the_script_started_survives_into_evaluation(sandbox, task1):
    """A thread and a double-forked, setsid child keep training after the script returns; the
    evaluated model waits for them. Evaluation happens in a process where they do not exist."""
    code = (
        task1.solution_code.replace("for epoch in range(100)", "for epoch in range(3)")
        + """
import os, sys, time
model.share_memory()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(400):
            optimizer.zero_grad(); criterion(model(X), y).backward(); optimizer.step()
        time.sleep(60)
    os._exit(0)
_done = sys.modules["threading"].Event()
def _more():
    time.sleep(0.3)
    _done.set()
sys.modules["threading"].Thread(target=_more, daemon=True).start()
_forward = model.forward
def _waiting_forward(x):
    assert _done.wait(30), "the background thread is gone"
    return _forward(x)
model.forward = _waiting_forward
"""
    )
    code = code.replace("import os, sys, time", "import os\nimport sys\ntime = sys.modules['time']")
    t0 = time.monotonic()
    res = grade_code(task1, code, sandbox)
    elapsed = time.monotonic() - t0
    assert res.score <= 0.05, res.details
    assert "held-out inputs" in res.details.get("model_error", ""), res.details
    assert res.details["stopped_processes"] >= 1
    assert elapsed < task1.time_budget_s + GRADE_MARGIN_S


def test_a_grade_never_outlasts_its_budget(sandbox, task1):
    short = task1.model_copy(update={"time_budget_s": 2.0})
    code = "import sys\nsys.modules['threading'].Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\nwhile True:\n    pass\n"
    t0 = time.monotonic()
    res = grade_code(short, code, sandbox)
    assert res.score == 0.0 and "time budget of 2 s" in res.details["error"]
    assert time.monotonic() - t0 < 2.0 + GRADE_MARGIN_S


def test_data_comes_from_the_environment(sandbox, task1):
    """The same code on two hidden worlds sees different data; a fixed seed repeats exactly."""
    probe = task1.solution_code + "\nprint('FIRST_ROW', X[0].tolist(), y[:8].tolist())\n"
    a = grade_code(task1, probe, sandbox, data_seed=1)
    b = grade_code(task1, probe, sandbox, data_seed=2)
    a2 = grade_code(task1, probe, sandbox, data_seed=1)
    row = [line for line in a.output.splitlines() if line.startswith("FIRST_ROW")]
    assert row and row != [ln for ln in b.output.splitlines() if ln.startswith("FIRST_ROW")]
    assert row == [ln for ln in a2.output.splitlines() if ln.startswith("FIRST_ROW")]
    assert abs(a.score - a2.score) <= 0.01 and min(a.score, b.score) >= 0.9


def test_loader_outside_the_environment_uses_the_demo_draw():
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from whip_data import load_training_data\n"
            "d = load_training_data('task1')\nprint(sorted(d), d['X'].shape)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "['X', 'y'] (400, 8)" in out.stdout
    assert "public demo draw" in out.stderr


def test_the_rerun_world_has_labels_that_say_nothing() -> None:
    """The re-run's training data: inputs as drawn, every label array's rows shuffled (its
    values kept), so a side estimator fitted there answers nothing, even where two hidden worlds
    of a pack happen to be alike."""
    import numpy as np

    from whipstudio_nb.grading.data import scrambled

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 3)).astype(np.float32)
    arrays = {"X": x, "y": (x[:, 0] > 0).astype(np.int64), "y_val": x[:50, 1].copy(), "w": x[:, 2]}
    out = scrambled(arrays, seed=7)
    assert out["X"] is arrays["X"] and out["w"] is arrays["w"]
    for key in ("y", "y_val"):
        assert sorted(out[key].tolist()) == sorted(arrays[key].tolist())
        assert not np.array_equal(out[key], arrays[key])
    agree = float(np.mean(out["y"] == (x[:, 0] > 0)))
    assert 0.4 < agree < 0.6  # the rule that made the labels predicts them no better than chance
    assert np.array_equal(scrambled(arrays, seed=7)["y"], out["y"])  # a fixed seed repeats


# The recorder's channel rewritten through its closure (the function object stays the same):
# the digests taken before each optimizer step are dropped, so a fit written by hand between
# steps would pass for training.
CLOSURE_FILTER = """
import sys
for _h in list(sys.modules["torch"].nn.modules.module._global_forward_pre_hooks.values()):
    _rec = getattr(_h, "__self__", None)
    if _rec is not None and callable(getattr(_rec, "_send", None)):
        for _cell in _rec._send.__closure__ or ():
            if callable(_cell.cell_contents):
                _real = _cell.cell_contents
                _cell.cell_contents = lambda fd, msg, _r=_real: (
                    None if "pre" in msg.get("ev", {}) else _r(fd, msg)
                )
"""

# A builtin shadowed in a harness module: a new global ``sorted`` there (the guard compared only
# the names a module had).
SHADOWED_BUILTIN = """
import sys
sys.modules["whipstudio_nb.grading.recorder"].sorted = lambda xs: []
"""


@pytest.mark.parametrize("attack", [CLOSURE_FILTER, SHADOWED_BUILTIN], ids=["closure", "shadow"])
def test_harness_state_rewritten_in_place_is_tampering(sandbox, task1, attack):
    res = grade_code(task1, attack + task1.solution_code, sandbox)
    assert res.score == 0.0 and res.details.get("tampered"), res.details
