"""The server's error model, without kernels: codes map to statuses, server exceptions are
WhipErrors with stable codes, request-validation messages, and error bodies carry the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, ValidationError

from whipstudio_nb.errors import ERROR_CODES, SandboxError, UnknownTaskError, WhipError
from whipstudio_nb.server.app import create_app
from whipstudio_nb.server.errors import STATUS_BY_CODE, describe_validation, status_for_code
from whipstudio_nb.server.guard import JSONLimitError
from whipstudio_nb.server.mcp import RateLimitedError
from whipstudio_nb.server.sessions import CapacityError, ShuttingDownError, UnknownSessionError

SERVER = Path(__file__).resolve().parent.parent / "whipstudio_nb" / "server"


def test_status_for_code() -> None:
    assert set(STATUS_BY_CODE) <= set(ERROR_CODES)
    expected = {
        "no_episode": 409,
        "episode_done": 409,
        "turn_limit": 409,
        "invalid_action": 422,
        "unknown_action": 422,
        "security_violation": 422,
        "syntax_error": 422,
        "too_large": 422,
        "edit_error": 200,
        "timeout": 200,
        "kernel_died": 200,
        "tool_error": 200,
        "sandbox_unavailable": 503,
        "unknown_task": 404,
        "unknown_session": 404,
        "capacity": 503,
        "shutting_down": 503,
        "rate_limited": 429,
        "task_pack": 500,
        "config": 500,
    }
    assert {code: status_for_code(code) for code in ERROR_CODES} == expected
    assert status_for_code(None) == 200
    assert status_for_code("no-such-code") == 500


@pytest.mark.parametrize(
    ("exc", "code", "base"),
    [
        (CapacityError(2, 2), "capacity", Exception),
        (ShuttingDownError(), "shutting_down", RuntimeError),
        (UnknownSessionError("e1", 60), "unknown_session", KeyError),
        (RateLimitedError("slow down", 2.0), "rate_limited", Exception),
        (JSONLimitError(422, "a string is too long"), "too_large", ValueError),
        (JSONLimitError(400, "nested too deep"), "invalid_action", ValueError),
    ],
)
def test_server_exceptions_are_whip_errors(exc: WhipError, code: str, base: type) -> None:
    assert isinstance(exc, WhipError) and isinstance(exc, base)
    assert exc.code == code and code in ERROR_CODES


def test_unknown_session_message_is_not_quoted() -> None:
    assert str(UnknownSessionError("e1", 60)).startswith("Unknown episode_id: e1 (")


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: str
    seed: int | None = None


def _errors(data: object) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        _Req.model_validate(data)
    return [{**e, "loc": ("body", *e["loc"])} for e in info.value.errors()]


class _Exc:
    def __init__(self, errs: list[dict]) -> None:
        self._errs = errs

    def errors(self) -> list[dict]:
        return self._errs


def test_describe_validation() -> None:
    describe = describe_validation
    assert describe(_Exc(_errors({}))) == (422, "Invalid request: field 'task_id' is required")  # type: ignore[arg-type]
    status, msg = describe(_Exc(_errors({"task_id": "t", "taskid": 1, "seed": "x"})))  # type: ignore[arg-type]
    assert status == 422 and "field 'taskid' is not accepted" in msg
    assert "field 'seed': Input should be a valid integer" in msg
    status, msg = describe(_Exc(_errors({"task_id": "t", "output": "1"})))  # type: ignore[arg-type]
    assert "never a submitted output" in msg
    body_list = [{"type": "model_attributes_type", "loc": ("body",), "msg": "bad"}]
    assert "must be a JSON object" in describe(_Exc(body_list))[1]  # type: ignore[arg-type]
    missing = [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
    assert describe(_Exc(missing)) == (422, "Invalid request: field 'body' is required")  # type: ignore[arg-type]
    bad_json = [{"type": "json_invalid", "loc": ("body", 3), "msg": "x", "ctx": {"error": "E"}}]
    assert describe(_Exc(bad_json)) == (400, "Malformed JSON body: E")  # type: ignore[arg-type]


def test_error_bodies_carry_the_code() -> None:
    app = create_app(sandbox_factory=lambda: None)  # type: ignore[arg-type,return-value]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.post("/reset", json={"task_id": "task99"})
        assert r.status_code == 404 and r.json()["code"] == "unknown_task"
        r = client.get("/state", params={"episode_id": "nope"})
        assert r.status_code == 404
        assert r.json()["code"] == "unknown_session" and r.json()["episode_id"] == "nope"
        r = client.post("/close", json={})
        assert r.status_code == 422 and r.json()["code"] == "invalid_action"
        r = client.post("/step", json={})
        assert r.status_code == 422 and r.json() == {
            "error": "Invalid request: field 'action' is required",
            "code": "invalid_action",
        }
        r = client.post("/step", json={"action": {"action_type": "view_code"}})
        assert r.status_code == 409 and r.json()["code"] == "no_episode"
        assert client.get("/nope").json() == {"error": "Not Found"}


def test_whip_errors_map_through_their_code() -> None:
    app = create_app(sandbox_factory=lambda: None)  # type: ignore[arg-type,return-value]
    raised = {
        "/capacity": CapacityError(3, 3),
        "/sandbox": SandboxError("no kernel"),
        "/closing": ShuttingDownError(),
        "/task": UnknownTaskError("t9", ["task1"]),
        "/pack": WhipError("broken pack"),
    }
    for path, exc in raised.items():
        app.add_api_route(path, _raiser(exc))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        r = client.get("/capacity")
        assert r.status_code == 503 and r.headers["retry-after"] == "30"
        assert r.json()["code"] == "capacity" and r.json()["max_sessions"] == 3
        r = client.get("/sandbox")
        assert r.status_code == 503 and r.headers["retry-after"] == "10"
        assert r.json() == {
            "error": "Sandbox unavailable: no kernel",
            "code": "sandbox_unavailable",
        }
        assert client.get("/closing").status_code == 503
        assert client.get("/task").status_code == 404
        r = client.get("/pack")
        assert r.status_code == 500 and r.json() == {"error": "Internal server error: WhipError"}


def _raiser(exc: Exception):
    async def route() -> None:
        raise exc

    return route


def test_ws_does_not_import_app() -> None:
    for name in ("ws.py", "service.py", "guard.py", "mcp_sessions.py", "pages.py"):
        tree = ast.parse((SERVER / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "app", (name, node.lineno)


def test_no_server_module_over_500_lines() -> None:
    for path in SERVER.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
