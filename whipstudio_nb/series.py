"""Loss series thinned for transport, and the training steps their points stand for.

The grader keeps at most a few hundred losses in ``details`` (evenly spaced, the last one
always kept); whoever plots them needs the step each point was taken at, or a curve of 300
steps thinned to 200 points would put its events at the wrong steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["LossSeries", "loss_series", "thinned_steps"]


class LossSeries(NamedTuple):
    """Losses with the (0-based) step of each point."""

    steps: list[int]
    values: list[float | None]


def thinned_steps(total: int, points: int) -> list[int]:
    """The steps kept when ``total`` losses are thinned to ``points``: evenly spaced, always
    ending with the last step (every step when nothing needed thinning)."""
    if total <= points:
        return list(range(total))
    if points <= 1:
        return [total - 1] if points == 1 else []
    step = total / points
    return [int(i * step) for i in range(points - 1)] + [total - 1]


def loss_series(details: Mapping[str, Any]) -> LossSeries:
    """The grader's ``losses`` with their steps (``loss_steps`` is how many there were)."""
    values: Sequence[float | None] = details.get("losses") or []
    total = int(details.get("loss_steps") or len(values))
    return LossSeries(thinned_steps(max(total, len(values)), len(values)), list(values))
