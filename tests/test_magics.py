"""The magics, driven in a real IPython InteractiveShell against real sandbox kernels."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from whipstudio_nb import load_task
from whipstudio_nb.models import (
    CodeObservation,
    ErrorObservation,
    ExecuteSnippetObservation,
    GetVariableStateObservation,
    InspectDiffObservation,
    InspectTensorObservation,
    Observation,
    RunTrainingProbeObservation,
    State,
    SubmitFixObservation,
)
from whipstudio_nb.notebook.magics import WhipMagics
from whipstudio_nb.notebook.widgets import Message, TaskTable

TASK2_SOLUTION = load_task("task2", seed=1).solution_code  # the variant the tests reset


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.config.WhipMagics.pool_size = 1  # traitlets config reaches the magics at load time
    shell.config.WhipMagics.max_turns = 50
    shell.run_line_magic("load_ext", "whipstudio_nb")
    yield shell
    if getattr(shell, "_whip_magics", None) is not None:
        shell.run_line_magic("unload_ext", "whipstudio_nb")


@pytest.fixture(scope="module")
def magics(ip: InteractiveShell) -> WhipMagics:
    m = ip._whip_magics
    assert isinstance(m, WhipMagics)
    return m


def run(ip: InteractiveShell, source: str):
    """Run a cell like a user would; returns the cell's value (what ``_`` holds afterwards)."""
    res = ip.run_cell(source, store_history=True)
    assert res.error_in_exec is None, res.error_in_exec
    return res.result


def shown(ip: InteractiveShell, value) -> dict:
    """What the notebook would display for a value (through the registered formatters)."""
    data, _ = ip.display_formatter.format(value)
    return data


# ------------------------------------------------------------------ loading and configuration


def test_loading_is_fast_and_defers_heavy_imports() -> None:
    code = (
        "import sys, time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.config.WhipMagics.warm_start = False\n"
        "t = time.perf_counter()\n"
        "ip.run_line_magic('load_ext', 'whipstudio_nb')\n"
        "dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('torch', 'jupyter_client', 'zmq', 'ipywidgets', 'matplotlib')\n"
        "         if m in sys.modules]\n"
        "print(dt, heavy, 'whip_reset' in ip.magics_manager.magics['line'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, rest = out.stdout.split(" ", 1)
    # What makes it fast, without a wall clock (noisy here): no heavy import at load.
    assert rest.strip() == "[] True", f"%load_ext took {float(dt):.2f} s"


def test_loading_with_warm_start_returns_at_once_and_warms_in_the_background() -> None:
    code = (
        "import time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.config.WhipMagics.pool_size = 1\n"
        "t = time.perf_counter()\n"
        "ip.run_line_magic('load_ext', 'whipstudio_nb')\n"
        "dt = time.perf_counter() - t\n"
        "m = ip._whip_magics\n"
        "warming = m._warmer is not None and m._warmer.is_alive()\n"
        "pool = m.env.sandbox.pool\n"  # joins the warm-up
        "ip.run_line_magic('unload_ext', 'whipstudio_nb')\n"
        "print(dt, warming, pool.stats()['kernels_started'] >= 1, pool.stats()['closed'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, rest = out.stdout.split(" ", 1)
    # Returned while the warm-up was still running: it did not wait for a kernel.
    assert rest.strip() == "True True True", f"%load_ext took {float(dt):.2f} s"


def test_config_traitlets(ip: InteractiveShell, magics: WhipMagics) -> None:
    assert magics.pool_size == 1  # from shell.config before loading
    assert magics in ip.configurables
    ip.run_line_magic("config", "WhipMagics.timeout = 60")
    assert magics.timeout == 60.0
    assert magics.env.tool_timeout_s == 60.0  # applied to the environment on next use
    ip.run_line_magic("config", "WhipMagics.timeout = 30")
    for name in ("timeout", "pool_size", "default_task", "probe_steps", "max_submissions"):
        assert magics.trait_metadata(name, "config") is True


def test_help_is_real(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    doc = ip.find_line_magic("whip_probe").__doc__
    assert "--steps STEPS" in doc and "loss curve" in doc
    ip.run_cell("%whip_reset?")
    out = capsys.readouterr().out
    assert "%whip_reset [--seed SEED]" in out and "set_next_input" not in out
    assert "Nothing is\n    inserted" in out or "Nothing is inserted" in " ".join(out.split())


def test_code_magics_do_not_expand_variables(ip: InteractiveShell) -> None:
    for name in ("whip_snippet", "whip_inspect", "whip_probe", "whip_vars", "whip_submit"):
        assert getattr(ip.find_cell_magic(name), "_ipython_magic_no_var_expand", False), name


# ------------------------------------------------------------------------------- magics


def test_no_episode_is_a_friendly_message(ip: InteractiveShell) -> None:
    out = run(ip, "%%whip_snippet\nprint(1)")
    assert isinstance(out, Message)
    assert "No episode yet" in out.text() and "%whip_reset TASK" in out.text()


def test_tasks_table(ip: InteractiveShell) -> None:
    tasks = run(ip, "%whip_tasks")
    assert isinstance(tasks, TaskTable)
    assert [t.id for t in tasks][:2] == ["task1", "task2"]
    assert "Silent NaN Loss" in shown(ip, tasks)["text/html"]


def test_reset_shows_code_and_inserts_no_cell(ip: InteractiveShell) -> None:
    ip.rl_next_input = None
    obs = run(ip, "%whip_reset task2 --seed 1")
    assert isinstance(obs, Observation) and obs.task_id == "task2"
    assert ip.user_ns["_"] is obs  # obs = _ works
    assert ip.rl_next_input is None  # Run All never finds a pre-filled submission below
    data = shown(ip, obs)
    assert data["text/plain"].endswith("turn 0/50 · 5 submissions left · best 0.00")
    assert "Silent NaN Loss" in data["text/plain"]
    assert "22 |     p = torch.sigmoid(model(X).squeeze(1))" in data["text/plain"]
    assert "The grader trains your script" in data["text/html"]


def test_inspect_shows_nan(ip: InteractiveShell) -> None:
    obs = run(ip, "%%whip_inspect p\nimport torch\np = torch.log(torch.tensor([0.5, 0.0, -1.0]))")
    assert isinstance(obs, InspectTensorObservation)
    assert obs.is_nan and obs.is_inf and obs.shape == [3]
    data = shown(ip, obs)
    assert data["text/plain"].startswith("p: tensor[3] n=3")
    assert "NaN!" in data["text/plain"] and "Inf!" in data["text/plain"]
    assert "#c62828" in data["text/html"]


def test_vars_table(ip: InteractiveShell) -> None:
    obs = run(ip, "%%whip_vars X.shape 'X.sum()' nope\nimport torch\nX = torch.ones(3, 2)")
    assert isinstance(obs, GetVariableStateObservation)
    assert list(obs.results) == ["X.shape", "X.sum()", "nope"]
    assert obs.results["X.shape"].shape == [3, 2]
    assert "NameError" in (obs.results["nope"].error or "")
    text = shown(ip, obs)["text/plain"]
    assert "tensor(6.)" in text and "NameError" in text


def test_snippet_output_and_the_underscore(ip: InteractiveShell) -> None:
    run(ip, "%%whip_snippet\nimport sys\nprint('hello')\nprint('oops', file=sys.stderr)")
    obs = run(ip, "obs = _\nobs")
    assert isinstance(obs, ExecuteSnippetObservation)
    assert obs.stdout == "hello\n" and "oops" in obs.stderr
    assert "[ok]" in shown(ip, obs)["text/plain"]


def test_security_violation_is_short(ip: InteractiveShell, capsys) -> None:
    obs = run(ip, "%%whip_snippet\nimport socket")
    assert isinstance(obs, ErrorObservation)
    text = shown(ip, obs)["text/plain"]
    assert text.startswith("Error: Security violation: import 'socket' is not allowed.")
    assert "Traceback" not in capsys.readouterr().err


def test_invalid_option_is_one_friendly_line(ip: InteractiveShell, capsys) -> None:
    res = ip.run_cell("%whip_probe --stepz 3")
    captured = capsys.readouterr()
    assert "UsageError" not in captured.err and "Traceback" not in captured.err + captured.out
    assert isinstance(res.result, Message)
    assert res.result.text() == (
        "Error: %whip_probe: unknown option --stepz; did you mean --steps? "
        "Usage: %whip_probe [--steps STEPS]"
    )


def test_unknown_task_is_friendly(ip: InteractiveShell) -> None:
    out = run(ip, "%whip_reset task99")
    assert isinstance(out, Message)
    assert out.text().startswith("Error: Unknown task_id: task99. Available: task1")


def test_timeout_is_friendly(ip: InteractiveShell, magics: WhipMagics) -> None:
    ip.run_line_magic("config", "WhipMagics.timeout = 3")
    try:
        obs = run(ip, "%%whip_snippet\nwhile True:\n    pass")
    finally:
        ip.run_line_magic("config", "WhipMagics.timeout = 30")
    assert obs.timed_out and "Timed out after 3 s" in (obs.error or obs.stderr)
    text = shown(ip, obs)["text/plain"]
    assert "Timed out after 3 s" in text and "[timed out]" in text


def test_line_editing(ip: InteractiveShell) -> None:
    code = run(ip, "%whip_code")
    assert isinstance(code, CodeObservation) and code.action_type == "view_code"
    n = code.line_count
    out = run(ip, "%%whip_code --replace 2 2\nimport torch.nn as nn  # edited\nimport math")
    assert out.line_count == n + 1 and out.code.splitlines()[1].endswith("# edited")
    bad = run(ip, "%%whip_code --replace 0 1\nx")
    assert "start_line must be between 1" in bad.error
    assert "Error: start_line" in shown(ip, bad)["text/plain"]
    assert run(ip, "%whip_code --undo").line_count == n
    run(ip, "%%whip_code --replace 1 1\n# nothing")
    reset = run(ip, "%whip_code --reset")
    assert reset.code == load_task("task2", seed=1).buggy_code
    assert isinstance(run(ip, "%whip_code --replace 1 1"), Message)  # the lines go in a cell
    assert isinstance(run(ip, "%whip_code --undo --reset"), Message)


def test_diff_against_original(ip: InteractiveShell) -> None:
    obs = run(ip, "%%whip_diff\n" + TASK2_SOLUTION)
    assert isinstance(obs, InspectDiffObservation)
    assert obs.additions == 3 and obs.deletions == 2
    data = shown(ip, obs)
    assert "binary_cross_entropy_with_logits" in data["text/plain"]
    assert "#e6ffed" in data["text/html"]


def test_probe_overlays_earlier_attempts(ip: InteractiveShell) -> None:
    first = run(ip, "%whip_probe --steps 5")  # the working copy (the buggy code)
    assert isinstance(first, RunTrainingProbeObservation) and len(first.losses) == 5
    second = run(ip, "%%whip_probe --steps 8\n" + TASK2_SOLUTION)
    assert len(second.losses) == 8
    data = shown(ip, second)
    assert set(data) >= {"text/plain", "text/html", "image/png"}
    assert f"probe, turn {first.turn}:" in data["text/plain"]
    assert "Gradient norms" in data["text/plain"] and "0.weight" in data["text/plain"]


def test_hints_are_progressive(ip: InteractiveShell) -> None:
    hints = load_task("task2").hints
    first = run(ip, "%whip_hint")
    second = run(ip, "%whip_hint")
    assert first.text().startswith(f"Info: Hint 1 of {len(hints)}")
    assert second.text().startswith(f"Info: Hint 2 of {len(hints)}")
    assert "Hint 1" in run(ip, "%whip_hint --all").text()


def test_submit_buggy_then_fixed(ip: InteractiveShell) -> None:
    buggy = run(ip, "%whip_submit")  # the working copy: still the buggy code
    assert isinstance(buggy, SubmitFixObservation)
    fixed = run(ip, "%%whip_submit -m 'use BCE with logits'\n" + TASK2_SOLUTION)
    assert buggy.reward < 0.5 < 0.9 < fixed.reward
    data = shown(ip, fixed)
    assert data["text/plain"].startswith(f"Score: {fixed.reward:.3f}")
    assert "submission 1:" in data["text/plain"]  # the buggy attempt is overlaid
    assert "image/png" in data and "<details><summary>Run output</summary>" in data["text/html"]
    tasks = run(ip, "%whip_tasks")
    assert f"{fixed.reward:.2f}" in tasks.text()


def test_state_dashboard(ip: InteractiveShell, magics: WhipMagics) -> None:
    state = run(ip, "%whip_state")
    assert isinstance(state, State) and state.task_id == "task2" and state.submissions == 2
    data = shown(ip, state)
    assert data["text/plain"].startswith(f"Task task2 (Silent NaN Loss): turn {state.turn} of")
    assert "run_training_probe" in data["text/plain"] and "score " in data["text/plain"]
    entries = re.findall(
        r"<details[^>]*><summary[^>]*>(\d+)\. <code>(\w+)</code>", data["text/html"]
    )
    # every call is in the timeline, including the one rejected by the import policy
    assert len(entries) == len(state.tool_call_history) + 1 == len(magics._timeline)
    assert entries[-1] == (str(state.turn), "submit_fix")


def test_episode_end_is_explained_the_notebook_way(ip: InteractiveShell, magics) -> None:
    ip.run_line_magic("config", "WhipMagics.max_submissions = 1")
    try:
        run(ip, "%whip_reset task1 --no-cell")
        run(ip, "%whip_submit")
        late = run(ip, "%whip_code")
    finally:
        ip.run_line_magic("config", "WhipMagics.max_submissions = 5")
    assert isinstance(late, ErrorObservation) and late.episode_done
    text = shown(ip, late)["text/plain"]
    first = text.splitlines()[0]
    assert first.startswith("Error: This episode is over (best 0.")
    assert first.endswith("): start a new one with %whip_reset task1.")


def test_unexpected_errors_are_short_unless_debugging(ip: InteractiveShell, magics) -> None:
    magics.env.close()  # a real failure inside the machinery: the environment is gone
    try:
        out = run(ip, "%whip_reset task1 --no-cell")
        assert isinstance(out, Message)
        assert out.text() == (
            "Error: RuntimeError: this WhipEnv is closed "
            "(%config WhipMagics.debug = True shows the traceback)"
        )
        assert "Traceback" in magics.last_traceback
        ip.run_line_magic("config", "WhipMagics.debug = True")
        res = ip.run_cell("%whip_reset task1 --no-cell")
        assert isinstance(res.error_in_exec, RuntimeError)
    finally:
        ip.run_line_magic("config", "WhipMagics.debug = False")
        magics._env = None  # the next use starts a fresh environment


def test_unload_shuts_the_pool_down(ip: InteractiveShell, magics: WhipMagics) -> None:
    pool = magics.env.sandbox.pool
    ip.run_line_magic("unload_ext", "whipstudio_nb")
    assert pool.stats()["closed"] and pool.stats()["ready"] == 0
    assert "whip_reset" not in ip.magics_manager.magics["line"]
    assert magics not in ip.configurables
    data = shown(ip, State())
    assert "Task" not in data.get("text/plain", "")  # our formatter is gone too
