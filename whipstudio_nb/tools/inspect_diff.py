"""inspect_diff: a unified diff of proposed code against the original buggy code (host-side;
nothing is executed, so no kernel is needed)."""

from __future__ import annotations

import difflib

from ..models import InspectDiffAction, InspectDiffObservation
from ._common import ToolContext
from .registry import Tool


def unified_diff(original: str, proposed: str) -> tuple[str, int, int]:
    lines = list(
        difflib.unified_diff(
            original.splitlines(keepends=True),
            proposed.splitlines(keepends=True),
            fromfile="original",
            tofile="proposed",
        )
    )
    adds = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
    dels = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
    text = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)
    return text, adds, dels


def run(ctx: ToolContext, action: InspectDiffAction) -> InspectDiffObservation:
    diff, adds, dels = unified_diff(ctx.copy.original, action.proposed_code)
    return InspectDiffObservation(
        diff=diff, lines_changed=adds + dels, additions=adds, deletions=dels
    )


# Free: it only reads the working copy.
TOOL = Tool(
    action=InspectDiffAction,
    observation=InspectDiffObservation,
    run=run,
    costs_turn=False,
    view="diff",
)
