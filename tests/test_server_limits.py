"""Server limits against a real ``whip serve`` with a token, a 2-session cap, a 5 s idle expiry
and a tight /step limit: auth, rate limits (429 + Retry-After), capacity (503 and
CAPACITY_REACHED), idle expiry, and SIGTERM closing every sandbox kernel."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from server_proc import ROOT, ServerProc, alive, descendants, start_server, ws_connect_from
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from whipstudio_nb import list_tasks
from whipstudio_nb.server.config import (
    DEFAULT_RATE_LIMITS,
    TOKEN_ENV_VAR,
    RateLimit,
    ServerConfig,
    parse_rate_limit,
)
from whipstudio_nb.server.manifest import render_manifest
from whipstudio_nb.server.ratelimit import RateLimiter
from whipstudio_nb.server.run import exposure_warning
from whipstudio_nb.tools import tool_names

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(
        tmp_path_factory.mktemp("limits"),
        "--token",
        TOKEN,
        "--max-sessions",
        "2",
        "--idle-timeout",
        "5",
        "--rate-limit",
        "step=5/60",
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        yield c


def wait_for_sessions(client: httpx.Client, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/health").json()["active_sessions"] != n:
        assert time.monotonic() < deadline, "sessions were not released"
        time.sleep(0.1)


def test_bearer_token_required_everywhere(server: ServerProc, client: httpx.Client) -> None:
    for path in ("/health", "/tasks", "/openapi.json", "/schema"):
        r = httpx.get(server.url + path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in r.json()["error"]
    r = httpx.post(server.url + "/reset", json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = httpx.get(server.url + "/health", headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    assert client.get("/health").json()["status"] == "healthy"

    with pytest.raises(InvalidStatus):
        ws_connect(server.ws_url).close()
    with ws_connect(server.ws_url, additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "task1"}}))
        assert json.loads(ws.recv(timeout=60))["data"]["observation"]["task_id"] == "task1"


def test_step_rate_limit(client: httpx.Client) -> None:
    for _ in range(5):  # no episode: a cheap 409, but each one counts
        assert client.post("/step", json={"action": {"action_type": "view_code"}}).status_code in (
            200,
            409,
        )
    r = client.post("/step", json={"action": {"action_type": "view_code"}})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"].startswith("Rate limit exceeded for /step: 5 requests per 60 s")
    # other endpoints have their own budgets
    assert client.get("/state").status_code == 200


def test_baseline_task_rate_limit(client: httpx.Client) -> None:
    first = client.get("/baseline/task/task1")
    assert first.status_code in (200, 501, 502), first.text
    second = client.get("/baseline/task/task1")
    assert second.status_code == 429
    assert 1 <= int(second.headers["retry-after"]) <= 30
    assert "1 request per 30 s" in second.json()["error"]


def test_capacity_503_and_ws_capacity_reached(server: ServerProc, client: httpx.Client) -> None:
    wait_for_sessions(client, 0)
    a = client.post("/reset", json={"task_id": "task1"}).json()["episode_id"]
    assert client.get("/state", params={"episode_id": a}).status_code == 200  # a is in use
    client.post("/reset", json={"task_id": "task2"}).raise_for_status()  # the default
    r = client.post("/reset", json={"task_id": "task1"})
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.json()["error"].startswith("Server at capacity: 2/2 sessions in use.")
    assert (r.json()["active_sessions"], r.json()["max_sessions"]) == (2, 2)
    with ws_connect(server.ws_url, additional_headers=AUTH) as ws:
        err = json.loads(ws.recv(timeout=30))
        assert err["type"] == "error" and err["data"]["code"] == "CAPACITY_REACHED"
    # an existing episode can still be reset, and closing one frees a slot
    assert client.post("/reset", json={"task_id": "task2", "episode_id": a}).status_code == 200
    assert client.post("/close", json={"episode_id": a}).status_code == 200
    assert client.post("/reset", json={"task_id": "task1"}).status_code == 200
    default = client.get("/state").json()["episode_id"]
    assert client.post("/close", json={"episode_id": default}).status_code == 200


def test_abandoned_anonymous_sessions_are_recycled_at_capacity(client: httpx.Client) -> None:
    wait_for_sessions(client, 0, timeout=15)
    # a reference-style client: reset and play without ever naming its episode
    ids = []
    for task in ("task1", "task2", "task3"):
        r = client.post("/reset", json={"task_id": task})
        assert r.status_code == 200, r.text
        ids.append(r.json()["episode_id"])
        assert client.get("/state").json()["task_id"] == task
    # the oldest, superseded and never named, made room; the others are intact
    assert client.get("/state", params={"episode_id": ids[0]}).status_code == 404
    assert client.get("/state", params={"episode_id": ids[1]}).json()["task_id"] == "task2"
    for eid in ids[1:]:
        assert client.post("/close", json={"episode_id": eid}).status_code == 200


def test_idle_sessions_expire(server: ServerProc, client: httpx.Client) -> None:
    wait_for_sessions(client, 0, timeout=15)  # the capacity test's sessions expire too
    eid = client.post("/reset", json={"task_id": "task1"}).json()["episode_id"]
    t0 = time.monotonic()
    assert client.get("/state", params={"episode_id": eid}).json()["task_id"] == "task1"
    wait_for_sessions(client, 0, timeout=15)  # /health does not count as activity
    assert time.monotonic() - t0 >= 4.5  # not before the idle timeout
    r = client.get("/state", params={"episode_id": eid})
    assert r.status_code == 404 and "expire" in r.json()["error"]
    with ws_connect(server.ws_url, additional_headers=AUTH) as ws:  # a silent WebSocket too
        err = json.loads(ws.recv(timeout=10))
        assert err["data"]["code"] == "SESSION_ERROR" and "idle" in err["data"]["message"]
    wait_for_sessions(client, 0)


def test_baseline_rate_limit(client: httpx.Client) -> None:
    first = client.get("/baseline", params={"use_tools": "false"})
    assert first.status_code in (200, 501, 502), first.text
    second = client.get("/baseline")
    assert second.status_code == 429
    assert 150 <= int(second.headers["retry-after"]) <= 180
    assert "1 request per 180 s" in second.json()["error"]


def test_sigterm_closes_every_kernel(server: ServerProc, client: httpx.Client) -> None:
    # from a client whose /step budget (WebSocket steps count too) the tests above left alone
    with ws_connect_from(server, "127.0.0.9", additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "task1"}}))
        ws.recv(timeout=60)
        ws.send(
            json.dumps(
                {"type": "step", "data": {"action_type": "execute_snippet", "code": "print(1)"}}
            )
        )
        assert json.loads(ws.recv(timeout=60))["data"]["observation"]["stdout"] == "1\n"
        kids = descendants(server.proc.pid)
        assert len(kids) >= 2, kids  # the fork server and its kernels
        server.proc.send_signal(signal.SIGTERM)  # with a WebSocket session still open
        assert server.proc.wait(60) in (0, -signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in kids if alive(p)], server.log()
    assert "Application shutdown complete" in server.log()
    assert "Traceback" not in server.log(), server.log()


# --------------------------------------------------------------------- configuration units


def test_exposure_warning_and_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    loud = exposure_warning(ServerConfig(host="0.0.0.0"))
    assert loud is not None and "WITHOUT AUTHENTICATION" in loud and "--token" in loud
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert exposure_warning(ServerConfig(host=host)) is None
    assert exposure_warning(ServerConfig(host="0.0.0.0", token="t")) is None
    monkeypatch.setenv(TOKEN_ENV_VAR, "from-env")
    cfg = ServerConfig(host="0.0.0.0")
    assert cfg.token == "from-env" and exposure_warning(cfg) is None


def test_rate_limit_parsing_and_window() -> None:
    assert parse_rate_limit("step=120/30") == ("step", RateLimit(120, 30.0))
    assert parse_rate_limit("reset=off") == ("reset", None)
    for bad in ("walk=1/2", "step", "step=0/60", "step=x/60"):
        with pytest.raises(ValueError):
            parse_rate_limit(bad)
    limiter = RateLimiter({"step": RateLimit(2, 10.0)})
    assert limiter.check("step", "a", now=0.0) is None
    assert limiter.check("step", "a", now=1.0) is None
    assert limiter.check("step", "a", now=2.0) == pytest.approx(8.0)
    assert limiter.check("step", "b", now=2.0) is None  # per client
    assert limiter.check("step", "a", now=10.5) is None  # the window slid
    assert limiter.check("reset", "a") is None  # no limit configured
    assert set(DEFAULT_RATE_LIMITS) >= {"baseline", "baseline_task", "step", "reset"}
    assert DEFAULT_RATE_LIMITS["baseline"] == RateLimit(1, 180.0)
    assert DEFAULT_RATE_LIMITS["reset"] == RateLimit(30, 60.0)


def test_serve_starts_in_seconds(server: ServerProc) -> None:
    print(f"whip serve answered /health {server.startup_s:.2f} s after launch")
    assert server.startup_s < 15


def test_serve_cli_rejects_bad_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "whipstudio_nb.cli", "serve", "--rate-limit", "fly=1/2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "rate limit must look like NAME=N/SECONDS" in out.stderr


def test_openenv_manifest_describes_the_tasks() -> None:
    import yaml

    manifest = yaml.safe_load((ROOT / "openenv.yaml").read_text())
    assert manifest["name"] == "whipstudio" and manifest["runtime"] == "fastapi"
    assert manifest["actions"] == list(tool_names())
    available = {t.id: t for t in list_tasks()}
    listed = {t["id"]: t for t in manifest["tasks"]}
    assert {f"task{i}" for i in range(1, 7)} <= set(listed)
    for tid, entry in listed.items():
        assert tid in available, f"openenv.yaml lists {tid}, which no pack provides"
        info = available[tid]
        assert (entry["name"], entry["difficulty"]) == (info.name, info.difficulty), (
            "openenv.yaml is stale: python -m whipstudio_nb.server.manifest > openenv.yaml"
        )
    assert yaml.safe_load(render_manifest())["tasks"] == [
        {
            "id": t.id,
            "name": t.name,
            "difficulty": t.difficulty,
            "category": t.category,
            "max_turns": t.max_turns,
        }
        for t in available.values()
    ]
