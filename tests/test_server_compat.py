"""Drop-in compatibility: a real ``whip serve`` answering the requests the original WhipStudio
clients send (its ``inference.py`` loop, the GRPO env client, ``examples/tool_agent.py``), the
TraceFix-style reset, openenv-core's MCPToolClient in both modes, and the reference doc's
examples. The requests are written here as those clients send them (same order, same bodies);
their code is not copied. A scripted OpenAI-compatible endpoint on loopback plays the model."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from server_proc import ServerProc, start_server

from whipstudio_nb import list_tasks, load_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(tmp_path_factory.mktemp("compat"), "--no-rate-limit")
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


class ScriptedLLM:
    """An OpenAI-compatible /v1/chat/completions that answers from a script."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                text = owner.replies.pop(0) if owner.replies else ""
                reply = {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def ask(self, prompt: str) -> str:
        from openai import OpenAI

        client = OpenAI(base_url=self.url, api_key="test", timeout=30)
        r = client.chat.completions.create(
            model="Qwen/Qwen2.5-Coder-32B-Instruct",
            messages=[{"role": "system", "content": "debug"}, {"role": "user", "content": prompt}],
            temperature=0.2,
            max_tokens=4096,
        )
        return r.choices[0].message.content or ""


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    s = ScriptedLLM()
    yield s
    s.httpd.shutdown()


END_LINE = re.compile(r"^\[END\] success=(true|false) steps=(\d+) score=\d\.\d{3} rewards=[\d.,]*$")


def inference_episode(url: str, llm: ScriptedLLM, task_id: str, use_tools: bool) -> str:
    """WhipStudio's inference.py for one task: the HTTP calls it makes, in its order, with its
    bodies (a fresh httpx.Client per call, raise_for_status, episode_id inside the action),
    and the [END] line it prints."""
    timeout = httpx.Timeout(120.0, connect=10.0)
    with httpx.Client(timeout=timeout) as c:
        r = c.post(f"{url}/reset", json={"task_id": task_id})
        r.raise_for_status()
        data = r.json()
        obs = data.get("observation", data)
        episode_id = obs.get("episode_id", "")
    best, rewards = 0.0, []
    for _turn in range(1, 9 if use_tools else 2):
        parsed = json.loads(llm.ask(f"Task: {obs['task_description']}\n{obs['buggy_code']}"))
        action: dict[str, Any] = {"action_type": parsed["action_type"], **parsed["action_params"]}
        action["episode_id"] = episode_id
        with httpx.Client(timeout=timeout) as c:
            r = c.post(f"{url}/step", json={"action": action})
            r.raise_for_status()
            result = r.json()
        reward = float(result.get("reward", 0) or 0)
        done = result.get("done", False) or result["observation"].get("episode_done", False)
        rewards.append(reward)
        if action["action_type"] == "submit_fix":
            best = max(best, reward)
            if reward >= 0.95 or done:
                break
        if done:
            break
    best = min(max(best, 0.1), 0.9999)  # the original clamps into (0, 1)
    rewards_str = ",".join(f"{r:.2f}" for r in rewards)
    success = str(best >= 0.7).lower()
    return f"[END] success={success} steps={len(rewards)} score={best:.3f} rewards={rewards_str}"


@pytest.mark.parametrize("task_id", ["task1", "task2", "task3"])
def test_inference_loop_with_tools_succeeds(server: ServerProc, llm: ScriptedLLM, task_id: str):
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    tasks = httpx.get(server.url + "/tasks").json()["tasks"]
    assert task_id in [t.get("id") for t in tasks]
    solution = load_task(task_id).solution_code
    llm.replies = [
        json.dumps(
            {
                "reasoning": "look",
                "action_type": "execute_snippet",
                "action_params": {"code": "print('probe')"},
            }
        ),
        json.dumps(
            {
                "reasoning": "fix",
                "action_type": "submit_fix",
                "action_params": {"fixed_code": solution},
            }
        ),
    ]
    line = inference_episode(server.url, llm, task_id, use_tools=True)
    print(line)
    m = END_LINE.match(line)
    assert m and m.group(1) == "true" and m.group(2) == "2", line


def test_inference_loop_without_tools(server: ServerProc, llm: ScriptedLLM) -> None:
    llm.replies = [
        json.dumps(
            {
                "action_type": "submit_fix",
                "action_params": {"fixed_code": load_task("task1").solution_code},
            }
        )
    ]
    line = inference_episode(server.url, llm, "task1", use_tools=False)
    assert END_LINE.match(line) and line.startswith("[END] success=true steps=1"), line


def test_grpo_env_client_submit_without_action_type(server: ServerProc) -> None:
    # train_grpo.py / improved_agent.py: reset, then one step with fixed_code and
    # attempt_number and no action_type (the original defaults it to submit_fix)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        c.post("/reset", json={"task_id": "task1"}).raise_for_status()
        fix = load_task("task1").solution_code
        r = c.post("/step", json={"action": {"fixed_code": fix, "attempt_number": 1}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["observation"]["action_type"] == "submit_fix"
        assert body["reward"] >= 0.9 and body["done"] is True and body["attempt_number"] == 1
        print(f"GRPO-style submit reward: {body['reward']}")


def test_original_action_fields_are_accepted_others_are_not(server: ServerProc) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        eid = c.post("/reset", json={"task_id": "task1"}).json()["episode_id"]
        # the original's flat action: every tool's fields, defaults included, on any action
        flat = {
            "action_type": "execute_snippet",
            "code": "print(2)",
            "episode_id": eid,
            "fixed_code": "",
            "explanation": "",
            "attempt_number": 1,
            "setup_code": "",
            "target_expression": "",
            "steps": 5,
            "expressions": [],
            "proposed_code": "",
            "metadata": {},
        }
        r = c.post("/step", json={"action": flat})
        assert r.status_code == 200 and r.json()["observation"]["stdout"] == "2\n", r.text
        assert r.json()["episode_id"] == eid
        r = c.post(
            "/step",
            json={
                "action": {
                    "action_type": "execute_snippet",
                    "code": "1",
                    "colour": "red",
                    "episode_id": eid,
                }
            },
        )
        assert r.status_code == 422
        assert "'colour' is not a valid field" in r.json()["error"]
        # an id inside the action addresses an episode; it never creates one
        r = c.post("/step", json={"action": {"action_type": "view_code", "episode_id": "mine"}})
        assert r.status_code == 404


def test_tracefix_reset_with_task_name(server: ServerProc) -> None:
    from openenv.core.generic_client import GenericEnvClient

    with GenericEnvClient(base_url=server.url).sync() as env:
        assert env.reset(task_name="task2").observation["task_id"] == "task2"
        name = list_tasks()[2].name
        assert env.reset(task_name=name).observation["task_id"] == list_tasks()[2].id
    r = httpx.post(server.url + "/reset", json={"task_name": "task3"})
    assert r.status_code == 200 and r.json()["observation"]["task_id"] == "task3"


def test_mcp_tool_client_websocket_mode(server: ServerProc) -> None:
    from openenv.core.mcp_client import MCPToolClient

    with MCPToolClient(base_url=server.url).sync() as env:
        env.reset(task_id="task1")
        tools = env.list_tools(use_cache=False)
        assert len(tools) >= 6 and "execute_snippet" in [t.name for t in tools]
        result = env.call_tool("execute_snippet", code="print(7 * 6)")
        assert result["observation"]["stdout"] == "42\n"
        assert result["observation"]["turn"] == 1  # listing the tools cost no turn
        with pytest.raises(RuntimeError, match="Tool not found"):
            env.call_tool("fly")


def test_mcp_tool_client_http_mode(server: ServerProc) -> None:
    import asyncio

    from openenv.core.mcp_client import MCPToolClient

    async def play() -> None:
        env = MCPToolClient(base_url=server.url)
        env.use_production_mode = True
        tools = await env.list_tools()
        assert len(tools) >= 6 and "submit_fix" in [t.name for t in tools]
        result = await env.call_tool("execute_snippet", code="print('http')")
        assert result["observation"]["stdout"] == "http\n"
        sid = env._production_session_id
        assert (
            sid and httpx.get(server.url + "/state", params={"episode_id": sid}).json()["turn"] == 1
        )
        await env.close()
        r = httpx.get(server.url + "/state", params={"episode_id": sid})
        assert r.status_code == 404  # openenv/session/close ended it

    asyncio.run(play())


def test_original_extra_endpoints(server: ServerProc) -> None:
    h = httpx.get(server.url + "/baseline/health").json()
    assert h["status"] in ("ok", "degraded") and {"hf_token_present", "model_ready"} <= set(h)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        eid = c.post("/reset", json={"task_id": "task1"}).json()["episode_id"]
        s = c.get("/session/state", params={"episode_id": eid}).json()
        assert (s["episode_id"], s["task_id"], s["step"], s["turn"]) == (eid, "task1", 0, 0)
        assert {"submitted", "done", "best_reward", "max_turns", "turns_remaining"} <= set(s)
        assert c.get("/session/state").json()["episode_id"] == eid  # the current episode
        assert c.get("/session/state", params={"episode_id": "nope"}).status_code == 404
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "WhipStudio" in page.text and 'href="/docs"' in page.text
    assert all(t.name in page.text for t in list_tasks()) and "execute_snippet" in page.text


def test_reference_doc_examples(server: ServerProc) -> None:
    """The curl examples of shared/reference/whipstudio-api.md: every documented key is
    there, and the documented error texts match word for word."""
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = c.post("/reset", json={"task_id": "task1"}).json()
        assert {
            "task_id",
            "task_description",
            "buggy_code",
            "error_log",
            "last_reward",
            "turn",
            "episode_done",
        } <= set(r["observation"])
        r = c.post(
            "/step",
            json={"action": {"action_type": "execute_snippet", "code": "import torch\nprint(1)"}},
        ).json()
        assert {"observation", "reward", "done"} <= set(r)
        assert {
            "action_type",
            "turn",
            "episode_done",
            "stdout",
            "stderr",
            "exit_code",
            "timed_out",
        } <= set(r["observation"])
        st = c.get("/state").json()
        assert {"turn", "task_id", "submitted", "best_reward", "tool_call_history"} <= set(st)
        assert {"turn", "action_type"} <= set(st["tool_call_history"][0])
        assert all({"id", "name", "difficulty"} <= set(t) for t in c.get("/tasks").json()["tasks"])
        tool = c.get("/tools").json()["tools"][0]
        assert {"name", "description", "action_schema", "observation_schema"} <= set(tool)
        g = c.post("/grader", json={"task_id": "task1", "code": "print(1)"}).json()
        assert {"score", "details"} <= set(g)
        assert {"status", "version", "tasks_available", "tools_available"} <= set(
            c.get("/health").json()
        )
        m = c.get("/metrics").json()
        assert {
            "total_resets",
            "total_steps",
            "avg_reward",
            "task_distribution",
            "tool_usage",
        } <= set(m)
        ids = ", ".join(t.id for t in list_tasks())
        r = c.post("/reset", json={"task_id": "task99"})
        assert r.json()["error"] == f"Unknown task_id: task99. Available: {ids}"
        r = c.post(
            "/step", json={"action": {"action_type": "execute_snippet", "code": "import requests"}}
        )
        assert r.json()["error"] == (  # the reference doc's text, word for word
            "Security violation: import 'requests' is not allowed. Allowed: torch, numpy, "
            "sklearn, pandas, matplotlib, scipy, math, random, os, sys, collections, itertools, "
            "functools, json, re, typing"
        )
        assert r.json()["episode_done"] is False
        c.post("/step", json={"action": {"action_type": "submit_fix"}})
        r = c.post("/step", json={"action": {"action_type": "view_code"}}).json()
        assert r["error"] == "Episode already complete. Call /reset to start a new episode."
        assert (r["episode_done"], r["reward"]) == (True, 0.0)
        c.post("/reset", json={"task_id": "task1"})
        for _ in range(10):  # view_code is free: reset_to_original costs a turn
            c.post("/step", json={"action": {"action_type": "reset_to_original"}})
        r = c.post("/step", json={"action": {"action_type": "reset_to_original"}}).json()
        assert r["error"] == "Maximum turns (10) exceeded"
        assert (r["episode_done"], r["reward"], r["turn"]) == (True, 0.0, 11)


def test_websocket_mcp_endpoint(server: ServerProc) -> None:
    from websockets.sync.client import connect

    def call(ws: Any, method: str, params: dict | None = None, rid: int = 1) -> dict:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}))
        return json.loads(ws.recv(timeout=120))

    with connect(server.url.replace("http://", "ws://") + "/mcp") as ws:
        assert len(call(ws, "tools/list")["result"]["tools"]) >= 6
        sid = call(ws, "openenv/session/create")["result"]["session_id"]
        res = call(ws, "tools/call", {"name": "execute_snippet", "arguments": {"code": "print(9)"}})
        assert res["result"]["data"]["observation"]["stdout"] == "9\n"
        err = call(ws, "openenv/session/close", {"session_id": sid})["error"]
        assert "Cannot close active WebSocket-managed session" in err["message"]
        ws.send("{oops")
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == -32700
