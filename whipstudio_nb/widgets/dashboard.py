"""Episode dashboard: task, turn k of N, best reward, and the timeline of tool calls, each
expandable to its observation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import GREEN, RED, View, badge, esc, html_widget, pre, table

__all__ = ["EpisodeDashboard", "TimelineEntry"]


class TimelineEntry:
    """One tool call: what was asked, and the observation (or its view) that came back."""

    def __init__(self, turn: int, action_type: str, summary: str, view: Any = None,
                 error: str | None = None, reward: float = 0.0) -> None:  # fmt: skip
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
            return "No episode in progress."
        status = "done" if s.episode_done else "in progress"
        return (
            f"Task {s.task_id}{f' ({self.task_name})' if self.task_name else ''}: "
            f"turn {s.turn} of {s.max_turns}, best reward {s.best_reward:.3f}, "
            f"{s.submissions} submission(s), {status}"
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
        return (
            f'<div style="width: 260px; height: 8px; background: #eee; border-radius: 4px">'
            f'<div style="width: {min(1.0, frac) * 100:.0f}%; height: 8px; '
            f'background: #1565c0; border-radius: 4px"></div></div>'
        )

    def _entry_title(self, turn: int, kind: str, summary: str, err: str | None,
                     reward: float) -> str:  # fmt: skip
        flag = badge("error", RED) if err else (badge(f"{reward:.3f}", GREEN) if reward else "")
        return f"{turn}. <code>{esc(kind)}</code> {esc(summary)} {flag}"

    def html(self) -> str:
        out = f"<b>{esc(self._head())}</b>" + self._progress_html()
        if self.entries:
            for e in self.entries:
                title = self._entry_title(e.turn, e.action_type, e.summary, e.error, e.reward)
                body = pre(e.error, RED) if e.error and e.view is None else _view_html(e.view)
                out += f"<details><summary>{title}</summary>{body}</details>"
        else:
            rows = [
                [str(t), f"<code>{esc(k)}</code>", f"{r:.3f}", esc(err or "")]
                for t, k, _, err, r in self._records()
            ]
            out += table(rows, ["turn", "action", "reward", "error"]) if rows else ""
        return out

    def widget(self) -> Any:
        import ipywidgets as w

        s = self.state
        head = w.HTML(f"<b>{esc(self._head())}</b>")
        turns = w.IntProgress(value=s.turn, min=0, max=max(1, s.max_turns or 1),
                              description="turns")  # fmt: skip
        kids: list[Any] = [head, turns]
        if self.entries:
            bodies = [
                html_widget(pre(e.error, RED) if e.error and e.view is None else _view_html(e.view))
                for e in self.entries
            ]
            titles = tuple(
                f"{e.turn}. {e.action_type} {e.summary}" + (" (error)" if e.error else "")
                for e in self.entries
            )
            acc = w.Accordion(children=bodies, titles=titles)
            acc.selected_index = None
            kids.append(acc)
        return w.VBox(kids)
