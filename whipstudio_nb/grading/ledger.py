"""The record of a graded run, kept by the kernel's main process (P) from the recorder's events.

The submission cannot reach this process, so nothing it does after an event was sent changes
what P holds: the losses that reached backward(), the rows trained on, optimizer steps, and each
parameter's digest when it first took part in a forward pass and around every optimizer step
(``recorder.py``). Memory P samples itself (``memory_watch.py``).

A parameter is *trained* when torch optimizers' steps changed it and nothing else did: it never
changed between steps, and its final value is one a step produced. Only trained values go into
the task's reference model for the held-out check (``reference.py``, ``carry``): a value written
into a parameter by hand (a closed-form fit, a copy of another model) is not training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Ledger", "leaked_rows", "rows_of"]

# A validation row counts as trained on when a row the model trained on lies closer to it than
# this share of the typical distance between training rows (from one to its nearest other):
# exact copies, and copies moved by a little noise. An independent sample lies about as far from
# the training rows as they lie from each other (closer than a tenth of that: for 2-dimensional
# data about 1 in 140 samples, for 1-dimensional about 1 in 15).
NEAR_SHARE = 0.1


class Ledger:
    def __init__(self) -> None:
        self.losses: list[float | str] = []
        self.rows: list[Any] = []  # arrays of the distinct input rows trained on
        self.vals: list[Any] = []  # every version of the script's validation inputs, as rows
        self.steps = 0
        self._first: dict[str, str] = {}  # parameter -> digest at its first forward pass
        self._now: dict[str, str] = {}  # parameter -> digest as of the last event
        self._stepped: dict[str, set[str]] = {}  # parameter -> values torch's steps produced
        self._outside: set[str] = set()  # changed between optimizer steps
        self._custom: set[str] = set()  # changed by an optimizer step that is not torch's
        self._produced: set[str] = set()  # every value a torch step gave any parameter
        # Gradients (grad_provenance.py): what training's last backward() left in each
        # parameter's .grad, whether the one under way started from that, the parameters
        # whose .grad the next step uses is something else, and those such a step changed.
        self._earned: dict[str, str] = {}
        self._from_earned: dict[str, bool] = {}
        self._unearned_grad: set[str] = set()
        self._unearned: set[str] = set()
        self.unearned_why: list[str] = []

    def add(self, event: dict[str, Any]) -> None:
        if "loss" in event:
            self.losses.append(event["loss"])
        elif isinstance(event.get("rows"), dict):
            self.rows.append(rows_of(event["rows"]))
        elif isinstance(event.get("val"), dict):
            self.vals.append(rows_of(event["val"]))
        elif isinstance(event.get("p0"), dict):
            for key, d in event["p0"].items():
                if key not in self._first:
                    self._first[key] = self._now[key] = d
        elif isinstance(event.get("g0"), dict):
            self._from_earned = {k: self._is_earned(k, d) for k, d in event["g0"].items()}
        elif isinstance(event.get("g1"), dict):
            for key, d in event["g1"].items():
                if self._from_earned.get(key, True):
                    self._earned[key] = d
                else:
                    self._earned.pop(key, None)
        elif isinstance(event.get("clip"), dict):
            for key, pair in event["clip"].items():
                if isinstance(pair, list) and len(pair) == 2 and self._is_earned(key, pair[0]):
                    self._earned[key] = pair[1]
        elif isinstance(event.get("unearned"), str):
            if event["unearned"] not in self.unearned_why:
                self.unearned_why.append(event["unearned"])
        elif isinstance(event.get("pre"), dict):
            for key, d in event["pre"].items():
                if key in self._now and d != self._now[key]:
                    self._outside.add(key)
                    self._now[key] = d
            grads = event.get("pre_g")
            if isinstance(grads, dict):
                self._unearned_grad = {k for k, d in grads.items() if not self._is_earned(k, d)}
        elif isinstance(event.get("post"), dict):
            self.steps += 1
            for key, d in event["post"].items():
                if key in self._now and d != self._now[key]:
                    if key in self._unearned_grad:
                        self._unearned.add(key)
                    if event.get("torch") is True:
                        self._stepped.setdefault(key, set()).add(d)
                        self._produced.add(d)
                    else:
                        self._custom.add(key)
                    self._now[key] = d

    def _is_earned(self, key: str, state: Any) -> bool:
        """A gradient training computed: none, zero, or what its last backward() left."""
        return state in ("none", "zero") or state == self._earned.get(key)

    def first_digest(self, key: str) -> str | None:
        return self._first.get(key)

    def carry(self, key: str, final: str) -> tuple[str, str]:
        """Whether the reference model gets this parameter's final value (by id), and why:

        - ``"trained"``: training changed it, in torch's steps only;
        - ``"transferred"``: it started from a value torch's steps produced (a pretrained part
          copied from another module) and only those steps changed it since;
        - ``"none"``: the reference model keeps its own (never trained, or changed some other
          way).
        """
        first = self._first.get(key)
        if first is None:
            return "none", "it never took part in a forward pass during the run"
        if key in self._custom:
            return "none", "an optimizer that is not one of torch's changed it"
        if key in self._outside:
            return "none", "it changed outside an optimizer step"
        if key in self._unearned:
            return "none", "an optimizer step changed it with gradients no training loss computed"
        stepped = self._stepped.get(key, set())
        if final != first and final not in stepped:
            return "none", "its final value is not one an optimizer step produced"
        if first in self._produced:
            return "transferred", "transferred from a module that torch's steps trained"
        if not stepped:
            return "none", "no optimizer step changed it"
        return "trained", "trained by torch's optimizer steps"


def rows_of(enc: Any) -> Any:
    import numpy as np

    from .wire import decode_array

    try:
        a = decode_array(enc)
    except (KeyError, TypeError, ValueError):
        a = None
    if a is None or a.ndim == 0 or a.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return a.reshape(len(a), -1)


def leaked_rows(vals: list[Any], trained: list[Any]) -> tuple[int, int, int]:
    """(validation rows, rows trained on exactly, rows trained on exactly or nearly), for the
    version of the validation inputs that training came nearest to."""
    import numpy as np

    if not vals:
        return 0, 0, 0
    best = (max(len(v) for v in vals), 0, 0)
    for val in vals:
        same = [a for a in trained if a.size and val.size and a.shape[1] == val.shape[1]]
        if not same:
            continue
        seen = np.concatenate(same)
        keys = {r.tobytes() for r in np.ascontiguousarray(seen, dtype=np.float32)}
        exact = sum(1 for r in np.ascontiguousarray(val, dtype=np.float32) if r.tobytes() in keys)
        spacing = _spacing(seen)
        near = int(np.sum(_nearest(val, seen) <= NEAR_SHARE * spacing))
        near = max(near, exact)
        if (near, exact) > (best[2], best[1]):
            best = (len(val), exact, near)
    return best


def _spacing(rows: Any, sample: int = 300) -> float:
    """The typical distance from a training row to its nearest other one (the median, over up
    to ``sample`` rows): where a fresh sample of the same data lies from the training rows."""
    import numpy as np

    if len(rows) < 2:
        return 0.0
    pick = np.random.default_rng(0).permutation(len(rows))[:sample]
    return float(np.median(_nearest(rows[pick], rows, skip=pick)))


def _nearest(q: Any, ref: Any, skip: Any = None) -> Any:
    """Each row of ``q``'s distance to its nearest row of ``ref``, not counting row ``skip[i]``
    of ``ref`` for row i (``q`` drawn from ``ref``). In chunks, so memory stays bounded."""
    import numpy as np

    q64, r64 = q.astype(np.float64), ref.astype(np.float64)
    rr = np.einsum("ij,ij->i", r64, r64)
    out = np.empty(len(q64))
    for i in range(0, len(q64), 256):
        c = q64[i : i + 256]
        d2 = np.einsum("ij,ij->i", c, c)[:, None] - 2.0 * c @ r64.T + rr[None, :]
        if skip is not None:
            d2[np.arange(len(c)), skip[i : i + 256]] = np.inf
        out[i : i + 256] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out
