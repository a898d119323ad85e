"""``%whip_agent`` in a real IPython InteractiveShell: the real openai client over HTTP to a
scripted OpenAI-compatible server on loopback, the magics' own sandbox kernels, real grading,
and a real Ctrl-C (SIGINT to the main thread) in the middle of a run."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from test_agent import SERVER_ERROR, FakeLLM, text, tool_call  # the scripted model of test_agent

from whipstudio_nb import load_task
from whipstudio_nb.agent import EpisodeResult
from whipstudio_nb.models import State
from whipstudio_nb.notebook.magics import WhipMagics
from whipstudio_nb.notebook.widgets import Message

SOLUTION = load_task("task1").solution_code


def script(body: dict[str, Any]) -> Any:
    model = body["model"]
    turns = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if model == "solver":
        if turns == 0:
            return tool_call("view_code", {}, content="Read the code first.")
        return tool_call("submit_fix", {"fixed_code": SOLUTION, "explanation": "order, lr"})
    if model == "ctrl-c":
        if turns == 0:
            return tool_call("view_code", {}, content="Look at the loop.")
        if turns == 1:
            return tool_call("execute_snippet", {"code": "print(6 * 7)", "thought": "sanity"})
        # the user presses Ctrl-C while the model is thinking about the third step
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        time.sleep(0.5)
        return tool_call("submit_fix", {"fixed_code": SOLUTION})
    if model == "babbler":  # never a tool call: every reply is a parse error
        return text(f"Hmm, reply {turns + 1}: the loop looks odd to me.")
    if model == "fixer":
        return text(f"The fixed script:\n```python\n{SOLUTION}```\n")
    return SERVER_ERROR


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    f = FakeLLM(script)
    yield f
    f.close()


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.config.WhipMagics.pool_size = 1
    shell.config.WhipMagics.max_turns = 0  # the task's own limit, whatever an earlier module set
    shell.run_line_magic("load_ext", "whipstudio_nb")
    yield shell
    if getattr(shell, "_whip_magics", None) is not None:
        shell.run_line_magic("unload_ext", "whipstudio_nb")


@pytest.fixture(scope="module")
def magics(ip: InteractiveShell) -> WhipMagics:
    m = ip._whip_magics
    assert isinstance(m, WhipMagics)
    return m


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, fake: FakeLLM) -> FakeLLM:
    for var in ("HF_TOKEN", "MODEL_NAME", "SUCCESS_SCORE_THRESHOLD", "MAX_STEPS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("API_BASE_URL", fake.url)
    monkeypatch.setenv("API_KEY", "test-key")
    monkeypatch.setenv("WHIP_AGENT_BACKOFF_S", "0.01")
    monkeypatch.setenv("WHIP_AGENT_MAX_RETRIES", "1")
    return fake


def run_agent(ip: InteractiveShell, line: str) -> tuple[Any, list[Any]]:
    """Run ``%whip_agent`` like a user; the cell's value and everything it displayed."""
    with capture_output() as cap:
        res = ip.run_cell(line, store_history=True)
    assert res.error_in_exec is None, res.error_in_exec
    return res.result, cap.outputs


def texts(outputs: list[Any]) -> list[str]:
    return [o.data["text/plain"] for o in outputs]


def head_of(ip: InteractiveShell, res: Any) -> str:
    """What the cell's value shows: the run's one summary line."""
    return ip.display_formatter.format(res)[0]["text/plain"]


def rows(text: str) -> list[str]:
    """The step numbers of the dashboard's table rows."""
    return re.findall(r"^(\d+)\s{2,}", text, flags=re.M)


def test_the_agent_solves_task1_with_a_live_dashboard(
    ip: InteractiveShell, magics: WhipMagics, endpoint: FakeLLM
) -> None:
    res, outputs = run_agent(ip, "%whip_agent task1 --model solver")
    assert isinstance(res, EpisodeResult) and ip.user_ns["_"] is res  # res = _ works
    assert res.success and res.score >= 0.9 and res.stop_reason == "done"
    assert [s.action_type for s in res.steps] == ["view_code", "submit_fix"]
    assert res.model == "solver" and res.fixed_code == SOLUTION

    # one display, then one update of the same display per step, then the final state
    assert [o.update for o in outputs] == [False, True, True, True]
    ids = {o.transient["display_id"] for o in outputs}
    assert len(ids) == 1
    shown = texts(outputs)
    assert [rows(t) for t in shown] == [[], ["1"], ["1", "2"], ["1", "2"]]
    assert "running, 0 step(s) so far of at most 10" in shown[0]
    assert "running, 1 step(s)" in shown[1] and "thought: Read the code first." in shown[1]
    assert "submit_fix fixed_code=<" in shown[2] and f"{res.steps[1].reward:.3f}" in shown[2]
    html = outputs[-1].data["text/html"]
    assert "<th" in html and "Read the code first." in html and "<code>view_code</code>" in html

    # the summary line is printed once: as the cell's value, not again above the rows
    head = head_of(ip, res)
    assert (
        head == f"Agent solver on task1: 2 step(s), score {res.score:.3f} (success), stopped: done"
    )
    assert not any("stopped:" in t for t in shown)
    # the episode is the magics' own: %whip_state and the task table know it
    state = ip.run_cell("%whip_state").result
    assert isinstance(state, State) and state.task_id == "task1" and state.submitted
    # and each of its rows expands to what that step saw
    dash = ip.display_formatter.format(state)[0]["text/html"]
    bodies = re.findall(r'<details class="whip-step".*?</summary>(.*?)</div></details>', dash, re.S)
    assert len(bodies) == 2 and "whip-code" in bodies[0] and "whip-grade" in bodies[1]
    assert [e.action_type for e in magics._timeline] == ["view_code", "submit_fix"]
    assert magics._best["task1"] == res.score
    # the first request carried the tools and the buggy code, to the model asked for
    first = endpoint.for_model("solver")[0]
    assert first["tools"] and " 1 | import torch" in first["messages"][1]["content"]


def test_ctrl_c_stops_the_run_and_keeps_the_steps(ip: InteractiveShell, endpoint) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    res, outputs = run_agent(ip, "%whip_agent task1 --model ctrl-c")
    assert isinstance(res, EpisodeResult) and res.stop_reason == "interrupted"
    assert [s.action_type for s in res.steps] == ["view_code", "execute_snippet"]
    assert res.steps[1].summary == "exit 0, stdout: 42" and not res.success
    assert len(endpoint.for_model("ctrl-c")) == 3  # the third step was being asked for
    shown = texts(outputs)
    assert len(shown) == 4 and rows(shown[-1]) == ["1", "2"]
    assert "stopped: interrupted (the steps so far are kept)" in head_of(ip, res)
    assert "thought: sanity" in shown[-1] and "code=print(6 * 7)" in shown[-1]


def test_turn_limit_and_endpoint_failure(ip: InteractiveShell, endpoint) -> None:
    res, outputs = run_agent(ip, "%whip_agent task1 --model solver --max-turns 1 --seed 2")
    assert res.stop_reason == "turn_limit" and res.seed == 2 and res.max_turns == 1
    assert [s.action_type for s in res.steps] == ["view_code"]
    assert len(outputs) == 3 and "running, 0 step(s) so far of at most 1" in texts(outputs)[0]
    # the live head line follows --max-turns, not the task's own limit
    res, outputs = run_agent(ip, "%whip_agent task1 --model solver --max-turns 8")
    assert "running, 0 step(s) so far of at most 8" in texts(outputs)[0]

    res, outputs = run_agent(ip, "%whip_agent task1 --model http500")
    assert res.stop_reason == "endpoint_error" and res.steps == []
    final = head_of(ip, res)
    assert "stopped: endpoint_error; the endpoint" in final and "upstream exploded" in final
    assert texts(outputs)[-1] == "(no steps)"


def test_parse_errors_show_what_the_model_said(ip: InteractiveShell, endpoint) -> None:
    res, outputs = run_agent(ip, "%whip_agent task1 --model babbler")
    assert res.stop_reason == "parse_errors" and len(res.steps) == 3
    final = texts(outputs)[-1]
    assert "the model replied: Hmm, reply 1: the loop looks odd to me." in final
    assert "(stopping: 3 consecutive parse errors)" in final  # the whole message, not cut
    state = ip.run_cell("%whip_state").result
    dash = ip.display_formatter.format(state)[0]["text/html"]
    assert dash.count("The model replied") == 3 and "Hmm, reply 3" in dash


def test_no_tools_mode_answers_with_a_fix(ip: InteractiveShell, endpoint) -> None:
    res, outputs = run_agent(ip, "%whip_agent task1 --model fixer --no-tools")
    assert res.use_tools is False and res.success and res.stop_reason == "done"
    assert [s.action_type for s in res.steps] == ["submit_fix"]
    assert "tools" not in endpoint.for_model("fixer")[0]
    assert len(outputs) == 3 and "(success), stopped: done" in head_of(ip, res)


def test_configuration_errors_are_one_friendly_line(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HF_TOKEN", "API_KEY", "API_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    out, outputs = run_agent(ip, "%whip_agent task1")
    assert isinstance(out, Message) and outputs == []
    assert out.text().startswith("Error: no endpoint configured: set HF_TOKEN")
    assert "\n" not in out.text()
    monkeypatch.setenv("API_BASE_URL", "localhost:1234")
    out, _ = run_agent(ip, "%whip_agent task1")
    assert out.text().startswith("Error: API_BASE_URL must be an http(s) URL")
    out, _ = run_agent(ip, "%whip_agent task1 --max-turns 0")
    assert out.text() == "Error: --max-turns must be >= 1, got 0"
    monkeypatch.setenv("API_BASE_URL", "http://127.0.0.1:9/v1")
    out, _ = run_agent(ip, "%whip_agent task99")
    assert out.text().startswith("Error: Unknown task_id: task99.")


def test_help(ip: InteractiveShell) -> None:
    doc = ip.find_line_magic("whip_agent").__doc__
    assert "--max-turns MAX_TURNS" in doc and "--no-tools" in doc and "Ctrl-C" in doc
