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


def test_trained_weights_go_into_the_reference_model_only_where_they_fit() -> None:
    """The held-out check loads the trained weights into the task's reference model: by name,
    else by order and shape (layers renumbered, e.g. a dropout removed); a parameter the
    reference model has no place for (training data stashed in an extra parameter) does not
    fit, and the error names it."""
    import torch
    from torch import nn

    from whipstudio_nb.grading import wire
    from whipstudio_nb.grading.harness import _carried_state
    from whipstudio_nb.grading.sandboxed import _load_state, _state

    def reference() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.2), nn.Linear(8, 2))

    def trained(model: nn.Module) -> dict:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.5)
        model(torch.randn(16, 4))  # batch-norm statistics move in train mode
        names = [n for n, _ in model.named_parameters()]
        return _carried_state(_state(model), {n: "trained" for n in names})

    same = reference()
    ref = reference()
    _load_state(ref, trained(same))
    for (_, a), (_, b) in zip(same.state_dict().items(), ref.state_dict().items(), strict=True):
        if a.dtype.is_floating_point:
            assert torch.equal(a, b)

    renumbered = nn.Sequential(*[m for m in reference() if not isinstance(m, nn.Dropout)])
    ref = reference()
    _load_state(ref, trained(renumbered))
    assert torch.equal(ref[3].weight, renumbered[2].weight)
    assert torch.equal(ref[1].running_mean, renumbered[1].running_mean)

    stash = reference()
    stash.stash = nn.Parameter(torch.zeros(100, 6))
    state = trained(stash)
    assert "stash" in state["params"]
    wire.decode_array(state["params"]["stash"])  # it travels like any other
    with pytest.raises(ValueError, match=r"'stash' of shape \(100, 6\) has no counterpart"):
        _load_state(reference(), state)

    untouched = reference()
    before = {n: p.detach().clone() for n, p in untouched.named_parameters()}
    partly = _carried_state(_state(stash), {"0.weight": "trained", "3.bias": "none"})
    with pytest.raises(ValueError):  # extra parameters make the order useless, names still rule
        partly["params"]["extra"] = partly["params"]["0.weight"]
        _load_state(untouched, partly)
    del partly["params"]["extra"]
    _load_state(untouched, partly)
    assert not torch.equal(untouched[0].weight, before["0.weight"])
    assert torch.equal(
        untouched[3].bias, before["3.bias"]
    )  # not trained: the reference keeps its own


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


# A harness function's body swapped for a new code object that lands where the old one lived:
# freed objects' memory is reused at once, so a guard that kept only ids saw nothing.
SAME_ADDRESS_SWAP = """
import sys
_kl = sys.modules["whipstudio_nb.sandbox.kernel_lib"]
_f = _kl.json_safe
_old = id(_f.__code__)
for _ in range(2000):
    _f.__code__ = _f.__code__.replace(co_name=_f.__code__.co_name)
    if id(_f.__code__) == _old:
        break
print("SAME ADDRESS", id(_f.__code__) == _old)
"""


def test_a_swap_that_reuses_the_old_objects_address_is_tampering(sandbox, task1):
    res = grade_code(task1, SAME_ADDRESS_SWAP + task1.solution_code, sandbox)
    assert res.score == 0.0 and res.details.get("tampered"), (res.details, res.output[:200])


def _train_on_val(partial: str, marker: str, line: str) -> str:
    assert marker in partial
    return partial.replace(marker, marker + "\n" + line)


# Every forward pass of the training loop made with torch's global module hooks taken out (the
# recorder saw the inputs there), after one ordinary call that registers the parameters.
HIDDEN_FROM_HOOKS = """
import sys
_mm = sys.modules["torch"].nn.modules.module


def _unhooked(x):
    saved = dict(_mm._global_forward_pre_hooks)
    _mm._global_forward_pre_hooks.clear()
    try:
        return model(x)
    finally:
        _mm._global_forward_pre_hooks.update(saved)
"""


# Gradients taken with torch.autograd.grad and put into .grad by hand (the recorder looked only
# at backward()), and an empty backward() per step so that memory is still measured.
GRADIENTS_WITHOUT_BACKWARD = """\
        for _p, _g in zip(model.parameters(), torch.autograd.grad(loss, list(model.parameters()))):
            _p.grad = _g
        torch.zeros(1, requires_grad=True).sum().backward()
"""


_CONCAT = "X_train = torch.cat([X_train, X_val])\ny_train = torch.cat([y_train, y_val])\n"
# Training rows through backward() as usual; a batch of validation rows per step through the C
# autograd engine, past every Python-level patch of the recorder (0.52 -> 1.00 before the second
# run with another validation split measured the weights).
ENGINE = """\
        loss.backward()
        _vi = torch.randint(0, len(X_val), (32,))
        _lv = criterion(model(X_val[_vi]), y_val[_vi])
        torch.autograd.Variable._execution_engine.run_backward(
            (_lv,), (torch.ones_like(_lv),), False, False, (), False, True
        )
"""


def test_validation_rows_trained_on_are_seen_whatever_the_name_holds_at_the_end(sandbox):
    """task3's partial fix trains on its validation rows (no_leakage 0). Rebinding ``X_val``
    after training, training on the true rows while ``X_val`` holds a copy moved by a little
    noise, hiding the forward passes from torch's module hooks, or taking gradients with
    ``torch.autograd.grad`` used to hide that (score 0.52 -> 1.00 each); the reference fix stays
    clean."""
    from whipstudio_nb import load_task
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    task = load_task("task3")
    split = 'y_val = torch.from_numpy(data["y_val"])'
    hidden = _train_on_val(task.partial_code, split, "_Xv = X_val\nX_val = X_val + 1e-3")
    unhooked = task.partial_code.replace("model(X_train", "_unhooked(X_train").replace(
        "history = []", HIDDEN_FROM_HOOKS + "\nmodel(X_train[:1])\nhistory = []"
    )
    cases = {
        "rebound after training": task.partial_code + "\nX_val = X_val[:0] + X_val.mean()\n",
        "noisy copy": hidden.replace("torch.cat([X_train, X_val])", "torch.cat([X_train, _Xv])"),
        "forward passes hidden from torch's module hooks": unhooked,
        "gradients from autograd.grad, not backward()": task.partial_code.replace(
            "        loss.backward()\n", GRADIENTS_WITHOUT_BACKWARD
        ),
        "validation batches through torch's autograd engine, called directly": (
            task.partial_code.replace(_CONCAT, "").replace("        loss.backward()\n", ENGINE)
        ),
    }
    for name, code in cases.items():
        r = grade_code(task, code, sandbox, data_seed=CALIBRATION_SEED)
        assert r.details["components"]["no_leakage"] == 0.0, (name, r.details.get("leakage"))
        assert r.score <= 0.6, (name, r.score)
    fix = grade_code(task, task.solution_code, sandbox, data_seed=CALIBRATION_SEED)
    assert fix.details["val_influence"] == 0.0, fix.details
    leak = fix.details["leakage"]
    assert fix.details["components"]["no_leakage"] == 1.0, leak
    assert leak["val_rows_in_training"] == 0 and leak["val_rows_nearly_in_training"] <= 3, leak


FORGED_MEMORY = """
import sys
for _h in list(sys.modules["torch"].nn.modules.module._global_forward_pre_hooks.values()):
    _rec = getattr(_h, "__self__", None)
    if _rec is not None and callable(getattr(_rec, "_send", None)):
        for _ in range(400):
            _rec._send({"loss": 0.01, "rss": 1.0})  # flat, tiny memory after many more steps
"""


def test_memory_is_read_from_outside_the_submission(sandbox):
    """task3's fix with its memory leak put back: made-up memory readings sent down the
    recorder's own channel used to hide the growth (0.52 -> 1.00). The kernel's main process
    now reads the submission's memory itself."""
    from whipstudio_nb import load_task
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    task = load_task("task3")
    leaky = task.solution_code.replace(
        "history.append(train_loss.item())", "history.append(train_loss)"
    ).replace("round(v, 4)", "round(v.item(), 4)")
    assert leaky != task.solution_code
    r = grade_code(task, leaky + FORGED_MEMORY, sandbox, data_seed=CALIBRATION_SEED)
    assert r.details["components"]["memory"] == 0.0, r.details.get("memory_growth_mb")
    assert r.details["memory_growth_mb"] > 30, r.details["memory_growth_mb"]
    assert r.score <= 0.6, r.score


FORKED_TRAINING = """
import os as _os

history = []
_r, _w = _os.pipe()
model(X_train[:1])
_pid = _os.fork()
if _pid == 0:  # the leaky training, in a child; its weights come back over a pipe
{loop}
    with _os.fdopen(_w, "wb") as _f:
        _f.write(b"".join(p.detach().numpy().tobytes() for p in model.state_dict().values()))
    _os._exit(0)
_os.close(_w)
with _os.fdopen(_r, "rb") as _f:
    _raw = _f.read()
_os.waitpid(_pid, 0)
with torch.no_grad():
    _o = 0
    for _p in model.state_dict().values():
        _n = _p.numel() * 4
        _p.copy_(torch.frombuffer(bytearray(_raw[_o : _o + _n]), dtype=torch.float32).view_as(_p))
        _o += _n
"""


def test_memory_counts_the_processes_the_submission_starts(sandbox):
    """task3's fix with its memory leak put back, the leaky training run in a child the script
    forks (which sends the weights back and exits): the submission's own memory stayed flat,
    so the grade was 1.00 instead of 0.52. The kernel's main process now samples, on its own
    clock, A's memory plus what every other process it started holds privately, and scores the
    peak."""
    import textwrap

    from whipstudio_nb import load_task
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    task = load_task("task3")
    head, rest = task.solution_code.split("history = []\n", 1)
    loop, tail = rest.split("\nwith torch.no_grad():\n", 1)
    leaky_loop = loop.replace("history.append(train_loss.item())", "history.append(train_loss)")
    assert leaky_loop != loop
    forked = FORKED_TRAINING.format(loop=textwrap.indent(leaky_loop.strip("\n"), "    "))
    attack = head + forked + "\nwith torch.no_grad():\n" + tail
    r = grade_code(task, attack, sandbox, data_seed=CALIBRATION_SEED)
    assert r.details["components"]["memory"] == 0.0, r.details.get("memory_growth_mb")
    assert r.score <= 0.6, r.score
    fix = grade_code(task, task.solution_code, sandbox, data_seed=CALIBRATION_SEED)
    assert fix.details["components"]["memory"] == 1.0, fix.details.get("memory_growth_mb")


HELD_BACK_LOSSES = """
import sys as _sys

for _h in list(_sys.modules["torch"].nn.modules.module._global_forward_pre_hooks.values()):
    _rec = getattr(_h, "__self__", None)
    if _rec is not None and callable(getattr(_rec, "_send", None)):
        break
_send, _held = _rec._send, []
_rec._send = lambda e: _held.append(e) if "loss" in e else _send(e)
history = []
{loop}
_rec._send = _send  # put back before the run ends, so nothing looks tampered with
for _e in _held:
    _send(_e)  # every loss event at once, after the leak
history = [h.item() for h in history]
"""


def test_memory_base_is_not_set_by_when_the_script_sends_its_losses(sandbox):
    """task3's leak kept in the submission's own process, its loss events held back until
    training is over: the base (A's memory at the 10 %-th loss event) then came after the leak,
    and the grade was 1.00. The base is now never above A's memory at its fork plus the setup
    a run needs (``memory_watch.SETUP_MB``)."""
    from whipstudio_nb import load_task
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    task = load_task("task3")
    head, rest = task.solution_code.split("history = []\n", 1)
    loop, tail = rest.split("\nwith torch.no_grad():\n", 1)
    leaky_loop = loop.replace("history.append(train_loss.item())", "history.append(train_loss)")
    assert leaky_loop != loop
    attack = head + HELD_BACK_LOSSES.format(loop=leaky_loop.strip("\n"))
    r = grade_code(
        task, attack + "\nwith torch.no_grad():\n" + tail, sandbox, data_seed=CALIBRATION_SEED
    )
    assert r.details["components"]["memory"] == 0.0, r.details.get("memory_growth_mb")
    assert r.score <= 0.6, r.score


def test_held_out_credit_is_what_the_reference_model_also_earns() -> None:
    """The script's own outputs can lose held-out credit, never add to it: a script answering
    better than its trained weights do in the reference model (a side estimator in ``predict``
    on top of a weak model) gets the reference model's credit."""
    import numpy as np

    from whipstudio_nb.grading import metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    perfect = np.eye(2)[labels] * 8.0
    weaker = perfect.copy()
    flip = rng.random(400) < 0.03  # the weights alone: 97% right
    weaker[flip] = weaker[flip][:, ::-1]
    cfg = {"metric": "accuracy", "chance": 0.5, "target": 1.0, "loss_target": 0.0, "loss_max": 0.7}
    rec = {"optimizer_steps": 10, "param_changes": {"w": 1.0}}
    own = metrics.measure(cfg, rec, [1.0, 0.1], perfect, labels, outputs_reference=weaker)
    ref = metrics.measure(cfg, rec, [1.0, 0.1], weaker, labels, outputs_reference=weaker)
    assert own.values["reference_share"] == 1.0  # within the allowed spread
    for name in ("heldout_metric", "heldout_loss"):
        assert own.components[name] == pytest.approx(ref.components[name]), name
        assert own.components[name] < 0.97


FORGED_LOSSES = """
import sys
for _h in list(sys.modules["torch"].nn.modules.module._global_forward_pre_hooks.values()):
    _rec = getattr(_h, "__self__", None)
    if _rec is not None and callable(getattr(_rec, "_send", None)):
        for _ in range(1000):
            _rec._send({"loss": 0.001})  # a made-up falling curve, down the recorder's channel
"""


def test_a_made_up_loss_curve_is_capped_by_the_hosts_own_measure(sandbox, task1):
    """task1's partial fix (the learning rate of 10 left in) trains weights that answer well
    but never converge: its training loss does not fall (loss_decrease 0, score 0.85). Losses
    sent down the recorder's channel used to make it 1.00; the reference model's own training
    loss, before and after the trained weights went in, now caps the curve."""
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    partial = grade_code(task1, task1.partial_code, sandbox, data_seed=CALIBRATION_SEED)
    forged = grade_code(
        task1, task1.partial_code + FORGED_LOSSES, sandbox, data_seed=CALIBRATION_SEED
    )
    assert forged.details["loss_steps"] > partial.details["loss_steps"]  # the forgery arrived
    assert forged.details["components"]["loss_decrease"] == 0.0
    assert forged.details["train_loss_ratio_reference"] > 1.0
    assert forged.score <= partial.score + 0.01 and partial.score < 0.9


def test_trained_is_capped_by_what_the_weights_moved_in_the_reference_model() -> None:
    from whipstudio_nb.grading import metrics

    cfg = {"metric": "accuracy", "chance": 0.5, "target": 1.0}
    claimed = {"optimizer_steps": 50, "param_changes": {"0.weight": 1.0, "0.bias": 1.0}}
    seen = {"trainable": ["0.bias", "0.weight"], "moved": ["0.bias"]}
    m = metrics.measure(cfg, claimed, [1.0, 0.5], None, None, reference_trained=seen)
    assert m.components["trained"] == 0.5
    m = metrics.measure(cfg, claimed, [1.0, 0.5], None, None)
    assert m.components["trained"] == 1.0


# A child forked while the script runs, reaching the harness's pipes through the interpreter's
# frames, that announces itself as the harness's forked copy (B) before the real one exists.
FAKE_B = """
import os
import sys
_wire = sys.modules["whipstudio_nb.grading.wire"]
_time = sys.modules["time"]
_f = sys._getframe()
while _f is not None and _f.f_code.co_name != "run_then_fork":
    _f = _f.f_back
_rec_w, _cmd_r = _f.f_locals["rec_w"], _f.f_locals["cmd_r"]
if os.fork() == 0:
    os.setpgid(0, 0)  # out of A's process group, in its session: as B is
    _wire.send(_rec_w, {"pid": os.getpid(), "stage": "forked"})
    if _wire.recv(_cmd_r, _time.monotonic() + 60) is not None:
        _made_up = {"exit_code": 0, "error": "A STAND-IN ANSWERED", "tampered": []}
        _wire.send(_rec_w, {"record": {**_made_up, "model_found": False}})
    _time.sleep(30)
    os._exit(0)
"""


def test_a_stand_in_for_the_harness_copy_is_never_asked(sandbox, task1):
    """The harness's copy that holds the trained model (B) is the process the script's main
    thread forks last, found by the kernel's main process when A exits; what any process says
    about itself on the pipe counts for nothing."""
    res = grade_code(task1, FAKE_B + task1.solution_code, sandbox)
    assert "A STAND-IN ANSWERED" not in str(res.details), res.details
    assert res.score >= 0.9, res.details
    assert res.details.get("stopped_processes", 0) >= 1  # the stand-in was killed


# Eval mode only for batches that look like task10's consistency check (64 and 16 rows, no
# gradients): the check used to run on the submission's own model and paid 0.65 -> 1.00.
CHECK_DETECTOR = """
model.register_forward_pre_hook(
    lambda m, a: m.train(not (a[0].shape[0] in (16, 64) and not torch.is_grad_enabled())) and None
)
"""


def test_a_packs_checks_run_on_the_reference_model_not_the_submissions(sandbox):
    from whipstudio_nb import load_task
    from whipstudio_nb.grading.calibration import CALIBRATION_SEED

    task = load_task("task10")
    partial = grade_code(task, task.partial_code, sandbox, data_seed=CALIBRATION_SEED)
    cheat = grade_code(
        task, task.partial_code + CHECK_DETECTOR, sandbox, data_seed=CALIBRATION_SEED
    )
    assert partial.details["checks"]["batch_independent"] is False, partial.details
    assert cheat.details["components"]["consistent_inference"] == 0.0, cheat.details
    assert cheat.score <= partial.score + 0.01, (cheat.score, partial.score)
    fix = grade_code(task, task.solution_code, sandbox, data_seed=CALIBRATION_SEED)
    assert fix.details["checks"] == {"repeatable": True, "batch_independent": True}
    assert fix.score >= 0.95, fix.details


# Processes the script started that act once the script has returned (its process, A, is gone):
# the evaluated model waits for one of them to say so. A child forked by the main thread, and
# children a thread keeps forking up to the moment the script returns.
AFTER_THE_SCRIPT = """
import os
import sys
threading = sys.modules["threading"]
time = sys.modules["time"]
_flag = torch.zeros(1).share_memory_()
_script = os.getpid()


def _child():
    while os.getppid() == _script:  # until the script has returned and its process is gone
        time.sleep(0.001)
    _flag.add_(1)
    time.sleep(60)
    os._exit(0)


def _keep_forking():
    for _ in range(150):
        if os.fork() == 0:
            _child()
        time.sleep(0.002)


if {how!r} == "thread":
    threading.Thread(target=_keep_forking, daemon=True).start()
    time.sleep(0.2)
elif os.fork() == 0:
    _child()
_forward = model.forward


def _after_the_script(x):
    t0 = time.monotonic()
    while _flag.item() == 0 and time.monotonic() - t0 < 20:
        time.sleep(0.01)
    return _forward(x)


model.forward = _after_the_script
"""


@pytest.mark.parametrize("how", ["child", "thread"])
def test_nothing_the_script_started_runs_once_it_has_returned(sandbox, task1, how):
    """Every process the script started stops the moment the script returns (before the
    harness's copy of A exists), so nothing can act between the script's end and the sweep:
    train a shared model further, write a file the model reads, or unblock its forward."""
    res = grade_code(task1, task1.solution_code + AFTER_THE_SCRIPT.format(how=how), sandbox)
    assert res.score <= 0.05, res.details
    if how == "thread" and "time budget" in res.details.get("error", ""):
        return  # a child forked as the script returned was taken for the harness's copy: it
        # never answers (stopped), and the grade is 0 all the same
    assert "held-out inputs" in res.details.get("model_error", ""), res.details
    assert res.details["stopped_processes"] >= 1


# ---------------------------------------------------------------- gradients training computed

# The buggy script kept, and weights fitted by scikit-learn carried into the model by torch's own
# SGD steps on gradients that point at the fit (the finding: 0.85 on task1, the distance loss
# 1.00): set by hand, or from a loss on the parameters themselves.
_SKLEARN_FIT = """
from sklearn.linear_model import LogisticRegression
_fit = LogisticRegression(max_iter=2000).fit(X.numpy(), y.numpy())
_coef = torch.from_numpy(_fit.coef_).float()
_icpt = torch.from_numpy(_fit.intercept_).float()
_targets = [
    (model.weight, torch.vstack([-_coef / 2, _coef / 2])),
    (model.bias, torch.cat([-_icpt / 2, _icpt / 2])),
]
"""
TOWARD_A_FIT = {
    "grads set by hand": """
_opt = torch.optim.SGD(model.parameters(), lr=1.0)
with torch.no_grad():
    for _p, _t in _targets:
        _p.grad = _p - _t
_opt.step()
""",
    "distance loss": """
_opt = torch.optim.SGD(model.parameters(), lr=0.25)
for _ in range(40):
    _opt.zero_grad()
    _d = sum(((_p - _t) ** 2).sum() for _p, _t in _targets)
    (_d + 0.0 * criterion(model(X), y)).backward()
    _opt.step()
""",
    "grads overwritten in place after backward": """
_opt = torch.optim.SGD(model.parameters(), lr=1.0)
_opt.zero_grad()
criterion(model(X), y).backward()
with torch.no_grad():
    for _p, _t in _targets:
        _p.grad.copy_(_p - _t)
_opt.step()
""",
}


@pytest.mark.parametrize("how", list(TOWARD_A_FIT))
def test_steps_on_gradients_no_training_loss_computed_train_nothing(sandbox, task1, how):
    code = task1.buggy_code + _SKLEARN_FIT + TOWARD_A_FIT[how]
    res = grade_code(task1, code, sandbox)
    assert res.score <= 0.05, res.details
    why = res.details["untrained_params"]["weight"]
    assert why == "an optimizer step changed it with gradients no training loss computed"


# The task's fix, training the same way while shaping its gradients as real training code does:
# each must still count as training.
_STEP = "    optimizer.step()\n"
SHAPED = {
    "clip_grad_norm_": "    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)\n" + _STEP,
    "clip_grad_value_": "    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)\n" + _STEP,
    "an L2 penalty in the loss": None,
    "accumulated over two halves": None,
    "autograd.grad into p.grad": None,
}


def _shaped(fix: str, how: str) -> str:
    if SHAPED[how] is not None:
        return fix.replace(_STEP, SHAPED[how])
    if how == "an L2 penalty in the loss":
        return fix.replace(
            "loss = criterion(logits, y)",
            "loss = criterion(logits, y) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())",
        )
    if how == "accumulated over two halves":
        return fix.replace(
            "    logits = model(X)\n    loss = criterion(logits, y)\n    loss.backward()\n",
            "    for part in (slice(0, len(X) // 2), slice(len(X) // 2, None)):\n"
            "        loss = criterion(model(X[part]), y[part]) / 2\n"
            "        loss.backward()\n",
        )
    return fix.replace(
        "    loss.backward()\n",
        "    grads = torch.autograd.grad(loss, list(model.parameters()))\n"
        "    for p, g in zip(model.parameters(), grads):\n"
        "        p.grad = g\n",
    )


@pytest.mark.parametrize("how", list(SHAPED))
def test_training_that_shapes_its_gradients_still_counts(sandbox, task1, how):
    code = _shaped(task1.solution_code, how)
    assert code != task1.solution_code
    res = grade_code(task1, code, sandbox)
    assert res.score >= 0.9, res.details
    assert not res.details.get("untrained_params"), res.details
