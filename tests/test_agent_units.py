"""Agent pieces that need no kernel: tool schemas, reply parsing, rendering, config, JSONL."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from whipstudio_nb.agent import AgentConfig, AgentConfigError, EpisodeResult, StepRecord, load_jsonl
from whipstudio_nb.agent.config import DEFAULT_API_BASE_URL, DEFAULT_MODEL_NAME
from whipstudio_nb.agent.episode import StepTiming
from whipstudio_nb.agent.parsing import InvalidAction, parse_content, parse_fix, parse_tool_call
from whipstudio_nb.agent.render import render_observation, render_reset, truncate
from whipstudio_nb.agent.schemas import action_tools
from whipstudio_nb.models import (
    ExecuteSnippetAction,
    ExecuteSnippetObservation,
    Observation,
    ReplaceLinesAction,
    RunTrainingProbeObservation,
    SubmitFixAction,
    SubmitFixObservation,
)
from whipstudio_nb.tools import action_models, tool_names

# ----------------------------------------------------------------------------- schemas


def test_one_tool_per_action_named_as_its_action_type():
    tools = action_tools()
    assert [t["function"]["name"] for t in tools] == list(tool_names())
    for tool in tools:
        assert tool["type"] == "function"
        fn = tool["function"]
        params = fn["parameters"]
        model = action_models()[fn["name"]]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert "action_type" not in params["properties"]
        # every model field but action_type is a parameter; required ones are required
        fields = {k for k in model.model_fields if k != "action_type"}
        assert set(params["properties"]) == fields
        required = {k for k, f in model.model_fields.items() if f.is_required()}
        assert set(params.get("required", [])) == required
        assert fn["description"] and "title" not in json.dumps(params)


def test_tool_schema_carries_model_constraints():
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in action_tools()}
    steps = tools["run_training_probe"]["properties"]["steps"]
    assert (steps["type"], steps["minimum"], steps["maximum"]) == ("integer", 1, 500)
    assert tools["get_variable_state"]["properties"]["expressions"]["type"] == "array"
    assert tools["submit_fix"]["properties"]["fixed_code"]["type"] == "string"


# ----------------------------------------------------------------------------- parsing


def test_tool_call_parses_into_the_action_model():
    a = parse_tool_call("replace_lines", '{"start_line": 3, "end_line": 4, "new_code": "x = 1"}')
    assert isinstance(a, ReplaceLinesAction) and (a.start_line, a.end_line) == (3, 4)
    assert isinstance(parse_tool_call("view_code", ""), action_models()["view_code"])


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("execute_snippet", "{}", "field 'code' is required"),
        ("execute_snippet", '{"code": "1", "cod": 2}', "field 'cod' is not a valid field"),
        ("replace_lines", '{"start_line": "a", "end_line": 1, "new_code": ""}', "'start_line'"),
        ("execute_snippet", '{"code": ', "not valid JSON"),
        ("execute_snippet", "[1]", "must be a JSON object"),
        ("rm_rf", "{}", "unknown tool 'rm_rf'"),
        ("view_code", '{"action_type": "submit_fix"}', "field 'action_type'"),
    ],
)
def test_bad_tool_calls_name_the_problem(name, args, needle):
    a = parse_tool_call(name, args)
    assert isinstance(a, InvalidAction)
    assert needle in a.error
    assert len(a.error) < 300


def test_content_json_bare_fenced_or_after_prose():
    bare = '{"action_type": "execute_snippet", "code": "print(1)"}'
    fenced = f"Let me look.\n```json\n{bare}\n```\n"
    prose = f"I will run a snippet: {bare}"
    for text in (bare, fenced, prose, f"```\n{bare}\n```"):
        a = parse_content(text)
        assert isinstance(a, ExecuteSnippetAction) and a.code == "print(1)", text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty reply"),
        ("The bug is the learning rate.", "not a JSON action"),
        ('{"code": "x"}', "field 'action_type' is required"),
        ('{"action_type": "fly"}', "field 'action_type': unknown value 'fly'"),
        ('{"action_type": "inspect_tensor"}', "field 'target_expression' is required"),
        ('{"action_type": "run_training_probe", "code": "", "steps": 0}', "field 'steps'"),
    ],
)
def test_bad_content_names_the_field(text, needle):
    a = parse_content(text)
    assert isinstance(a, InvalidAction) and needle in a.error


def test_no_tools_reply_becomes_a_submission():
    code = "import torch\nx = torch.ones(2)\n"
    a = parse_fix(f"Here is the fix:\n```python\n{code}```\nDone.")
    assert isinstance(a, SubmitFixAction) and a.fixed_code == code
    a = parse_fix(json.dumps({"fixed_code": code, "explanation": "lr"}))
    assert isinstance(a, SubmitFixAction) and a.fixed_code == code and a.explanation == "lr"
    assert isinstance(parse_fix(code), SubmitFixAction)  # bare code that parses
    bad = parse_fix("I am not sure what is wrong.")
    assert isinstance(bad, InvalidAction) and "```python" in bad.error
    other = parse_fix('{"action_type": "execute_snippet", "code": "1"}')
    assert isinstance(other, InvalidAction) and "only submit_fix" in other.error


# ----------------------------------------------------------------------------- rendering


def test_reset_renders_code_with_line_numbers():
    obs = Observation(
        task_id="task1",
        task_description="Fix\n  it.",
        buggy_code="import torch\nx = 1\n",
        max_turns=10,
    )
    text = render_reset(obs)
    assert "Task task1: Fix it." in text and "Turns allowed: 10" in text
    assert "1 | import torch\n2 | x = 1" in text


def test_long_output_is_cut_with_a_marker_and_no_json_is_sent():
    out = "".join(f"line {i}\n" for i in range(2000))
    obs = ExecuteSnippetObservation(turn=2, stdout=out, stderr="boom", exit_code=1)
    text = render_observation(obs, max_turns=10)
    assert text.startswith("[execute_snippet] turn 2/10")
    assert "line 0" in text and "line 1999" in text and "[truncated " in text
    assert len(text) < 2500 and "stderr:\nboom" in text
    assert truncate("abc", 10) == "abc"

    probe = RunTrainingProbeObservation(
        turn=3, losses=[1.0 / (i + 1) for i in range(100)], grad_norms={"w": 0.5}
    )
    text = render_observation(probe)
    assert "(100)" in text and "more" in text and "w=0.5" in text

    sub = SubmitFixObservation(
        turn=4,
        episode_done=True,
        reward=0.42,
        error_log="LOSSES:[1, 2]",
        grader_details={
            "components": {"heldout_metric": 0.3, "trained": 1.0},
            "weights": {"heldout_metric": 0.5, "trained": 0.5},
            "val_acc": 0.61,
            "losses": list(range(300)),
            "variant": {"scale": 20.0},
        },
    )
    text = render_observation(sub)
    assert "score=0.42" in text and "heldout_metric=0.3 (weight 0.5)" in text
    assert "val_acc=0.61" in text and "{" not in text  # a summary, not a JSON dump
    assert len(text) < 700


def test_last_turn_reminder():
    obs = ExecuteSnippetObservation(turn=9)
    assert "submit_fix now" in render_observation(obs, max_turns=10)
    assert "submit_fix now" not in render_observation(
        obs.model_copy(update={"turn": 5}), max_turns=10
    )


# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_references():
    cfg = AgentConfig.from_env({})
    assert cfg.api_base_url == DEFAULT_API_BASE_URL == "https://router.huggingface.co/v1"
    assert cfg.model == DEFAULT_MODEL_NAME == "openai/gpt-oss-20b"
    assert cfg.success_threshold == 0.9 and cfg.max_steps is None
    assert cfg.resolved_api_key == "lm-studio"


def test_config_from_env_and_overrides():
    env = {
        "API_BASE_URL": "http://127.0.0.1:1234/v1",
        "MODEL_NAME": "m1",
        "API_KEY": "k1",
        "SUCCESS_SCORE_THRESHOLD": "0.75",
        "MAX_STEPS": "7",
    }
    cfg = AgentConfig.from_env(env)
    assert (cfg.api_base_url, cfg.model, cfg.api_key, cfg.success_threshold, cfg.max_steps) == (
        "http://127.0.0.1:1234/v1",
        "m1",
        "k1",
        0.75,
        7,
    )
    assert AgentConfig.from_env({**env, "HF_TOKEN": "hf"}).api_key == "hf"  # HF_TOKEN first
    cfg = AgentConfig.from_env(env, model="m2", api_base_url="http://h/v1", max_steps=3)
    assert (cfg.model, cfg.api_base_url, cfg.max_steps) == ("m2", "http://h/v1", 3)
    cfg.validate()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "no endpoint configured"),
        ({"API_BASE_URL": "localhost:1234"}, "API_BASE_URL must be an http(s) URL"),
        ({"HF_TOKEN": "x", "SUCCESS_SCORE_THRESHOLD": "high"}, "SUCCESS_SCORE_THRESHOLD"),
        ({"HF_TOKEN": "x", "MAX_STEPS": "0"}, "MAX_STEPS must be >= 1"),
    ],
)
def test_config_errors_are_clear(env, needle):
    with pytest.raises(AgentConfigError) as info:
        AgentConfig.from_env(env).validate()
    assert needle in str(info.value)


def test_a_local_endpoint_needs_no_token():
    AgentConfig.from_env({"API_BASE_URL": "http://localhost:1234/v1"}).validate()


# ----------------------------------------------------------------------------- JSONL


def test_trajectory_round_trip_and_strict_json(tmp_path):
    timing = StepTiming(started_at=1.0, policy_s=0.5, env_s=0.25)
    steps = [
        StepRecord(
            step=1,
            action_type="run_training_probe",
            action={"action_type": "run_training_probe", "code": "x", "steps": 2},
            thought="probe",
            observation={"action_type": "run_training_probe", "losses": [1.0, math.nan]},
            summary="2 losses",
            timing=timing,
        ),
        StepRecord(
            step=2,
            action_type="invalid",
            observation={"action_type": "invalid", "error": "PARSE_ERROR: x"},
            error="PARSE_ERROR: x",
            raw_response="garbage",
            timing=timing,
        ),
    ]
    res = EpisodeResult(
        task_id="task1",
        seed=3,
        model="m",
        max_turns=10,
        steps=steps,
        score=0.5,
        stop_reason="turn_limit",
        package_version="0.1.0",
    )
    path = res.save_jsonl(tmp_path / "sub" / "t.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["format"] == "whipstudio-trajectory/1"
    assert (header["task_id"], header["seed"], header["model"], header["n_steps"]) == (
        "task1",
        3,
        "m",
        2,
    )
    assert "NaN" not in path.read_text()  # strict JSON: non-finite floats become null
    rec = json.loads(lines[1], parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert rec["type"] == "step" and rec["observation"]["losses"] == [1.0, None]
    assert set(rec) >= {"observation", "action", "reward", "done", "timing"}
    back = load_jsonl(path)
    assert back.rewards == res.rewards and back.steps[1].raw_response == "garbage"
    assert back.model_dump(exclude={"steps"}) == res.model_dump(exclude={"steps"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "step"}\n')
    with pytest.raises(ValueError, match="no header"):
        load_jsonl(bad)


def test_importing_the_agent_stays_light():
    code = (
        "import sys, whipstudio_nb.agent\n"
        "heavy = [m for m in ('torch', 'openai', 'jupyter_client', 'zmq') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exports_are_what_they_claim():
    import whipstudio_nb.agent as agent

    for name in agent.__all__:
        assert getattr(agent, name) is not None
    assert callable(agent.run_baseline) and callable(agent.run_baseline_task)


def test_default_tasks_are_the_seed_tasks_that_exist():
    from whipstudio_nb.agent.baseline import SEED_TASKS, default_task_ids
    from whipstudio_nb.tasks import find_task_dirs

    ids = default_task_ids()
    assert SEED_TASKS == ("task1", "task2", "task3", "task4", "task5", "task6")
    assert ids == [t for t in SEED_TASKS if t in find_task_dirs()] and "task1" in ids
