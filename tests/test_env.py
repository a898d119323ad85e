"""WhipEnv: every action succeeding and failing, and the reference's messages. The state machine
and the tools' own logic run over the in-process FakeSandbox; real kernels for one end-to-end
test per tool, for what only a kernel shows (fresh state, tracebacks), and for grading."""

from __future__ import annotations

import math

import pytest

from whipstudio_nb import UnknownTaskError, WhipEnv
from whipstudio_nb.env import EPISODE_DONE_MSG
from whipstudio_nb.models import (
    CodeObservation,
    ExecuteSnippetAction,
    ExecuteSnippetObservation,
    GetVariableStateObservation,
    InspectTensorObservation,
    RunTrainingProbeObservation,
    SubmitFixObservation,
)

SECURITY_MSG = (
    "Security violation: import 'requests' is not allowed. Allowed: torch, numpy, sklearn, "
    "pandas, matplotlib, scipy, math, random, os, sys, collections, itertools, functools, json, "
    "re, typing"
)
GRAD_SETUP = (
    "import torch\nimport torch.nn as nn\nmodel = nn.Linear(10, 2)\nx = torch.randn(5, 10)\n"
    "y = model(x)\nloss = y.sum()\nloss.backward()"
)


# ---------------------------------------------------------------- reset / state


def test_reset_observation(make_fake_env, task1):
    env = make_fake_env()
    obs = env.reset("task1")
    assert obs.task_id == "task1"
    assert obs.buggy_code == task1.buggy_code
    assert obs.turn == 0 and obs.last_reward == 0.0 and obs.episode_done is False
    assert obs.error_log == "" and obs.error is None
    assert obs.max_turns == 10
    assert task1.solution_code not in obs.model_dump_json()


def test_reset_unknown_task_raises_value_error(make_fake_env):
    with pytest.raises(UnknownTaskError, match=r"^Unknown task_id: task99\. Available: task1"):
        make_fake_env().reset("task99")


def test_step_before_reset_is_in_band(make_fake_env):
    res = make_fake_env().step({"action_type": "view_code"})
    assert res.observation.error and "reset" in res.observation.error
    assert res.done is True


def test_state_tracks_turns_and_history(fake_env):
    fake_env.step({"action_type": "reset_to_original"})
    fake_env.step({"action_type": "view_code"})  # free: it only reads the working copy
    fake_env.step({"action_type": "execute_snippet", "code": "print(1)"})
    st = fake_env.state()
    assert st.turn == 2 and st.task_id == "task1" and st.submitted is False
    assert st.best_reward == 0.0
    assert [(h.turn, h.action_type) for h in st.tool_call_history] == [
        (1, "reset_to_original"),
        (1, "view_code"),
        (2, "execute_snippet"),
    ]


# ---------------------------------------------------------------- execute_snippet


def test_execute_snippet_ok(env):
    res = env.step(
        {"action_type": "execute_snippet", "code": "import torch\nprint(torch.__version__)"}
    )
    obs = res.observation
    assert isinstance(obs, ExecuteSnippetObservation)
    assert obs.turn == 1 and obs.episode_done is False and res.reward == 0.0
    assert obs.stdout.startswith("2.") and obs.exit_code == 0 and obs.timed_out is False


def test_execute_snippet_accepts_a_model_instance(fake_env):
    obs = fake_env.step(ExecuteSnippetAction(code="print(6 * 7)")).observation
    assert obs.stdout == "42\n"


def test_execute_snippet_error(env):
    obs = env.step(
        {"action_type": "execute_snippet", "code": "x = 1\nundefined_var + 1"}
    ).observation
    assert obs.exit_code == 1 and obs.error is None
    assert "NameError: name 'undefined_var' is not defined" in obs.stderr
    assert 'File "<snippet>", line 2' in obs.stderr
    assert "kernel_lib" not in obs.stderr  # the traceback shows the user's frames only


def test_execute_snippet_stderr_and_exit(fake_env):
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
    obs = fake_env.step({"action_type": "execute_snippet", "code": code}).observation
    assert obs.stdout == "out\n" and "err" in obs.stderr and obs.exit_code == 3


def test_ipython_syntax_is_not_special(fake_env):
    obs = fake_env.step({"action_type": "execute_snippet", "code": "!echo hacked"}).observation
    assert obs.error.startswith("SyntaxError in code, line 1: invalid syntax")
    assert "hacked" not in obs.model_dump_json().replace("!echo hacked", "")
    assert fake_env.state().turn == 0  # refused before anything ran


def test_snippets_do_not_share_state(env):
    env.step({"action_type": "execute_snippet", "code": "leftover = 123"})
    obs = env.step({"action_type": "execute_snippet", "code": "print(leftover)"}).observation
    assert "NameError" in obs.stderr


# ---------------------------------------------------------------- security


def test_security_violation_costs_no_turn(fake_env):
    res = fake_env.step({"action_type": "execute_snippet", "code": "import requests"})
    assert res.observation.error == SECURITY_MSG
    assert res.observation.episode_done is False and res.done is False
    assert fake_env.state().turn == 0
    for action in (
        {"action_type": "inspect_tensor", "setup_code": "import socket", "target_expression": "1"},
        {"action_type": "run_training_probe", "code": "__import__('os')", "steps": 2},
        {"action_type": "get_variable_state", "expressions": ["__import__('socket')"]},
    ):
        assert fake_env.step(action).observation.error.startswith("Security violation: import")
    assert fake_env.state().turn == 0


# ---------------------------------------------------------------- invalid actions


def test_unknown_action_type_lists_valid_ones(fake_env):
    obs = fake_env.step({"action_type": "fly"}).observation
    assert obs.error.startswith(
        "Unknown action_type: 'fly'. Valid: execute_snippet, inspect_tensor"
    )
    assert "submit_fix" in obs.error and obs.episode_done is False


@pytest.mark.parametrize(
    ("action", "field", "expected"),
    [
        ({"action_type": "execute_snippet"}, "code", "is required"),
        ({"action_type": "execute_snippet", "code": 5}, "code", "valid string"),
        (
            {"action_type": "run_training_probe", "code": "", "steps": "many"},
            "steps",
            "valid integer",
        ),
        (
            {"action_type": "run_training_probe", "code": "", "steps": 0},
            "steps",
            "greater than or equal to 1",
        ),
        ({"action_type": "get_variable_state", "expressions": "x"}, "expressions", "valid list"),
        ({"action_type": "submit_fix", "fixed_cod": "x"}, "fixed_cod", "not a valid field"),
        ({"code": "print(1)"}, "action_type", "is required"),
    ],
)
def test_invalid_fields_are_named(fake_env, action, field, expected):
    obs = fake_env.step(action).observation
    assert obs.error is not None and f"'{field}'" in obs.error and expected in obs.error
    assert obs.episode_done is False


def test_non_dict_action(fake_env):
    obs = fake_env.step("print(1)").observation
    assert obs.error is not None and "expected an object" in obs.error


# ---------------------------------------------------------------- inspect_tensor


def test_inspect_tensor_reference_example(env):
    obs = env.step(
        {
            "action_type": "inspect_tensor",
            "setup_code": GRAD_SETUP,
            "target_expression": "model.weight.grad",
        }
    ).observation
    assert isinstance(obs, InspectTensorObservation)
    assert obs.error is None
    assert obs.shape == [2, 10] and obs.dtype == "torch.float32"
    assert obs.requires_grad is False and obs.grad_is_none is True
    assert obs.min_val <= obs.mean_val <= obs.max_val
    assert obs.is_nan is False and obs.is_inf is False
    assert obs.numel == 20 and obs.std_val is not None
    assert sum(obs.histogram.counts) == 20 and len(obs.histogram.edges) == 11


def test_inspect_tensor_nan_inf_and_grad(fake_env):
    setup = (
        "import torch\nw = torch.tensor([1.0, float('nan'), float('inf'), 3.0], requires_grad=True)"
    )
    obs = fake_env.step(
        {"action_type": "inspect_tensor", "setup_code": setup, "target_expression": "w"}
    ).observation
    assert obs.is_nan is True and obs.is_inf is True
    assert obs.nan_count == 1 and obs.inf_count == 1
    assert (obs.min_val, obs.max_val, obs.mean_val) == (1.0, 3.0, 2.0)  # over finite values
    assert obs.requires_grad is True and obs.grad_is_none is True


@pytest.mark.parametrize(
    ("setup", "expr", "expected"),
    [
        ("x = 3", "x", "'x' is not a tensor (got int)"),
        ("", "missing_name", "Could not evaluate 'missing_name': NameError"),
        ("raise ValueError('boom')", "1", "setup_code failed: ValueError: boom"),
    ],
)
def test_inspect_tensor_errors(fake_env, setup, expected, expr):
    obs = fake_env.step(
        {"action_type": "inspect_tensor", "setup_code": setup, "target_expression": expr}
    ).observation
    assert obs.error is not None and obs.error.startswith(expected)
    assert obs.shape is None


def test_inspect_tensor_numpy_array(fake_env):
    obs = fake_env.step(
        {
            "action_type": "inspect_tensor",
            "setup_code": "import numpy as np\na = np.arange(6).reshape(2, 3)",
            "target_expression": "a",
        }
    ).observation
    assert obs.shape == [2, 3] and obs.dtype == "torch.int64" and obs.max_val == 5.0


# ---------------------------------------------------------------- run_training_probe


def test_probe_buggy_task1_shows_flat_loss(env, task1):
    obs = env.step(
        {"action_type": "run_training_probe", "code": task1.buggy_code, "steps": 5}
    ).observation
    assert isinstance(obs, RunTrainingProbeObservation)
    assert obs.error is None and obs.timed_out is False
    assert len(obs.losses) == 5 and len(set(obs.losses)) == 1  # the bug: nothing moves
    assert obs.final_loss == obs.losses[-1]
    assert set(obs.grad_norms) == {"weight", "bias"}
    assert obs.optimizer_param_count == 18  # Linear(8, 2): 16 weights + 2 biases
    assert obs.stdout == ""  # stopped before the script's own prints


def test_probe_fixed_task1_loss_falls(fake_env, task1):
    obs = fake_env.step(
        {"action_type": "run_training_probe", "code": task1.solution_code, "steps": 30}
    ).observation
    assert len(obs.losses) == 30 and obs.losses[-1] < obs.losses[0]
    assert obs.optimizer_steps == 30  # the 31st backward() ends the probe, after 30 steps
    assert obs.params_without_grad == []


def test_probe_nan_and_frozen_params(fake_env):
    code = (
        "import torch\nimport torch.nn as nn\n"
        "model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))\n"
        "model[0].weight.requires_grad_(False)\n"
        "opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)\n"
        "x = torch.randn(8, 3)\n"
        "for i in range(4):\n"
        "    opt.zero_grad()\n"
        "    loss = torch.log(model(x).abs() * 0).mean()\n"
        "    loss.backward()\n"
        "    opt.step()\n"
    )
    obs = fake_env.step(
        {"action_type": "run_training_probe", "code": code, "steps": 10}
    ).observation
    assert len(obs.losses) == 4
    assert obs.loss_is_inf is True and math.isinf(obs.losses[0])  # log(0) = -inf ...
    assert obs.loss_is_nan is True and math.isnan(obs.final_loss)  # ... then NaN weights
    assert "0.weight" in obs.params_without_grad
    assert obs.optimizer_param_count == 3 + 3 + 1  # model[0].bias + model[1].weight + bias
    assert obs.optimizer_steps == 4


def test_probe_script_error(fake_env):
    obs = fake_env.step(
        {"action_type": "run_training_probe", "code": "1/0", "steps": 3}
    ).observation
    assert obs.losses == [] and "ZeroDivisionError" in obs.stderr and obs.final_loss is None


# ---------------------------------------------------------------- get_variable_state


def test_get_variable_state_reference_example(env):
    obs = env.step(
        {
            "action_type": "get_variable_state",
            "setup_code": "import torch\nmodel = torch.nn.Linear(10, 2)\n"
            "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)",
            "expressions": [
                "model.training",
                "optimizer.param_groups[0]['lr']",
                "list(model.parameters())[0].shape",
                "undefined_thing",
                "'x' * 2000",
            ],
        }
    ).observation
    assert isinstance(obs, GetVariableStateObservation) and obs.error is None
    r = obs.results
    assert r["model.training"].model_dump() == {
        "repr": "True",
        "type": "bool",
        "value": True,
        "shape": None,
        "error": None,
    }
    assert r["optimizer.param_groups[0]['lr']"].value == 0.01
    assert r["optimizer.param_groups[0]['lr']"].type == "float"
    size = r["list(model.parameters())[0].shape"]
    assert size.type == "torch.Size" and size.shape == [2, 10] and size.value is None
    assert size.repr == "torch.Size([2, 10])"
    assert r["undefined_thing"].error.startswith("NameError")  # one failure does not spoil others
    long = r["'x' * 2000"]
    assert len(long.repr) < 700 and "more characters" in long.repr and long.value is None


def test_get_variable_state_setup_failure(fake_env):
    obs = fake_env.step(
        {
            "action_type": "get_variable_state",
            "setup_code": "a = 1\nraise KeyError('k')",
            "expressions": ["a"],
        }
    ).observation
    assert obs.error.startswith("setup_code failed: KeyError")
    assert obs.results["a"].value == 1  # what ran before the failure is still inspectable


# ---------------------------------------------------------------- inspect_diff


def test_inspect_diff(fake_env, task1):
    obs = fake_env.step(
        {"action_type": "inspect_diff", "proposed_code": task1.solution_code}
    ).observation
    assert obs.diff.startswith("--- original\n+++ proposed\n@@")
    assert "-optimizer = torch.optim.SGD(model.parameters(), lr=10.0, momentum=0.9)" in obs.diff
    assert obs.additions == 2 and obs.deletions == 2 and obs.lines_changed == 4


def test_inspect_diff_identical(fake_env, task1):
    obs = fake_env.step(
        {"action_type": "inspect_diff", "proposed_code": task1.buggy_code}
    ).observation
    assert obs.diff == "" and obs.lines_changed == 0


# ---------------------------------------------------------------- line editing


def test_line_edits_undo_reset(fake_env, task1):
    obs = fake_env.step({"action_type": "view_code"}).observation
    assert isinstance(obs, CodeObservation)
    assert obs.numbered_code.splitlines()[0] == " 1 | import torch"
    n = obs.line_count
    obs = fake_env.step(
        {
            "action_type": "replace_lines",
            "start_line": 14,
            "end_line": 14,
            "new_code": "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)",
        }
    ).observation
    assert obs.error is None and obs.can_undo and "lr=0.05" in fake_env.working_code
    assert obs.changed_lines == [14]
    two = fake_env.step(
        {
            "action_type": "replace_lines",
            "start_line": 14,
            "end_line": 14,
            "new_code": "lr = 0.05\noptimizer = torch.optim.SGD(model.parameters(), lr=lr)",
        }
    ).observation
    assert two.changed_lines == [14, 15] and two.code.splitlines()[14].startswith("optimizer")
    assert fake_env.step({"action_type": "undo_edit"}).observation.changed_lines == []
    obs = fake_env.step(
        {"action_type": "replace_lines", "start_line": 40, "end_line": 41, "new_code": "x"}
    ).observation
    assert obs.error == f"start_line must be between 1 and {n + 1} (got 40)"
    assert obs.episode_done is False
    obs = fake_env.step({"action_type": "undo_edit"}).observation
    assert obs.error is None and fake_env.working_code == task1.buggy_code
    obs = fake_env.step({"action_type": "undo_edit"}).observation
    assert obs.error == "Nothing to undo."
    fake_env.step(
        {"action_type": "replace_lines", "start_line": 1, "end_line": 1, "new_code": "# gone"}
    )
    obs = fake_env.step({"action_type": "reset_to_original"}).observation
    assert obs.code == task1.buggy_code and fake_env.working_code == task1.buggy_code


def test_submit_working_copy(make_env, task1):
    env = make_env()
    env.reset("task1")
    lines = task1.buggy_code.splitlines()
    step_line = lines.index("    optimizer.step()") + 1
    env.step(
        {
            "action_type": "replace_lines",
            "start_line": step_line,
            "end_line": step_line,
            "new_code": "",
        }
    )
    back = [i for i, ln in enumerate(env.working_code.splitlines(), 1) if "loss.backward()" in ln][
        0
    ]
    env.step(
        {
            "action_type": "replace_lines",
            "start_line": back,
            "end_line": back,
            "new_code": "    loss.backward()\n    optimizer.step()",
        }
    )
    lr = [i for i, ln in enumerate(env.working_code.splitlines(), 1) if "lr=10.0" in ln][0]
    env.step(
        {
            "action_type": "replace_lines",
            "start_line": lr,
            "end_line": lr,
            "new_code": "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)",
        }
    )
    res = env.step({"action_type": "submit_fix"})
    assert isinstance(res.observation, SubmitFixObservation)
    assert res.reward >= 0.9 and res.done is True and res.observation.turn == 4


# ---------------------------------------------------------------- submit_fix and episode end


def test_submit_fix_ends_episode(make_env, task1):
    env = make_env()
    env.reset("task1")
    res = env.step(
        {
            "action_type": "submit_fix",
            "fixed_code": task1.solution_code,
            "explanation": "order and lr",
            "attempt_number": 1,
        }
    )
    obs = res.observation
    assert res.done is True and obs.episode_done is True
    assert res.reward == obs.reward >= 0.9
    assert "LOSSES:" in obs.error_log  # what the script printed, shown but not scored
    assert {"val_acc", "final_loss", "losses", "components"} <= set(obs.grader_details)
    st = env.state()
    assert st.submitted is True and st.best_reward == res.reward
    after = env.step({"action_type": "execute_snippet", "code": "print(1)"})
    assert after.observation.error == EPISODE_DONE_MSG
    assert after.done is True and after.reward == 0.0 and after.observation.episode_done is True


def test_buggy_submission_scores_low(make_env, task1):
    env = make_env()
    env.reset("task1")
    res = env.step({"action_type": "submit_fix", "fixed_code": task1.buggy_code})
    assert res.reward <= 0.25 and res.done is True


def test_max_submissions(make_env, task1):
    env = make_env(max_submissions=2)
    env.reset("task1")
    first = env.step({"action_type": "submit_fix", "fixed_code": task1.buggy_code})
    assert first.done is False and env.state().submitted is True
    second = env.step({"action_type": "submit_fix", "fixed_code": task1.solution_code})
    assert second.done is True
    assert env.state().best_reward == second.reward >= 0.9


def test_max_turns_exceeded(make_fake_env):
    env = make_fake_env(max_turns=2)
    env.reset("task1")
    for _ in range(2):
        assert env.step({"action_type": "reset_to_original"}).done is False
    assert env.step({"action_type": "view_code"}).done is False  # free, even at the limit
    res = env.step({"action_type": "reset_to_original"})
    assert res.observation.error == "Maximum turns (2) exceeded"
    assert res.observation.turn == 3 and res.observation.episode_done is True and res.done is True
    assert res.reward == 0.0
    again = env.step({"action_type": "view_code"})
    assert again.observation.error == EPISODE_DONE_MSG


def test_reset_starts_a_new_episode(make_fake_env, task1):
    env = make_fake_env(max_turns=1)
    env.reset("task1")
    env.step({"action_type": "replace_lines", "start_line": 1, "end_line": 1, "new_code": "# x"})
    env.step({"action_type": "undo_edit"})
    assert env.state().episode_done is True
    first_id = env.state().episode_id
    obs = env.reset("task1")
    st = env.state()
    assert obs.turn == 0 and st.turn == 0 and st.tool_call_history == []
    assert st.episode_id != first_id and env.working_code == task1.buggy_code


def test_constructor_validation():
    with pytest.raises(ValueError):
        WhipEnv(max_turns=0)
    with pytest.raises(ValueError):
        WhipEnv(max_submissions=0)
