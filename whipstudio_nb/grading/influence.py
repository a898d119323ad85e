"""Whether the validation split influenced training, measured outside the submission's process.

Code in the graded process can hide what it trains on from any recorder there (torch's autograd
engine called directly, frames, raw memory). So a pack that hands the script a validation split
(``[grading] val_data``: keys of its training data) has the submission run a second time, in a
kernel of its own, with that split swapped for another draw of the same hidden distribution and
everything else the same: data, RNG seed, time budget. Nothing in the script can tell the two
runs apart. Weights that never saw the validation split come out the same in both; weights that
trained on it, used it to pick an epoch, or depend on it in any other way do not. The second
run measures nothing but its end state (``MirrorRecorder``): a script that tells the runs apart
still cannot make weights that depend on the real split without having it.

The graded run's weights are the ones the reference model evaluates (``reference.py``), so a
script cannot train on the validation split and report other weights without being graded on
those.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple

import numpy as np

from .reference import BackgroundRun
from .wire import decode_array

__all__ = ["SwappedRun", "Influence", "weight_difference"]

# Two runs of a deterministic script give bitwise-equal weights; this allows for a last-bit
# difference in a reduction's order. Training on 300 swapped rows moves task3's weights by ~0.3.
SAME_WEIGHTS_TOL = 1e-4


class Influence(NamedTuple):
    """How far the weights moved when the validation split changed (``difference``: the largest
    change of any trained tensor, relative to its size), or why that is unknown (``error``)."""

    difference: float | None = None
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.difference is not None and self.difference <= SAME_WEIGHTS_TOL


class SwappedRun(BackgroundRun):
    """The submission's run phase over data with the validation split swapped; ``compare``
    then gets its trained state and measures it against the graded run's."""

    NAME = "swapped"

    def compare(self, cell_for: Any, graded: dict[str, Any] | None, timeout: float) -> Influence:
        """``cell_for(nonce)`` builds the evaluate cell that returns the trained state."""
        if not graded or not graded.get("params"):
            return Influence(error="no parameter of the model was trained by an optimizer step")
        try:
            run = self.result()
        except Exception as exc:
            return Influence(error=f"the second run failed: {exc}")
        status = [r for r in run.results if "status" in r or "internal_error" in r]
        last = status[-1] if status else {}
        if last.get("status") != "ran":
            return Influence(
                error="the second run (another validation split) did not finish: "
                f"{last.get('status') or last.get('internal_error') or 'no result'}"
            )
        nonce = secrets.token_hex(16)
        ev = self.kernel.execute(cell_for(nonce), timeout=timeout)
        trusted = [r for r in ev.results if r.get("nonce") == nonce]
        state = trusted[-1].get("state") if trusted else None
        if not isinstance(state, dict):
            return Influence(error="the second run left no trained model to compare")
        return Influence(difference=weight_difference(graded, state))


def weight_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest relative difference between two trained states (parameters and
    normalization statistics, by name): |a - b|_max / (1 + |a|_max) per tensor of ``a`` (the
    graded run's: the parameters training changed there; ``b`` may hold them all). A tensor of
    ``a`` missing from ``b``, or of another shape there, is a difference of 1 or more."""
    worst = 0.0
    for part in ("params", "buffers"):
        xa, xb = a.get(part) or {}, b.get(part) or {}
        for name in xa:
            if name not in xa or name not in xb:
                worst = max(worst, 1.0)
                continue
            ta, tb = decode_array(xa[name]), decode_array(xb[name])
            if ta.shape != tb.shape:
                worst = max(worst, 1.0)
                continue
            if ta.size == 0:
                continue
            diff = np.abs(ta.astype(np.float64) - tb.astype(np.float64))
            if not np.isfinite(diff).all():
                same_nan = np.array_equal(ta, tb, equal_nan=True)
                worst = max(worst, 0.0 if same_nan else 1.0)
                continue
            scale = 1.0 + float(np.abs(ta).max(initial=0.0))
            worst = max(worst, float(diff.max()) / scale)
    return worst
