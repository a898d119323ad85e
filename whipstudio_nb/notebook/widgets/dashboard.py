"""Episode dashboard: task, turn k of N, best reward, and the timeline of tool calls, each
expandable to its observation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...turns import free_actions
from ._base import GREY, RED, View, badge, esc, html_widget, pre, table
from .report import SOLVED_AT, score_color

__all__ = ["EpisodeDashboard", "TimelineEntry"]


class TimelineEntry:
    """One tool call: what was asked, and the observation (or its view) that came back."""

    def __init__(
        self,
        turn: int,
        action_type: str,
        summary: str,
        view: Any = None,
        error: str | None = None,
        reward: float = 0.0,
    ) -> None:
        self.turn, self.action_type, self.summary = turn, action_type, summary
        self.view, self.error, self.reward = view, error, reward


def _view_html(view: Any) -> str:
    if view is None:
        return ""
    if hasattr(view, "wrapped_html"):
        return str(view.wrapped_html())
    return pre(repr(view))


class EpisodeDashboard(View):
    title = "dashboard"

    def __init__(self, state: Any, entries: Sequence[TimelineEntry] = (), task_name: str = ""):
        self.state = state
        self.entries = list(entries)
        self.task_name = task_name

    def _head(self) -> str:
        s = self.state
        if s.task_id is None:
            return "No episode yet: start one with %whip_reset TASK."
        if s.episode_done:
            status = "done"
        elif s.submissions and s.best_reward >= SOLVED_AT:
            status = "solved (you may still submit)"
        else:
            status = "in progress"
        n = s.submissions
        return (
            f"Task {s.task_id}{f' ({self.task_name})' if self.task_name else ''}: "
            f"turn {s.turn} of {s.max_turns}, best reward {s.best_reward:.3f}, "
            f"{n} submission{'' if n == 1 else 's'}, {status}"
        )

    def _records(self) -> list[tuple[int, str, str, str | None, float]]:
        if self.entries:
            return [(e.turn, e.action_type, e.summary, e.error, e.reward) for e in self.entries]
        return [
            (r.turn, r.action_type, "", r.error, r.reward) for r in self.state.tool_call_history
        ]

    def text(self) -> str:
        lines = [self._head()]
        for turn, kind, summary, err, reward in self._records():
            extra = f"  error: {err}" if err else (f"  reward {reward:.3f}" if reward else "")
            lines.append(f"  {turn:>3}. {kind:<20} {summary}{extra}")
        return "\n".join(lines)

    def _progress_html(self) -> str:
        s = self.state
        frac = (s.turn / s.max_turns) if s.max_turns else 0.0
        color = RED if frac >= 1.0 else "#1565c0"
        return (
            '<div style="display: flex; align-items: center; gap: 8px; margin: 4px 0 6px">'
            '<div style="width: 260px; height: 8px; background: #eee; border-radius: 4px">'
            f'<div style="width: {min(1.0, frac) * 100:.0f}%; height: 8px; '
            f'background: {color}; border-radius: 4px"></div></div>'
            f'<span style="color: {GREY}">{s.turn} / {s.max_turns or "?"} turns</span></div>'
        )

    def _entry_title(
        self, turn: int, kind: str, summary: str, err: str | None, reward: float
    ) -> str:
        if err:
            flag = badge("error", RED)
        elif kind == "submit_fix":  # the score itself, coloured as in the grade report
            flag, summary = badge(f"score {reward:.3f}", score_color(reward)), ""
        elif kind in free_actions():  # it shares the turn number of the call before it
            flag = f'<span style="color: {GREY}">(free)</span>'
        else:
            flag = ""
        return f"{turn}. <code>{esc(kind)}</code> {esc(summary)} {flag}"

    def html(self) -> str:
        out = f"<b>{esc(self._head())}</b>" + self._progress_html()
        if self.entries:
            for e in self.entries:
                title = self._entry_title(e.turn, e.action_type, e.summary, e.error, e.reward)
                body = pre(e.error, RED) if e.error and e.view is None else _view_html(e.view)
                out += (
                    '<details class="whip-step" style="margin: 2px 0">'
                    f'<summary style="cursor: pointer">{title}</summary>'
                    f'<div style="margin: 4px 0 8px 18px">{body}</div></details>'
                )
        else:
            rows = [
                [str(t), f"<code>{esc(k)}</code>", f"{r:.3f}", esc(err or "")]
                for t, k, _, err, r in self._records()
            ]
            out += table(rows, ["turn", "action", "reward", "error"]) if rows else ""
        return out

    def widget(self) -> Any:
        # The live view is the static one: the timeline's bodies are static views anyway, and
        # <details> rows with coloured badges read better than a stack of grey accordion bars.
        return html_widget(self.html())
