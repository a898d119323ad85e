"""The HTTP/WebSocket server against a real ``whip serve`` process on loopback: every endpoint,
every error shape, session isolation, concurrent WebSocket sessions, openenv-core's own client
and validator, and a hypothesis run against /openapi.json that must find no 500."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_proc import ServerProc, start_server
from websockets.sync.client import connect as ws_connect

from whipstudio_nb import list_tasks, load_task
from whipstudio_nb.sandbox import ALLOWED_IMPORTS
from whipstudio_nb.tools import tool_names

pytestmark = pytest.mark.slow

EPISODE_DONE = "Episode already complete. Call /reset to start a new episode."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(tmp_path_factory.mktemp("server"), "--no-rate-limit", "--max-sessions", "40")
    yield srv
    # uvicorn re-raises SIGTERM after its graceful shutdown
    assert srv.stop() in (0, -signal.SIGTERM), srv.log()
    assert "Application shutdown complete" in srv.log()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def client(server: ServerProc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def reset(client: httpx.Client, task_id: str = "task1", **extra) -> str:
    r = client.post("/reset", json={"task_id": task_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()["episode_id"]


def step(client: httpx.Client, eid: str | None, action: dict, **kw) -> httpx.Response:
    body = {"action": action}
    if eid is not None:
        body["episode_id"] = eid
    return client.post("/step", json=body, **kw)


# ------------------------------------------------------------------------- info endpoints


def test_health_metadata_schema(client: httpx.Client) -> None:
    h = client.get("/health").json()
    assert h["status"] == "healthy"
    assert h["tasks_available"] == len(list_tasks()) and h["tools_available"] == len(tool_names())
    assert isinstance(h["version"], str)
    meta = client.get("/metadata").json()
    assert meta["name"] == "whipstudio" and meta["description"]
    schema = client.get("/schema").json()
    assert set(schema) == {"action", "observation", "state"}
    assert set(schema["action"]["discriminator"]["mapping"]) == set(tool_names())
    obs_text = json.dumps(schema["observation"])
    assert "grader_details" in obs_text and "buggy_code" in obs_text
    assert "tool_call_history" in schema["state"]["properties"]
    assert client.get("/openapi.json").json()["info"]["version"]


def test_tasks_and_tools(client: httpx.Client) -> None:
    tasks = client.get("/tasks").json()["tasks"]
    assert [t["id"] for t in tasks] == [t.id for t in list_tasks()]
    assert {"id": "task1", "name": "Broken Training Loop", "difficulty": "easy"}.items() <= tasks[
        0
    ].items()
    tools = client.get("/tools").json()["tools"]
    assert [t["name"] for t in tools] == list(tool_names())
    by_name = {t["name"]: t for t in tools}
    snippet = by_name["execute_snippet"]
    assert snippet["description"] == "Run a Python code snippet to test hypotheses."
    assert "code" in snippet["action_schema"]["required"]
    assert {"stdout", "stderr", "exit_code", "timed_out"} <= set(
        snippet["observation_schema"]["properties"]
    )
    assert "grader_details" in by_name["submit_fix"]["observation_schema"]["properties"]


# ------------------------------------------------------------------------- an HTTP episode


def test_http_episode_reference_shapes(client: httpx.Client) -> None:
    r = client.post("/reset", json={"task_id": "task1"})
    assert r.status_code == 200
    obs = r.json()["observation"]
    eid = r.json()["episode_id"]
    assert obs["episode_id"] == eid
    assert obs["task_id"] == "task1" and obs["turn"] == 0 and obs["episode_done"] is False
    assert obs["buggy_code"] == load_task("task1").buggy_code
    assert {"task_description", "error_log", "last_reward"} <= set(obs)

    r = step(client, eid, {"action_type": "execute_snippet", "code": "print(6 * 7)"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["observation"]["stdout"] == "42\n" and body["observation"]["exit_code"] == 0
    assert body["reward"] == 0.0 and body["done"] is False and "error" not in body

    r = step(client, eid, {"action_type": "execute_snippet", "code": "undefined_var"})
    assert r.status_code == 200  # the reference's "Tool Execution Error" is an observation
    assert "NameError" in r.json()["observation"]["stderr"]

    st_ = client.get("/state", params={"episode_id": eid}).json()
    assert st_["turn"] == 2 and st_["task_id"] == "task1" and st_["submitted"] is False
    assert [h["action_type"] for h in st_["tool_call_history"]] == ["execute_snippet"] * 2
    assert client.get("/state", headers={"X-Episode-Id": eid}).json() == st_

    r = step(client, eid, {"action_type": "submit_fix"})  # the (buggy) working copy
    body = r.json()
    assert r.status_code == 200 and body["done"] is True
    assert body["observation"]["grader_details"]["components"]
    assert body["reward"] < 0.5

    r = step(client, eid, {"action_type": "view_code"})
    assert r.status_code == 409
    assert r.json()["error"] == EPISODE_DONE
    assert r.json()["episode_done"] is True and r.json()["reward"] == 0.0


def test_default_session_without_episode_id(client: httpx.Client) -> None:
    client.post("/reset", json={"task_id": "task2"})
    r = client.post("/step", json={"action": {"action_type": "view_code"}})
    assert r.status_code == 200
    assert client.get("/state").json()["task_id"] == "task2"
    eid = reset(client, "task1")  # the latest reset without an id becomes the default
    assert client.get("/state").json()["episode_id"] == eid


def test_reset_reuses_a_named_episode(client: httpx.Client) -> None:
    eid = reset(client, "task1")
    step(client, eid, {"action_type": "view_code"})
    r = client.post("/reset", json={"task_id": "task2"}, headers={"X-Episode-Id": eid})
    assert r.json()["episode_id"] == eid and r.json()["observation"]["task_id"] == "task2"
    assert client.get("/state", params={"episode_id": eid}).json()["turn"] == 0
    assert client.post("/close", json={"episode_id": eid}).json() == {
        "episode_id": eid,
        "closed": True,
    }
    r = client.get("/state", params={"episode_id": eid})
    assert r.status_code == 404 and r.json()["error"].startswith(f"Unknown episode_id: {eid}")


def test_isolation_two_clients(server: ServerProc) -> None:
    with (
        httpx.Client(base_url=server.url, timeout=60) as a,
        httpx.Client(base_url=server.url, timeout=60) as b,
    ):
        ea, eb = reset(a, "task1"), reset(b, "task2")
        assert ea != eb
        for i in range(3):
            ra = step(a, ea, {"action_type": "execute_snippet", "code": f"print('a{i}')"})
            rb = step(b, eb, {"action_type": "execute_snippet", "code": f"print('b{i}')"})
            assert ra.json()["observation"]["stdout"] == f"a{i}\n"
            assert rb.json()["observation"]["stdout"] == f"b{i}\n"
            assert ra.json()["observation"]["turn"] == rb.json()["observation"]["turn"] == i + 1
        step(a, ea, {"action_type": "submit_fix"})
        sa = a.get("/state", params={"episode_id": ea}).json()
        sb = b.get("/state", params={"episode_id": eb}).json()
        assert (sa["task_id"], sa["turn"], sa["submitted"]) == ("task1", 4, True)
        assert (sb["task_id"], sb["turn"], sb["submitted"]) == ("task2", 3, False)
        assert step(b, eb, {"action_type": "view_code"}).status_code == 200  # b still playing


# ------------------------------------------------------------------------- error shapes


def test_error_shapes(client: httpx.Client) -> None:
    avail = ", ".join(t.id for t in list_tasks())
    r = client.post("/reset", json={"task_id": "task99"})
    assert r.status_code == 404
    assert r.json() == {
        "error": f"Unknown task_id: task99. Available: {avail}",
        "code": "unknown_task",
    }

    r = client.post("/reset", content=b'{"task_id": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("Malformed JSON body")
    r = client.post("/reset", json={"task_id": "task1", "seed": "abc"})
    assert r.status_code == 422 and "seed" in r.json()["error"]
    r = client.post("/reset", json=[1, 2])
    assert r.status_code == 422 and "JSON object" in r.json()["error"]
    r = client.post("/reset", json={"taskid": "task1"})
    assert r.status_code == 422 and "'taskid' is not accepted" in r.json()["error"]
    r = client.post("/step", json={})
    assert (
        r.status_code == 422 and r.json()["error"] == "Invalid request: field 'action' is required"
    )
    r = client.post("/step", json={"action": "print(1)"})
    assert r.status_code == 422 and "action" in r.json()["error"]

    eid = reset(client, "task1")
    r = step(client, eid, {"action_type": "fly"})
    assert r.status_code == 422 and r.json()["error"].startswith("Unknown action_type: 'fly'.")
    r = step(client, eid, {"action_type": "run_training_probe", "code": "x", "steps": "many"})
    assert r.status_code == 422 and "steps" in r.json()["error"]
    r = step(client, eid, {"action_type": "execute_snippet", "code": "import requests"})
    assert r.status_code == 422
    assert r.json()["error"] == (
        "Security violation: import 'requests' is not allowed. Allowed: "
        + ", ".join(ALLOWED_IMPORTS)
    )
    assert r.json()["episode_done"] is False

    r = step(client, "no-such-episode", {"action_type": "view_code"})
    assert r.status_code == 404 and "Unknown episode_id: no-such-episode" in r.json()["error"]
    r = client.get("/nope")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = client.get("/reset")
    assert r.status_code == 405 and "error" in r.json()


def test_max_turns_exceeded(client: httpx.Client) -> None:
    eid = reset(client, "task1")  # task1 allows 10 turns
    for _ in range(10):  # reset_to_original spends a turn (view_code is free)
        assert step(client, eid, {"action_type": "reset_to_original"}).status_code == 200
    r = step(client, eid, {"action_type": "reset_to_original"})
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "Maximum turns (10) exceeded"
    assert body["episode_done"] is True and body["reward"] == 0.0 and body["turn"] == 11


# ------------------------------------------------------------------------- grader, baseline


def test_grader_grades_code_never_output(client: httpx.Client) -> None:
    task = load_task("task1")
    r = client.post("/grader", json={"task_id": "task1", "code": task.solution_code})
    assert r.status_code == 200, r.text
    good = r.json()
    assert good["score"] >= 0.9 and good["details"]["components"]
    # printing the metrics a grader might look for earns nothing
    cheat = "print('LOSSES:[0.8, 0.1]')\nprint('VAL_ACC:1.0')\n"
    assert client.post("/grader", json={"task_id": "task1", "code": cheat}).json()["score"] < 0.1
    r = client.post("/grader", json={"task_id": "task1", "code": cheat, "output": "VAL_ACC:1.0"})
    assert r.status_code == 422 and "never a submitted output" in r.json()["error"]
    r = client.post("/grader", json={"task_id": "task99", "code": "x"})
    assert r.status_code == 404 and r.json()["error"].startswith("Unknown task_id: task99.")
    r = client.post("/grader", json={"task_id": "task1"})
    assert r.status_code == 422 and "'code' is required" in r.json()["error"]


def test_baseline_endpoints_answer_cleanly(client: httpx.Client) -> None:
    # the agent's LLM endpoint is an unreachable loopback port: a clean answer, never a 500
    r = client.get("/baseline/task/task1", params={"model_id": "m-1", "use_tools": "false"})
    assert r.status_code in (200, 501, 502), r.text
    if r.status_code == 200:
        body = r.json()
        assert body["task_id"] == "task1" and body["status"] == "error"
        assert body["model_id"] == "m-1" and body["use_tools"] is False
    else:
        assert "error" in r.json()
    r = client.get("/baseline/task/task99")
    assert r.status_code == 404
    r = client.get("/baseline/task/task1", params={"use_tools": "maybe"})
    assert r.status_code == 422 and "use_tools" in r.json()["error"]
    r = client.get("/baseline", params={"model_id": "m-2"})
    assert r.status_code in (200, 501, 502), r.text
    if r.status_code == 200:
        body = r.json()
        assert set(body["baseline_scores"]) and body["model_id"] == "m-2"
        assert body["use_tools"] is True and "average" in body


def test_metrics(client: httpx.Client) -> None:
    m = client.get("/metrics").json()
    assert m["total_resets"] >= 5 and m["total_steps"] >= 10
    assert m["task_distribution"]["task1"] >= 3
    assert m["tool_usage"]["execute_snippet"] >= 2 and m["tool_usage"]["submit_fix"] >= 1
    assert 0.0 <= m["avg_reward"] <= 1.0


# ------------------------------------------------------------------------- MCP


def test_mcp(client: httpx.Client) -> None:
    r = client.post("/mcp", json={})
    assert r.status_code == 200 and r.json()["jsonrpc"] == "2.0" and r.json()["error"]
    r = client.post("/mcp", content=b"{oops", headers={"content-type": "application/json"})
    assert r.json()["error"]["code"] == -32700
    tools = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
    names = [t["name"] for t in tools["result"]["tools"]]
    assert names == list(tool_names())
    eid = reset(client, "task1")
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "execute_snippet", "arguments": {"code": "print(5)"}, "session_id": eid},
    }
    res = client.post("/mcp", json=call).json()
    assert res["id"] == 2 and res["result"]["isError"] is False
    assert res["result"]["structuredContent"]["observation"]["stdout"] == "5\n"
    assert client.get("/state", params={"episode_id": eid}).json()["turn"] == 1
    bad = client.post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "nope"}).json()
    assert bad["error"]["code"] == -32601


# ------------------------------------------------------------------------- WebSocket


def ws_call(ws, message: dict) -> dict:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=120))


def test_ws_error_codes(server: ServerProc) -> None:
    with ws_connect(server.ws_url) as ws:
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=30))["data"]["code"] == "INVALID_JSON"
        assert ws_call(ws, {"type": "dance"})["data"]["code"] == "UNKNOWN_TYPE"
        assert ws_call(ws, {"type": "step"})["data"]["code"] == "VALIDATION_ERROR"
        assert ws_call(ws, {"type": "step", "data": [1]})["data"]["code"] == "VALIDATION_ERROR"
        err = ws_call(ws, {"type": "reset", "data": {"task_id": "task99"}})["data"]
        assert err["code"] == "VALIDATION_ERROR" and err["message"].startswith("Unknown task_id")
        # an agent's mistake is an observation, as in the embedded env
        obs = ws_call(ws, {"type": "step", "data": {"action_type": "view_code"}})["data"]
        assert obs["observation"]["error"].startswith("No episode in progress")
        ok = ws_call(ws, {"type": "reset", "data": {}})
        assert ok["type"] == "observation" and ok["data"]["observation"]["task_id"] == "task1"
        # an HTTP client cannot take over a WebSocket session by its id
        wid = ok["data"]["observation"]["episode_id"]
        r = httpx.post(server.url + "/reset", json={"task_id": "task1", "episode_id": wid})
        assert r.status_code == 404 and "Unknown episode_id" in r.json()["error"]
        r = httpx.post(
            server.url + "/step", json={"action": {"action_type": "view_code"}, "episode_id": wid}
        )
        assert r.status_code == 404
        mcp = ws_call(
            ws, {"type": "mcp", "data": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}
        )
        assert mcp["type"] == "mcp" and mcp["data"]["result"]["tools"]
        ws.send(json.dumps({"type": "close"}))


def test_eight_concurrent_ws_sessions(server: ServerProc, client: httpx.Client) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def play(i: int) -> None:
        try:
            with ws_connect(server.ws_url) as ws:
                task = "task1" if i % 2 else "task2"
                r = ws_call(ws, {"type": "reset", "data": {"task_id": task}})
                assert r["data"]["observation"]["task_id"] == task
                barrier.wait(timeout=60)
                r = ws_call(
                    ws,
                    {
                        "type": "step",
                        "data": {"action_type": "execute_snippet", "code": f"print({i})"},
                    },
                )
                assert r["data"]["observation"]["stdout"] == f"{i}\n", r
                r = ws_call(ws, {"type": "step", "data": {"action_type": "reset_to_original"}})
                assert r["data"]["observation"]["turn"] == 2 and r["data"]["done"] is False
                s = ws_call(ws, {"type": "state"})["data"]
                assert (s["task_id"], s["turn"]) == (task, 2)
                assert [h["action_type"] for h in s["tool_call_history"]] == [
                    "execute_snippet",
                    "reset_to_original",
                ]
                ws.send(json.dumps({"type": "close"}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    # every WebSocket session is gone once its connection closed
    assert client.get("/health").json()["active_sessions"] < 40


def test_openenv_client_plays_an_episode(server: ServerProc) -> None:
    from openenv.core.generic_client import GenericEnvClient

    solution = load_task("task1").solution_code
    with GenericEnvClient(base_url=server.url).sync() as env:
        res = env.reset(task_id="task1")
        assert res.observation["task_id"] == "task1" and res.done is False
        res = env.step({"action_type": "execute_snippet", "code": "print('hi')"})
        assert res.observation["stdout"] == "hi\n" and res.reward == 0.0
        res = env.step({"action_type": "submit_fix", "fixed_code": solution})
        assert res.done is True and res.reward >= 0.9
        # grader details travel in a declared observation field, not in `metadata`
        details = res.observation["grader_details"]
        assert details["components"] and details["val_acc"] >= 0.9
        state = env.state()
        assert state["submitted"] is True and state["best_reward"] == res.reward
        # a server-side error reaches the client as its RuntimeError, with our code
        with pytest.raises(RuntimeError, match=r"Unknown task_id: task99.*VALIDATION_ERROR"):
            env.reset(task_id="task99")


def test_openenv_validate_passes(server: ServerProc) -> None:
    exe = Path(sys.executable).parent / "openenv"
    out = subprocess.run(
        [str(exe), "validate", "--url", server.url], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["passed"] is True and report["mode"] == "simulation"
    assert report["summary"]["failed_criteria"] == []


# ------------------------------------------------------------------------- fuzzing: no 500s

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if path == "/baseline":  # runs the agent over every task: exercised above
                continue
            ops.append((method.upper(), path, op))
    return ops


@st.composite
def requests_from_openapi(draw, ops: list[tuple[str, str, dict]]):
    method, path, op = draw(st.sampled_from(ops))
    if "{task_id}" in path:
        path = path.replace("{task_id}", draw(st.sampled_from(["task1", "x", "%20", "task99"])))
    params = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and draw(st.booleans()):
            params[p["name"]] = draw(st.text(max_size=10) | st.sampled_from(["true", "0", ""]))
    body = None
    if "requestBody" in op:
        fields = ["task_id", "seed", "episode_id", "action", "code", "timeout_s", "request_id"]
        keyed = st.dictionaries(st.sampled_from(fields), json_values, max_size=4)
        action = st.fixed_dictionaries(
            {"action_type": st.sampled_from(list(tool_names()))},
            optional={
                "code": st.text(max_size=30),
                "steps": json_values,
                "start_line": json_values,
                "end_line": json_values,
                "new_code": json_values,
                "expressions": json_values,
                "target_expression": st.text(max_size=10),
            },
        )
        body = draw(
            json_values
            | keyed
            | st.builds(lambda a, d: {**d, "action": a}, action, keyed)
            | st.binary(max_size=20)
        )
    return method, path, params, body


def test_fuzz_openapi_finds_no_500(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    ops = _operations(spec)
    assert {p for _, p, _ in ops} >= {"/reset", "/step", "/state", "/grader", "/tasks", "/mcp"}

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(requests_from_openapi(ops))
    def check(req) -> None:
        method, path, params, body = req
        kwargs: dict = {"params": params}
        if isinstance(body, bytes):
            kwargs["content"] = body
            kwargs["headers"] = {"content-type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        r = client.request(method, path, **kwargs)
        assert r.status_code < 500 or r.status_code in (501, 502, 503), (req, r.text)
        data = r.json()
        if r.status_code >= 400 and path != "/mcp":
            assert isinstance(data.get("error"), str) and data["error"], (req, r.text)

    check()
