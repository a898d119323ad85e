"""The record of a graded run, kept by the kernel's main process (P) from the recorder's events.

The submission cannot reach this process, so nothing it does after an event was sent changes
what P holds: the losses that reached backward(), memory after each, the rows trained on,
optimizer steps, and each parameter's digest when it first took part in a forward pass and
around every optimizer step (``recorder.py``).

A parameter is *trained* when torch optimizers' steps changed it and nothing else did: it never
changed between steps, and its final value is one a step produced. Only what training did
carries a model's knowledge into the grader's re-run (``rerun.py``, ``carry``): a value written
into a parameter by hand (a closed-form fit, a copy of another model) is not training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Ledger"]


class Ledger:
    def __init__(self) -> None:
        self.losses: list[float | str] = []
        self.rss_mb: list[float] = []
        self.rows: set[str] = set()
        self.steps = 0
        self._first: dict[str, str] = {}  # parameter -> digest at its first forward pass
        self._now: dict[str, str] = {}  # parameter -> digest as of the last event
        self._stepped: dict[str, set[str]] = {}  # parameter -> values torch's steps produced
        self._outside: set[str] = set()  # changed between optimizer steps
        self._custom: set[str] = set()  # changed by an optimizer step that is not torch's
        self._produced: set[str] = set()  # every value a torch step gave any parameter

    def add(self, event: dict[str, Any]) -> None:
        if "loss" in event:
            self.losses.append(event["loss"])
            if isinstance(event.get("rss"), (int, float)):
                self.rss_mb.append(float(event["rss"]))
        elif isinstance(event.get("rows"), list):
            self.rows.update(str(r) for r in event["rows"])
        elif isinstance(event.get("p0"), dict):
            for key, d in event["p0"].items():
                if key not in self._first:
                    self._first[key] = self._now[key] = d
        elif isinstance(event.get("pre"), dict):
            for key, d in event["pre"].items():
                if key in self._now and d != self._now[key]:
                    self._outside.add(key)
                    self._now[key] = d
        elif isinstance(event.get("post"), dict):
            self.steps += 1
            for key, d in event["post"].items():
                if key in self._now and d != self._now[key]:
                    if event.get("torch") is True:
                        self._stepped.setdefault(key, set()).add(d)
                        self._produced.add(d)
                    else:
                        self._custom.add(key)
                    self._now[key] = d

    def first_digest(self, key: str) -> str | None:
        return self._first.get(key)

    def carry(self, key: str, final: str) -> tuple[str, str]:
        """How the re-run gets this parameter (by id), and why:

        - ``"delta"``: training changed it, in torch's steps only: the re-run adds the change to
          its own starting value (the same value when the script starts the same way; a value
          the script computed from its data belongs to the other world there);
        - ``"value"``: it started from a value torch's steps produced (a pretrained part
          transferred from another module) and only those steps changed it since;
        - ``"none"``: the re-run keeps its own (never trained, or changed some other way).
        """
        first = self._first.get(key)
        if first is None:
            return "none", "it never took part in a forward pass during the run"
        if key in self._custom:
            return "none", "an optimizer that is not one of torch's changed it"
        if key in self._outside:
            return "none", "it changed outside an optimizer step"
        stepped = self._stepped.get(key, set())
        if final != first and final not in stepped:
            return "none", "its final value is not one an optimizer step produced"
        if first in self._produced:
            return "value", "transferred from a module that torch's steps trained"
        if not stepped:
            return "none", "no optimizer step changed it"
        return "delta", "trained by torch's optimizer steps"
