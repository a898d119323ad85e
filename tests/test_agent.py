"""The LLM agent end to end: the real openai client over HTTP to a scripted OpenAI-compatible
server on loopback, real WhipEnv kernels, real grading, and ``whip baseline`` as a subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from whipstudio_nb import WhipEnv, load_task
from whipstudio_nb.agent import (
    EndpointError,
    LLMPolicy,
    OraclePolicy,
    ScriptedPolicy,
    load_jsonl,
    run_baseline,
    run_baseline_task,
    run_episode,
)
from whipstudio_nb.tools import tool_names

SOLUTION = load_task("task1").solution_code

# --------------------------------------------------------------------- the scripted model


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def tool_call(name: str, args: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    call = {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }
    return _completion(
        {"role": "assistant", "content": content, "tool_calls": [call]}, "tool_calls"
    )


def text(content: str) -> dict[str, Any]:
    return _completion({"role": "assistant", "content": content}, "stop")


SERVER_ERROR = (500, {"error": {"message": "upstream exploded", "type": "server_error"}})


def brain(body: dict[str, Any]) -> Any:
    """What the scripted model answers, from the request alone (so that it also serves a
    ``whip baseline`` subprocess). The model name selects the behaviour."""
    model = body["model"]
    msgs = body["messages"]
    task = re.search(r"Task (task\d+):", msgs[1]["content"]).group(1)
    turns = sum(1 for m in msgs if m["role"] == "assistant")
    if model == "tool-solver" or (model == "mixed" and task == "task1"):
        if turns == 0:
            return tool_call("view_code", {}, content="Read the code first.")
        return tool_call("submit_fix", {"fixed_code": SOLUTION, "explanation": "order, lr"})
    if model == "json-solver":
        action = {"action_type": "submit_fix", "fixed_code": SOLUTION, "thought": "fix it"}
        return text(f"Here is my action:\n```json\n{json.dumps(action)}\n```")
    if model == "no-tools":
        return text(f"The fixed script:\n```python\n{SOLUTION}```\n")
    if model == "garbage":
        return text("I believe the learning rate is too high, probably.")
    if model == "repeater":
        return tool_call("view_code", {})
    if model == "field-error":
        if turns == 0:
            return tool_call("execute_snippet", {"thought": "run it"})  # 'code' missing
        return tool_call("view_code", {})
    if model == "no-function-calling":
        if "tools" in body:
            return (400, {"error": {"message": "tools are not supported", "type": "invalid"}})
        return text('{"action_type": "view_code", "thought": "look"}')
    if model == "slow":
        time.sleep(1.5)
        return tool_call("view_code", {})
    return SERVER_ERROR  # "http500", and "mixed" on any task but task1


class FakeLLM:
    """An OpenAI-compatible ``/v1/chat/completions`` on a free loopback port."""

    def __init__(self, script: Callable[[dict[str, Any]], Any]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                out = fake.script(body)
                status, payload = out if isinstance(out, tuple) else (200, out)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def for_model(self, model: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["body"]["model"] == model]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    f = FakeLLM(brain)
    yield f
    f.close()


@pytest.fixture
def agent_env(monkeypatch, fake):
    """The environment variables of the reference, pointing at the scripted model."""
    for var in ("HF_TOKEN", "MODEL_NAME", "SUCCESS_SCORE_THRESHOLD", "MAX_STEPS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("API_BASE_URL", fake.url)
    monkeypatch.setenv("API_KEY", "test-key")
    monkeypatch.setenv("WHIP_AGENT_BACKOFF_S", "0.01")
    monkeypatch.setenv("WHIP_AGENT_MAX_RETRIES", "2")


def policy(fake: FakeLLM, model: str, **kw: Any) -> LLMPolicy:
    return LLMPolicy(model, api_base_url=fake.url, api_key="test-key", backoff_s=0.01, **kw)


# --------------------------------------------------------------------- scenarios


def test_solves_task1_with_tool_calls(fake, make_env):
    env = make_env()
    seen = []
    res = run_episode(env, policy(fake, "tool-solver"), "task1", on_step=seen.append)
    assert res.success and res.score >= 0.9 and res.stop_reason == "done"
    assert [s.action_type for s in res.steps] == ["view_code", "submit_fix"]
    assert [s.step for s in seen] == [1, 2]  # on_step saw every step as it happened
    assert res.steps[0].thought == "Read the code first."  # the content rides along
    assert res.fixed_code == SOLUTION and "LOSSES" in res.output
    assert res.model == "tool-solver" and res.use_tools is True

    reqs = fake.for_model("tool-solver")
    assert len(reqs) == 2
    first, second = reqs
    assert first["temperature"] == 0
    assert [t["function"]["name"] for t in first["tools"]] == list(tool_names())
    assert first["messages"][0]["role"] == "system"
    assert " 1 | import torch" in first["messages"][1]["content"]  # code with line numbers
    tool_reply = second["messages"][-1]
    assert tool_reply["role"] == "tool" and tool_reply["tool_call_id"] == "call_view_code"
    assert tool_reply["content"].startswith("[view_code] turn 0/10")  # view_code is free
    assert not tool_reply["content"].lstrip().startswith("{")  # text, not a JSON dump
    auth = [r["auth"] for r in fake.requests if r["body"]["model"] == "tool-solver"]
    assert set(auth) == {"Bearer test-key"}


def test_solves_task1_with_a_json_answer_in_the_content(fake, agent_env, sandbox):
    out = run_baseline_task(
        "task1", model="json-solver", env_factory=lambda: WhipEnv(sandbox=sandbox)
    )
    assert out["status"] == "ok" and out["score"] >= 0.9 and out["success"] is True
    for key in (
        "task_id",
        "score",
        "status",
        "model_id",
        "use_tools",
        "max_turns",
        "fixed_code",
        "output",
        "attempts",
        "tool_history",
    ):
        assert key in out, key
    assert (out["task_id"], out["model_id"], out["use_tools"], out["max_turns"]) == (
        "task1",
        "json-solver",
        True,
        10,
    )
    assert out["fixed_code"] == SOLUTION and "LOSSES" in out["output"]
    assert [a["action_type"] for a in out["attempts"]] == ["submit_fix"]
    assert out["attempts"][0]["thought"] == "fix it"
    assert out["tool_history"][0]["observation"]["reward"] == out["score"]
    json.dumps(out)  # an HTTP response body


def test_garbage_three_times_ends_with_the_parse_error_stop(fake, make_env):
    env = make_env()
    res = run_episode(env, policy(fake, "garbage"), "task1")
    assert res.stop_reason == "parse_errors" and not res.success and res.score == 0.0
    assert len(res.steps) == 3 and res.rewards == [0.0, 0.0, 0.0]
    assert all(s.error.startswith("PARSE_ERROR:") for s in res.steps)
    assert [s.done for s in res.steps] == [False, False, True]
    assert res.steps[0].raw_response.startswith("I believe")
    assert env.state().turn == 0  # parse errors never reached the environment
    reqs = fake.for_model("garbage")
    assert len(reqs) == 3
    feedback = reqs[1]["messages"][-1]
    assert feedback["role"] == "user" and "PARSE_ERROR" in feedback["content"]
    assert "action_type" in feedback["content"]  # names the field the model must give


def test_validation_errors_go_back_naming_the_field(fake, make_env):
    env = make_env()
    res = run_episode(env, policy(fake, "field-error"), "task1", max_turns=2)
    assert res.stop_reason == "turn_limit" and len(res.steps) == 2
    assert res.steps[0].action_type == "execute_snippet"
    assert "field 'code' is required" in res.steps[0].error
    reply = fake.for_model("field-error")[1]["messages"][-1]
    assert reply["role"] == "tool" and "field 'code' is required" in reply["content"]


def test_an_endpoint_without_function_calling_gets_json_actions(fake, make_env):
    env = make_env()
    res = run_episode(env, policy(fake, "no-function-calling"), "task1", max_turns=1)
    assert [s.action_type for s in res.steps] == ["view_code"] and res.steps[0].error is None
    assert res.steps[0].thought == "look"
    with_tools, without = fake.for_model("no-function-calling")
    assert "tools" in with_tools and "tools" not in without


def test_the_same_action_three_times_ends_with_the_repeat_stop(fake, make_env):
    env = make_env()
    res = run_episode(env, policy(fake, "repeater"), "task1")
    assert res.stop_reason == "repeat" and not res.success
    assert [s.action_type for s in res.steps] == ["view_code"] * 3
    assert res.steps[-1].done and res.steps[-1].error.startswith("REPEAT_STOP")
    assert len(env.state().tool_call_history) == 2  # the third repeat was not executed


def test_http_500_fails_the_task_cleanly_after_bounded_retries(fake, agent_env, sandbox):
    before = len(fake.for_model("http500"))
    out = run_baseline_task("task1", model="http500", env_factory=lambda: WhipEnv(sandbox=sandbox))
    assert out["status"] == "error" and out["score"] == 0.0 and out["success"] is False
    assert "HTTP 500: upstream exploded" in out["error"] and "failed 3 times" in out["error"]
    assert len(fake.for_model("http500")) - before == 3  # 1 try + 2 retries, then stop

    summary = run_baseline(
        ["task1", "task2"], model="http500", env_factory=lambda: WhipEnv(sandbox=sandbox)
    )
    assert summary["baseline_scores"] == {"task1": 0.0, "task2": 0.0}
    assert summary["average"] == 0.0 and summary["model_id"] == "http500"
    assert summary["use_tools"] is True and set(summary["errors"]) == {"task1", "task2"}


def test_backoff_doubles_and_timeouts_and_refused_connections_fail_cleanly(fake):
    sleeps: list[float] = []
    p = LLMPolicy(
        "http500",
        api_base_url=fake.url,
        api_key="k",
        max_retries=3,
        backoff_s=0.5,
        sleep=sleeps.append,
    )
    obs = _reset_obs()
    with pytest.raises(EndpointError, match="HTTP 500"):
        p(obs, [])
    assert sleeps == [0.5, 1.0, 2.0]

    slow = LLMPolicy(
        "slow", api_base_url=fake.url, api_key="k", max_retries=1, backoff_s=0.01, timeout_s=0.3
    )
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match="timed out"):
        slow(obs, [])
    assert time.monotonic() - t0 < 3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    refused = LLMPolicy(
        "x", api_base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=1, backoff_s=0.01
    )
    with pytest.raises(EndpointError, match="connection failed"):
        refused(obs, [])


def test_no_tools_mode_answers_with_a_fix(fake, make_env):
    env = make_env()
    res = run_episode(env, policy(fake, "no-tools", use_tools=False), "task1")
    assert res.success and [s.action_type for s in res.steps] == ["submit_fix"]
    (req,) = fake.for_model("no-tools")
    assert "tools" not in req and req["temperature"] == 0
    prompt = req["messages"][1]["content"]
    assert "```python\nimport torch" in prompt  # the task, with the plain script to fix
    assert res.use_tools is False


def test_scripted_policy_and_interrupting_keeps_the_steps(make_env):
    env = make_env()
    script = ScriptedPolicy(
        [
            {"action_type": "view_code"},
            {
                "action_type": "replace_lines",
                "start_line": 1,
                "end_line": 1,
                "new_code": "import torch",
            },
            {"action_type": "undo_edit"},
        ]
    )
    res = run_episode(env, script, "task1")
    assert res.stop_reason == "policy_stopped" and len(res.steps) == 3
    assert res.steps[1].summary == "Replaced lines 1-1."

    def stop_after_two(rec):
        if rec.step == 2:
            raise KeyboardInterrupt

    res = run_episode(
        env,
        ScriptedPolicy([{"action_type": "view_code"}] * 2 + [{"action_type": "undo_edit"}]),
        "task1",
        on_step=stop_after_two,
    )
    assert res.stop_reason == "interrupted" and len(res.steps) == 2

    res = run_episode(
        env, lambda obs, hist: None if hist else {"action_type": "view_code"}, "task1"
    )
    assert res.stop_reason == "policy_stopped" and [s.action_type for s in res.steps] == [
        "view_code"
    ]

    def broken(obs, hist):
        raise RuntimeError("policy bug")

    res = run_episode(env, broken, "task1")
    assert res.stop_reason == "policy_error" and res.error == "RuntimeError: policy bug"

    stop = threading.Event()
    stop.set()
    res = run_episode(env, script, "task1", stop=stop)
    assert res.stop_reason == "interrupted" and res.steps == []


def test_a_working_copy_submission_records_the_code_that_was_graded(make_env):
    env = make_env()
    buggy = load_task("task1").buggy_code.splitlines()
    lr = next(i for i, ln in enumerate(buggy, 1) if "lr=10.0" in ln)
    early = next(i for i, ln in enumerate(buggy, 1) if ln == "    optimizer.step()")
    back = next(i for i, ln in enumerate(buggy, 1) if "loss.backward()" in ln)
    assert lr < early < back
    edits = [  # bottom-up, so that line numbers stay valid
        (back, back, "    loss.backward()\n    optimizer.step()"),
        (early, early, ""),
        (lr, lr, buggy[lr - 1].replace("lr=10.0", "lr=0.05")),
    ]
    script = ScriptedPolicy(
        [
            {"action_type": "replace_lines", "start_line": a, "end_line": b, "new_code": c}
            for a, b, c in edits
        ]
        + [{"action_type": "submit_fix"}]
    )
    res = run_episode(env, script, "task1")
    assert res.stop_reason == "done" and res.success
    assert res.fixed_code is not None and "lr=0.05" in res.fixed_code
    assert res.fixed_code == res.steps[-2].observation["code"]


def test_oracle_policy_submits_the_reference_fix(make_env, tmp_path):
    env = make_env()
    res = run_episode(env, OraclePolicy(), "task1", seed=2)
    assert res.success and res.seed == 2 and res.model == "oracle"
    assert res.fixed_code == load_task("task1", seed=2).solution_code
    back = load_jsonl(res.save_jsonl(tmp_path / "oracle.jsonl"))
    assert back.score == res.score and back.steps[0].action["fixed_code"] == res.fixed_code
    assert back.initial_observation["task_id"] == "task1"


def test_config_error_is_reported_not_raised(monkeypatch):
    for var in ("HF_TOKEN", "API_KEY", "API_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    out = run_baseline_task("task1", model="m")
    assert out["status"] == "error" and "no endpoint configured" in out["error"]
    summary = run_baseline(["task1"], model="m")
    assert summary["baseline_scores"] == {"task1": 0.0} and "no endpoint" in summary["error"]


def test_unknown_task_is_reported_not_raised(agent_env, sandbox):
    out = run_baseline_task("task99", model="m", env_factory=lambda: WhipEnv(sandbox=sandbox))
    assert out["status"] == "error" and out["error"].startswith("Unknown task_id: task99.")


def _reset_obs():
    from whipstudio_nb.models import Observation

    return Observation(task_id="task1", task_description="d", buggy_code="x = 1\n", max_turns=10)


# --------------------------------------------------------------------- whip baseline

START = re.compile(r"^\[START\] task=(\S+) env=whipstudio model=(\S+)$")
STEP = re.compile(
    r"^\[STEP\] step=(\d+) action=(\w+) reward=(\d+\.\d\d) done=(true|false) error=(.+)$"
)
END = re.compile(
    r"^\[END\] success=(true|false) steps=(\d+) score=(\d+\.\d\d) "
    r"rewards=((?:\d+\.\d\d(?:,\d+\.\d\d)*)?)$"
)


def whip(fake: FakeLLM, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_TOKEN", "MODEL_NAME", "SUCCESS_SCORE_THRESHOLD", "MAX_STEPS")
    }
    env.update(
        API_BASE_URL=fake.url,
        API_KEY="test-key",
        WHIP_AGENT_BACKOFF_S="0.01",
        WHIP_AGENT_MAX_RETRIES="2",
    )
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "whipstudio_nb.cli", "baseline", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_whip_baseline_prints_exactly_the_reference_lines(fake, tmp_path):
    traj = tmp_path / "traj"
    proc = whip(
        fake,
        "--task",
        "task1",
        "--task",
        "task2",
        "--model",
        "mixed",
        "--save-trajectories",
        str(traj),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for line in lines:  # nothing else on stdout
        assert START.match(line) or STEP.match(line) or END.match(line), line
    assert lines[0] == "[START] task=task1 env=whipstudio model=mixed"
    assert lines[1] == "[STEP] step=1 action=view_code reward=0.00 done=false error=null"
    m = STEP.match(lines[2])
    assert m and m.group(2) == "submit_fix" and m.group(4) == "true" and m.group(5) == "null"
    score = m.group(3)
    assert float(score) >= 0.9
    assert lines[3] == f"[END] success=true steps=2 score={score} rewards=0.00,{score}"
    assert lines[4:] == [
        "[START] task=task2 env=whipstudio model=mixed",
        "[END] success=false steps=0 score=0.00 rewards=",
    ]
    assert "HTTP 500" in proc.stderr and "Traceback" not in proc.stderr

    t1, t2 = load_jsonl(traj / "task1.jsonl"), load_jsonl(traj / "task2.jsonl")
    assert (t1.task_id, t1.model, t1.success, t1.n_steps) == ("task1", "mixed", True, 2)
    assert t1.steps[1].observation["action_type"] == "submit_fix"
    assert t1.steps[1].timing.env_s > 0 and t1.package_version
    assert (t2.stop_reason, t2.success, t2.n_steps) == ("endpoint_error", False, 0)
    header = json.loads((traj / "task1.jsonl").read_text().splitlines()[0])
    assert header["type"] == "header" and header["seed"] is None


def test_whip_baseline_no_tools_json_and_parse_error_lines(fake):
    proc = whip(
        fake, "--task", "task1", "--model", "garbage", "--no-tools", "--json", "--max-turns", "5"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # only the JSON on stdout
    assert out == {
        "baseline_scores": {"task1": 0.0},
        "average": 0.0,
        "model_id": "garbage",
        "use_tools": False,
    }
    step_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[STEP]")]
    assert len(step_lines) == 3
    for n, line in enumerate(step_lines, 1):
        m = STEP.match(line)
        assert m and m.group(1) == str(n) and m.group(2) == "submit_fix"
        assert m.group(5).startswith("PARSE_ERROR: no fixed script found")
    assert step_lines[-1].split(" error=")[0].endswith("done=true")
    assert "tools" not in fake.for_model("garbage")[-1]


def test_whip_baseline_usage_and_config_errors_exit_nonzero(fake):
    proc = whip(fake, "--task", "task99")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Unknown task_id: task99. Available: task1" in proc.stderr
    proc = whip(fake, "--task", "task1", API_BASE_URL="", API_KEY="")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "no endpoint configured" in proc.stderr and "Traceback" not in proc.stderr
    proc = whip(fake, "--max-turns", "zero")
    assert proc.returncode == 2 and "--max-turns" in proc.stderr
