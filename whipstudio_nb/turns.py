"""The turn rules, in one place for every front end (notebook, CLI, server, agents).

A turn is spent only by a call that runs something or changes the episode. A call that fails
before anything runs (code that does not parse, a forbidden import, a call before ``reset``, an
interrupted call) costs nothing, and so do ``view_code`` and ``inspect_diff``: they only read
the working copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .sandbox.policy import parse
from .tools import get_tool, tools

__all__ = ["CodeSyntaxError", "costs_turn", "free_actions", "syntax_error_in"]


def free_actions() -> frozenset[str]:
    """The tools that only read the working copy: no sandbox, no change to the episode."""
    return frozenset(t.name for t in tools() if not t.costs_turn)


def costs_turn(action_type: str) -> bool:
    try:
        return get_tool(action_type).costs_turn
    except KeyError:  # an unknown action still counts: it is the agent's mistake
        return True


@dataclass(frozen=True)
class CodeSyntaxError:
    """Where an action's code fails to parse: the field, the 1-based line in it, Python's words."""

    field: str
    line: int
    message: str
    text: str = ""

    def describe(self, line_offset: int = 0, where: str | None = None) -> str:
        """``SyntaxError in code, line 3: invalid syntax: prin(x``. ``line_offset`` shifts the
        line to where the reader sees it (a notebook cell's body starts below its magic)."""
        place = where if where is not None else f"in {self.field}, "
        shown = f": {self.text}" if self.text else ""
        return f"SyntaxError {place}line {self.line + line_offset}: {self.message}{shown}"


def _parse_problem(field: str, code: str | None, mode: str) -> CodeSyntaxError | None:
    if not code or not code.strip():
        return None
    try:
        parse(code, mode=mode)
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        return CodeSyntaxError(field, int(exc.lineno or 1), str(exc.msg), text[:80])
    except ValueError as exc:  # e.g. a NUL byte in the source
        return CodeSyntaxError(field, 1, str(exc))
    return None


def syntax_error_in(action: Any, working_code: str | None = None) -> CodeSyntaxError | None:
    """The first field of a parsed action whose code Python cannot parse, or None.

    ``submit_fix`` without ``fixed_code`` submits the working copy, so that is what is checked.
    """
    try:
        tool = get_tool(getattr(action, "action_type", ""))
    except KeyError:
        return None
    for field, code, mode in tool.code_of(action, working_code):
        found = _parse_problem(field, code, mode)
        if found:
            return found
    return None
