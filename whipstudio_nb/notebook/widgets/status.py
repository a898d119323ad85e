"""The budget line under every tool output: ``turn 4/10 · 1 submission left · best 0.00``.

It turns amber when two turns or fewer are left, and then says what to do: submit.
"""

from __future__ import annotations

from typing import Any

from ._base import AMBER, GREEN, GREY, RED, View, esc
from .report import SOLVED_AT

__all__ = ["BudgetStatus", "WithStatus"]

WARN_AT_TURNS_LEFT = 2


class BudgetStatus(View):
    """One line from an episode's ``State`` and the submission limit."""

    title = "status"

    def __init__(self, state: Any, max_submissions: int) -> None:
        self.turn = int(state.turn)
        self.max_turns = int(state.max_turns or 0)
        self.submissions = int(state.submissions)
        self.max_submissions = max_submissions
        self.best = float(state.best_reward)
        self.done = bool(state.episode_done)
        self.task_id = state.task_id or "TASK"

    @property
    def turns_left(self) -> int:
        return max(0, self.max_turns - self.turn)

    @property
    def submissions_left(self) -> int:
        return max(0, self.max_submissions - self.submissions)

    @property
    def warning(self) -> bool:
        return not self.done and self.turns_left <= WARN_AT_TURNS_LEFT

    def advice(self) -> str:
        if self.done:
            return f"episode over: %whip_reset {self.task_id} starts a new one"
        if self.submissions and self.best >= SOLVED_AT:
            return "solved"
        if self.turns_left == 0:
            return "no turns left: the next call ends the episode"
        if self.warning:
            n = self.turns_left
            return f"{n} turn{'' if n == 1 else 's'} left: submit your fix with %whip_submit"
        return ""

    def text(self) -> str:
        n = self.submissions_left
        parts = [
            f"turn {self.turn}/{self.max_turns}",
            f"{n} submission{'' if n == 1 else 's'} left",
            f"best {self.best:.2f}",
        ]
        advice = self.advice()
        return " · ".join(parts + ([advice] if advice else []))

    def color(self) -> str:
        if self.submissions and self.best >= SOLVED_AT:
            return GREEN
        if self.done:
            return RED
        return AMBER if self.warning else GREY

    def html(self) -> str:
        weight = "bold" if self.warning else "normal"
        return (
            f'<div class="whip-budget" style="color: {self.color()}; font-weight: {weight}; '
            f'margin-top: 4px">{esc(self.text())}</div>'
        )


class WithStatus(View):
    """A tool's view with the budget line under it (what a magic's output shows)."""

    def __init__(self, view: View, status: BudgetStatus) -> None:
        self.view, self.status = view, status
        self.title = view.title

    def text(self) -> str:
        return f"{self.view.text()}\n{self.status.text()}"

    def html(self) -> str:
        return self.view.html() + self.status.html()

    def png(self) -> bytes | None:
        return self.view.png()
