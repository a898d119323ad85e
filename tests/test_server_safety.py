"""Attacks on a real ``whip serve`` with its defaults (loopback, no token): a web page driving
it cross-site, oversized and deeply nested bodies, spoofed X-Forwarded-For, held-open
connections, guessable or squatted episode ids. Each test is the attack; it must fail. The
rate-limit and proxy servers run no code, so they serve over a FakeSandbox (no kernels)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_proc import ServerProc, start_server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.slow

ALLOWED_ORIGIN = "https://notebooks.example.org"


def strict_loads(text: str | bytes) -> object:
    """json.loads that refuses the NaN/Infinity tokens Python's json would accept."""

    def refuse(token: str) -> object:
        raise ValueError(f"bare {token} in a response: not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(
        tmp_path_factory.mktemp("safety"),
        "--allow-origin",
        ALLOWED_ORIGIN,
        "--max-sessions",
        "4",
        "--rate-limit",
        "reset=200/60",
        "--rate-limit",
        "step=200/60",
        "--header-timeout",
        "2",
    )
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def client(server: ServerProc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def close_default(c: httpx.Client) -> None:
    """End this client's default episode, so that it holds no slot for later tests."""
    eid = c.get("/state").json().get("episode_id")
    if eid:
        c.post("/close", json={"episode_id": eid})


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------- cross-site requests


def test_ws_from_a_foreign_origin_is_refused(server: ServerProc) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws_connect(server.ws_url, origin="http://evil.example").close()
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # a look-alike of a loopback origin
        ws_connect(server.ws_url, origin="http://127.0.0.1.evil.example").close()
    port = server.url.rsplit(":", 1)[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", ALLOWED_ORIGIN, None):
        with ws_connect(server.ws_url, origin=origin) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "state"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "state"


def test_simple_cross_site_posts_are_refused(server: ServerProc, client: httpx.Client) -> None:
    # What a page can send without a CORS preflight: text/plain, form bodies, no body at all.
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "execute_snippet", "arguments": {"code": "print(1)"}},
    }
    body = json.dumps(call).encode()
    before = client.get("/metrics").json()["total_steps"]
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        for path in ("/mcp", "/reset", "/step", "/grader", "/close"):
            r = httpx.post(
                server.url + path,
                content=body,
                headers={"Content-Type": ctype, "Origin": "http://evil.example"},
            )
            assert r.status_code == 415, (path, ctype, r.text)
            assert "application/json" in r.json()["error"]
    r = httpx.post(server.url + "/reset")  # an empty body, no Content-Type
    assert r.status_code == 415
    assert client.get("/metrics").json()["total_steps"] == before
    ok = client.post("/reset", json={"task_id": "task1"})
    assert ok.status_code == 200
    r = client.post(
        "/step",
        content=json.dumps({"action": {"action_type": "view_code"}}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_no_permissive_cors(server: ServerProc) -> None:
    pre = httpx.options(
        server.url + "/mcp",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in pre.headers
    r = httpx.get(server.url + "/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_dns_rebinding_host_is_refused(server: ServerProc) -> None:
    # a page on evil.example whose name now resolves to 127.0.0.1 is same-origin with us
    port = server.url.rsplit(":", 1)[1]
    r = httpx.get(server.url + "/health", headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 403 and "Host" in r.json()["error"]
    r = httpx.post(
        server.url + "/reset", json={"task_id": "task1"}, headers={"Host": f"evil.example:{port}"}
    )
    assert r.status_code == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(server.url + "/health", headers={"Host": host}).status_code == 200


# --------------------------------------------------------------------- oversized input


def test_oversized_bodies_get_413_and_memory_stays_bounded(
    server: ServerProc, client: httpx.Client
) -> None:
    pid = server.proc.pid
    before = rss_kb(pid)
    big = json.dumps({"action": {"action_type": "execute_snippet", "code": "#" * 30_000_000}})
    r = client.post("/step", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text[:200]
    assert "1048576" in r.json()["error"] or "1 MiB" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while streaming
        yield b'{"action": {"action_type": "execute_snippet", "code": "'
        for _ in range(30):
            yield b"#" * 1_000_000
        yield b'"}}'

    r = client.post("/step", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    one_mb = json.dumps({"action": {"action_type": "execute_snippet", "code": "#" * 1_000_000}})
    r = client.post("/step", content=one_mb, headers={"Content-Type": "application/json"})
    assert r.status_code in (413, 422)
    with ws_connect(server.ws_url, max_size=None) as ws:  # a WebSocket message too
        ws.send(
            json.dumps(
                {"type": "step", "data": {"action_type": "view_code", "thought": "#" * 2_000_000}}
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    after = rss_kb(pid)
    print(f"server RSS before {before / 1024:.0f} MB, after {after / 1024:.0f} MB")
    assert after - before < 200 * 1024


def test_string_fields_are_capped(client: httpx.Client) -> None:
    client.post("/reset", json={"task_id": "task1"})
    code = "x = 1\n" * 50_000  # 300 KB, under the body cap, over the field cap
    r = client.post("/step", json={"action": {"action_type": "execute_snippet", "code": code}})
    assert r.status_code == 422, r.text[:300]
    assert "262144" in r.json()["error"]
    r = client.post("/grader", json={"task_id": "task1", "code": code})
    assert r.status_code == 422


def test_deep_nesting_is_a_client_error(server: ServerProc, client: httpx.Client) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/mcp", "/step", "/reset", "/grader"):
        r = client.post(path, content=deep, headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422), (path, r.status_code, r.text[:200])
    nested = {"a": None}
    for _ in range(500):
        nested = {"a": nested}
    r = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "x", "params": nested})
    assert r.status_code in (400, 422)
    with ws_connect(server.ws_url) as ws:
        ws.send(deep)
        err = json.loads(ws.recv(timeout=30))
        assert err["type"] == "error" and err["data"]["code"] in (
            "INVALID_JSON",
            "VALIDATION_ERROR",
        )
    # deeply nested *code* is the agent's problem: an in-band error, never a 500
    client.post("/reset", json={"task_id": "task1"})
    for code in ("-" * 200_000 + "1", "(" * 50_000 + ")" * 50_000, "[" * 10_000 + "]" * 10_000):
        r = client.post("/step", json={"action": {"action_type": "execute_snippet", "code": code}})
        assert r.status_code in (200, 422), (code[:5], r.status_code, r.text[:300])
        assert "error" in r.json() or r.json()["observation"]["stderr"]


def test_nan_and_infinity_tokens_in_requests_are_refused(client: httpx.Client) -> None:
    # Python's json would take them; strict JSON has no such tokens, in or out
    body = '{"action": {"action_type": "view_code"}, "timeout_s": NaN}'
    r = client.post("/step", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "NaN is not JSON" in r.json()["error"]
    r = client.post(
        "/reset", content='{"seed": Infinity}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400


def test_half_open_connections_are_dropped(server: ServerProc) -> None:
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    socks = []
    for _ in range(50):
        s = socket.create_connection((host, port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        socks.append(s)
    idle = socket.create_connection((host, port))  # sends nothing at all
    socks.append(idle)
    time.sleep(4)
    closed = 0
    for s in socks:
        s.settimeout(2)
        try:
            closed += s.recv(1024) == b""
        except (ConnectionResetError, TimeoutError, OSError):
            closed += 0
        s.close()
    assert closed == len(socks)


# --------------------------------------------------------------------- sessions


def test_clients_cannot_mint_episode_ids(client: httpx.Client) -> None:
    r = client.post("/reset", json={"task_id": "task1", "episode_id": "victim-chosen-id"})
    assert r.status_code == 404, r.text
    r = client.post("/reset", json={"task_id": "task1"}, headers={"X-Episode-Id": "mine"})
    assert r.status_code == 404
    eid = client.post("/reset", json={"task_id": "task1"}).json()["episode_id"]
    assert len(bytes.fromhex(eid)) >= 16  # 128 bits from the server
    again = client.post("/reset", json={"task_id": "task2", "episode_id": eid})
    assert again.status_code == 200 and again.json()["episode_id"] == eid


def test_default_session_is_per_client(server: ServerProc) -> None:
    local = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        httpx.Client(base_url=server.url, timeout=60) as a,
        httpx.Client(base_url=server.url, timeout=60, transport=local) as b,
    ):
        assert a.post("/reset", json={"task_id": "task3"}).status_code == 200
        sb = b.get("/state").json()
        assert sb.get("task_id") is None, sb  # b has no episode: it must not see a's
        r = b.post("/step", json={"action": {"action_type": "submit_fix"}})
        assert r.status_code == 409
        assert a.get("/state").json()["submitted"] is False
        close_default(a)


def test_finished_episodes_free_their_slot(client: httpx.Client) -> None:
    ids = []
    for _ in range(6):  # the cap is 4 live episodes
        r = client.post("/reset", json={"task_id": "task1"})
        assert r.status_code == 200, r.text
        eid = r.json()["episode_id"]
        ids.append(eid)
        body = {"episode_id": eid, "action": {"action_type": "submit_fix"}}
        assert client.post("/step", json=body).json()["done"] is True
    for eid in ids:  # still readable
        st = client.get("/state", params={"episode_id": eid}).json()
        assert st["submitted"] is True and st["episode_done"] is True


# --------------------------------------------------------------------- rate limits


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(
        tmp_path_factory.mktemp("limited"),
        "--rate-limit",
        "reset=5/60",
        "--rate-limit",
        "step=5/60",
        fake=True,  # resets and view_code only: nothing runs in a kernel
    )
    yield srv
    srv.stop()


def test_spoofed_forwarded_for_does_not_bypass_limits(limited: ServerProc) -> None:
    allowed = 0
    for i in range(12):
        r = httpx.post(
            limited.url + "/reset",
            json={"task_id": "task1"},
            headers={"X-Forwarded-For": f"10.0.{i}.{i}", "X-Real-IP": f"10.1.{i}.{i}"},
        )
        allowed += r.status_code == 200
        assert r.status_code in (200, 429), r.text
    print(f"resets allowed with spoofed X-Forwarded-For: {allowed}/12")
    assert allowed == 5


def test_ws_messages_and_mcp_calls_are_rate_limited(limited: ServerProc) -> None:
    local = httpx.HTTPTransport(local_address="127.0.0.3")  # a fresh client
    with httpx.Client(base_url=limited.url, transport=local, timeout=60) as c:
        call = {
            "jsonrpc": "2.0",
            "method": "tools/call",
            "params": {"name": "view_code", "arguments": {}},
        }
        codes = [c.post("/mcp", json={**call, "id": i}).json() for i in range(8)]
        limited_calls = [x for x in codes if "error" in x and "Rate limit" in x["error"]["message"]]
        assert len(limited_calls) == 3, codes
    with ws_connect(limited.ws_url) as ws:
        replies = []
        for _ in range(8):
            ws.send(json.dumps({"type": "step", "data": {"action_type": "view_code"}}))
            replies.append(json.loads(ws.recv(timeout=30)))
        # the loopback client 127.0.0.1 has spent its /step budget on nothing yet: 5 pass
        errs = [r for r in replies if r["type"] == "error"]
        assert len(errs) == 3 and all(e["data"]["code"] == "RATE_LIMITED" for e in errs), replies


# --------------------------------------------------------------------- strict JSON


def test_nan_probe_is_strict_json_over_http_ws_and_mcp(server: ServerProc) -> None:
    from whipstudio_nb import load_task

    buggy = load_task("task2").buggy_code
    probe = {"action_type": "run_training_probe", "code": buggy, "steps": 200}
    local = httpx.HTTPTransport(local_address="127.0.0.4")
    with httpx.Client(base_url=server.url, timeout=300, transport=local) as c:
        eid = c.post("/reset", json={"task_id": "task2"}).json()["episode_id"]
        r = c.post("/step", json={"episode_id": eid, "action": probe})
        assert r.status_code == 200, r.text[:500]
        obs = strict_loads(r.content)["observation"]  # type: ignore[index]
        check_nan_observation(obs)
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {
                "name": "run_training_probe",
                "session_id": eid,
                "arguments": {"code": buggy, "steps": 200},
            },
        }
        r = c.post("/mcp", json=call)
        assert r.status_code == 200
        res = strict_loads(r.content)["result"]  # type: ignore[index]
        check_nan_observation(res["structuredContent"]["observation"])
        check_nan_observation(strict_loads(res["content"][0]["text"])["observation"])  # type: ignore[index]
        assert c.get("/state", params={"episode_id": eid}).json()["turn"] == 2
        assert c.post("/close", json={"episode_id": eid}).status_code == 200
    with ws_connect(server.ws_url) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "task2"}}))
        ws.recv(timeout=60)
        ws.send(json.dumps({"type": "step", "data": probe}))
        frame = ws.recv(timeout=300)
        check_nan_observation(strict_loads(frame)["data"]["observation"])  # type: ignore[index]


def check_nan_observation(obs: dict) -> None:
    print(f"NaN probe: {len(obs['losses'])} losses, {len(obs['non_finite'])} sent as null")
    assert obs["loss_is_nan"] is True
    assert None in obs["losses"]
    nf = obs["non_finite"]
    assert any(p.startswith("/losses/") for p in nf) and set(nf.values()) <= {
        "NaN",
        "Infinity",
        "-Infinity",
    }
    for pointer, kind in nf.items():  # each pointer names a null in the document
        node: object = obs
        for part in pointer.lstrip("/").split("/"):
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        assert node is None, (pointer, kind)


# --------------------------------------------------------------------- property tests: no 500

json_leaf = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_any = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=10,
)
CHEAP_TOOLS = ["view_code", "undo_edit", "reset_to_original", "replace_lines", "inspect_diff"]
rpc_messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_leaf,
        "id": st.integers() | st.text(max_size=5) | json_any,
        "method": st.sampled_from(
            ["initialize", "ping", "tools/list", "tools/call", "nope", "notifications/initialized"]
        )
        | json_leaf,
        "params": json_any
        | st.fixed_dictionaries(
            {"name": st.sampled_from([*CHEAP_TOOLS, "fly"]) | json_leaf},
            optional={"arguments": json_any, "session_id": json_leaf},
        ),
    },
)
ws_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["reset", "step", "state", "mcp", "dance"]) | json_leaf},
    optional={
        "data": json_any
        | rpc_messages
        | st.fixed_dictionaries(
            {"action_type": st.sampled_from(CHEAP_TOOLS)},
            optional={
                "start_line": json_any,
                "end_line": json_any,
                "new_code": json_any,
                "proposed_code": json_any,
            },
        )
        | st.fixed_dictionaries({}, optional={"task_id": json_leaf, "seed": json_leaf}),
    },
)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_fuzz_mcp_finds_no_500(server: ServerProc) -> None:
    local = httpx.HTTPTransport(local_address="127.0.0.5")
    with httpx.Client(base_url=server.url, timeout=60, transport=local) as c:
        c.post("/reset", json={"task_id": "task1"})

        @FUZZ
        @given(rpc_messages | json_any | st.binary(max_size=30))
        def check(msg: object) -> None:
            raw = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
            r = c.post("/mcp", content=raw, headers={"Content-Type": "application/json"})
            assert r.status_code in (200, 400, 422, 429), (msg, r.status_code, r.text)
            body = strict_loads(r.content)
            assert isinstance(body, dict) and (body.get("jsonrpc") == "2.0" or "error" in body)

        check()
        close_default(c)


def test_fuzz_ws_frames_find_no_500(server: ServerProc) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.6", 0))
    sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    with ws_connect(server.ws_url, sock=sock) as ws:

        @FUZZ
        @given(ws_frames | json_any | st.text(max_size=20))
        def check(frame: object) -> None:
            if isinstance(frame, dict) and frame.get("type") == "close":
                return
            ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            reply = strict_loads(ws.recv(timeout=60))
            assert isinstance(reply, dict), reply
            assert reply["type"] in ("observation", "state", "mcp", "error"), reply
            if reply["type"] == "error":
                assert reply["data"]["code"] != "EXECUTION_ERROR", (frame, reply)

        check()
        ws.send(json.dumps({"type": "state"}))
        assert strict_loads(ws.recv(timeout=30))["type"] == "state"  # type: ignore[index]


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(
        tmp_path_factory.mktemp("proxy"),
        "--forwarded-allow-ips",
        "127.0.0.1",
        "--rate-limit",
        "reset=2/60",
        "--max-string",
        "1000",
        fake=True,  # resets and a refused step only: nothing runs in a kernel
    )
    yield srv
    srv.stop()


def test_forwarded_for_is_believed_from_a_named_proxy(behind_proxy: ServerProc) -> None:
    def reset(xff: str) -> int:
        h = {"X-Forwarded-For": xff}
        return httpx.post(behind_proxy.url + "/reset", json={}, headers=h).status_code

    assert [reset("10.0.0.1") for _ in range(3)] == [200, 200, 429]
    assert reset("10.0.0.2") == 200  # another client behind the proxy: its own budget


def test_string_cap_is_configurable(behind_proxy: ServerProc) -> None:
    h = {"X-Forwarded-For": "10.0.0.3"}
    action = {"action_type": "execute_snippet", "code": "#" * 1001}
    r = httpx.post(behind_proxy.url + "/step", json={"action": action}, headers=h)
    assert r.status_code == 422 and "1000 characters (field 'action.code')" in r.json()["error"]
