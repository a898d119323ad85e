"""The agent run dashboard of ``%whip_agent``: one row per step (thought, action, observation
summary, reward) under a head line (task, model, status, score).

It is redrawn after every step through a display handle, so it is a static view (text/plain and
text/html): it updates live in Jupyter, and an export or a terminal shows its last state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import GREEN, GREY, RED, View, badge, esc, table, text_table

__all__ = ["AgentRunView", "action_brief"]

MAX_THOUGHT = 240
MAX_ARG = 40


def _one_line(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def action_brief(action: dict[str, Any] | None, action_type: str = "") -> str:
    """``replace_lines start_line=3 end_line=4 new_code=<2 lines>``: the action in one line."""
    if not action:
        return action_type
    parts = [str(action.get("action_type") or action_type)]
    for key, value in action.items():
        if key in ("action_type", "thought") or value is None:
            continue
        if isinstance(value, str) and "\n" in value.strip("\n"):
            shown = f"<{len(value.strip(chr(10)).splitlines())} lines>"
        else:
            shown = _one_line(value if isinstance(value, str) else repr(value), MAX_ARG)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def _observed(step: Any) -> str:
    """The observation column: the summary; for an error the whole message (never cut in the
    middle of its reason) and, for a reply that did not parse, what the model said."""
    if not step.error:
        return _one_line(step.summary, 200)
    text = _one_line(step.error, 600)
    raw = getattr(step, "raw_response", None)
    if raw is not None:
        reply = _one_line(raw, 300) or "(empty reply)"
        text += f" | the model replied: {reply}"
    return text


class AgentRunView(View):
    """An agent's episode so far (``result`` None: still running) or finished."""

    title = "agent-run"

    def __init__(
        self,
        task_id: str,
        model: str | None,
        steps: Sequence[Any] = (),
        max_turns: int | None = None,
        result: Any = None,
        compact: bool = False,
        head: bool = True,
    ) -> None:
        self.task_id, self.model, self.max_turns = task_id, model, max_turns
        self.steps = list(steps)
        self.result = result
        self.compact = compact
        self.show_head = head  # False: the rows only (the head line is shown elsewhere)

    @classmethod
    def from_result(cls, result: Any, compact: bool = False, head: bool = True) -> AgentRunView:
        """The finished dashboard of an ``EpisodeResult`` (e.g. one read back from JSON Lines)."""
        return cls(
            result.task_id, result.model, result.steps, result.max_turns, result, compact, head
        )

    def head(self) -> str:
        who = f"Agent {self.model or 'policy'} on {self.task_id}"
        n = len(self.steps)
        r = self.result
        if r is None:
            limit = f" of at most {self.max_turns}" if self.max_turns else ""
            return f"{who}: running, {n} step(s) so far{limit} (interrupt the kernel to stop)"
        outcome = "success" if r.success else "not solved"
        line = f"{who}: {n} step(s), score {r.score:.3f} ({outcome}), stopped: {r.stop_reason}"
        if r.stop_reason == "interrupted":
            line += " (the steps so far are kept)"
        if r.error:
            line += f"; {_one_line(r.error, 300)}"
        return line

    def _rows(self) -> list[tuple[str, str, str, str, float, bool]]:
        return [
            (
                str(s.step),
                action_brief(s.action, s.action_type),
                _one_line(s.thought, MAX_THOUGHT),
                _observed(s),
                float(s.reward),
                bool(s.error),
            )
            for s in self.steps
        ]

    def text(self) -> str:
        if self.compact:
            return self.head()
        rows = [
            [n, act, f"{reward:.3f}", summary + (f"  | thought: {thought}" if thought else "")]
            for n, act, thought, summary, reward, _ in self._rows()
        ]
        body = text_table(rows, ["step", "action", "reward", "observation"]) if rows else ""
        head = self.head() if self.show_head else ""
        return "\n".join(x for x in (head, body) if x) or "(no steps)"

    def html(self) -> str:
        r = self.result
        color = GREY if r is None else (GREEN if r.success else RED)
        head = f'<b style="color: {color}">{esc(self.head())}</b>' if self.show_head else ""
        if self.compact:
            return head
        rows = []
        for n, act, thought, summary, reward, err in self._rows():
            obs = f'<span style="color: {RED}">{esc(summary)}</span>' if err else esc(summary)
            flag = badge(f"{reward:.3f}", GREEN) if reward else f"{reward:.3f}"
            rows.append([n, f"<code>{esc(act)}</code>", esc(thought), obs, flag])
        header = ["step", "action", "thought", "observation", "reward"]
        return head + (table(rows, header) if rows else "") or "<i>(no steps)</i>"

    def bundle(self) -> dict[str, str]:
        """The static bundle, for a display handle (no widget model per redraw)."""
        return {"text/plain": self.text(), "text/html": self.wrapped_html()}
