"""The registry is the single source: a tool added in this test, with one module's worth of code
and one register call, works in the env (in a real kernel), the LLM tools, the server's schemas
and the notebook's views, and is gone again when unregistered."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from whipstudio_nb import WhipEnv
from whipstudio_nb.agent.schemas import action_tools
from whipstudio_nb.models import ToolObservation
from whipstudio_nb.models import _ActionBase as ActionBase
from whipstudio_nb.server.schemas import action_schema, mcp_tools, tool_list
from whipstudio_nb.tools import Tool, ToolContext, registered, tool_names
from whipstudio_nb.tools._common import call_kernel
from whipstudio_nb.turns import costs_turn


class EchoAction(ActionBase):
    """Send a word through a sandbox kernel and back."""

    action_type: Literal["echo"] = "echo"
    word: str = Field(description="What to send.")


class EchoObservation(ToolObservation):
    action_type: Literal["echo"] = "echo"
    echoed: str = ""
    lines_in_working_copy: int = 0


def run(ctx: ToolContext, action: EchoAction) -> EchoObservation:
    out = call_kernel(ctx, ECHO, {"word": action.word})
    return EchoObservation(
        echoed=str(out.result.get("word", "")),
        lines_in_working_copy=len(ctx.copy.lines),
        error=out.error,
        error_code=out.code,
    )


# builtins.dict(args) returns its argument: an in-kernel half the sandbox has never heard of
ECHO = Tool(action=EchoAction, observation=EchoObservation, run=run, kernel_entry="builtins:dict")


def test_a_tool_added_in_one_place_works_everywhere(sandbox: Any) -> None:
    with registered(ECHO), WhipEnv(sandbox=sandbox) as env:
        assert "echo" in tool_names() and costs_turn("echo")
        env.reset("task1")
        res = env.step({"action_type": "echo", "word": "hello"})
        obs = res.observation
        assert isinstance(obs, EchoObservation) and obs.error is None
        assert obs.echoed == "hello" and obs.lines_in_working_copy > 10 and obs.turn == 1
        bad = env.step({"action_type": "echo"}).observation
        assert bad.error_code == "invalid_action" and "field 'word' is required" in str(bad.error)

        fn = next(t["function"] for t in action_tools() if t["function"]["name"] == "echo")
        assert fn["description"] == "Send a word through a sandbox kernel and back."
        assert fn["parameters"]["required"] == ["word"]
        assert "echo" in action_schema()["discriminator"]["mapping"]
        listed = {t["name"]: t for t in tool_list()}
        assert "echoed" in listed["echo"]["observation_schema"]["properties"]
        assert "echo" in {t["name"] for t in mcp_tools()}

        from whipstudio_nb.notebook.widgets.observation import observation_view

        view = observation_view(obs)  # no view of its own: a table of its fields
        assert "echoed" in view.text() and "hello" in view.text() and "<table" in view.html()

    assert "echo" not in tool_names()
    with WhipEnv(sandbox=sandbox) as env:
        env.reset("task1")
        gone = env.step({"action_type": "echo", "word": "x"}).observation
        assert gone.error_code == "unknown_action" and "Unknown action_type: 'echo'" in gone.error


def test_every_registered_tool_is_described_from_its_spec() -> None:
    from whipstudio_nb.tools import tools

    names = [t.name for t in tools()]
    assert names == [
        "execute_snippet",
        "inspect_tensor",
        "run_training_probe",
        "get_variable_state",
        "inspect_diff",
        "submit_fix",
        "view_code",
        "replace_lines",
        "undo_edit",
        "reset_to_original",
    ]
    assert {t.name for t in tools() if not t.costs_turn} == {"view_code", "inspect_diff"}
    assert all(t.summary and t.view for t in tools())
