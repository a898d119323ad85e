"""Grade report: score gauge, every grading component with its measured value and pass/fail,
the training loss curve, and the run's output collapsed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config import SUCCESS_THRESHOLD
from ...series import loss_series
from ._base import (
    AMBER,
    GREEN,
    RED,
    View,
    badge,
    esc,
    fmt_num,
    html_widget,
    pre,
    table,
    text_table,
)
from .plots import LossCurve, Series

__all__ = ["GradeReport", "component_status"]

PASS_AT = 0.8  # a component at or above this passes; below 0.3 it fails; in between is partial
FAIL_BELOW = 0.3
SOLVED_AT = SUCCESS_THRESHOLD  # a score this high solves the task

_MEASURED = {
    "heldout_metric": ("val_f1", "val_r2", "val_acc"),
    "heldout_loss": ("heldout_loss",),
    "loss_decrease": ("final_loss",),
    "trained": ("optimizer_steps",),
    "memory": ("memory_growth_mb",),
    "no_leakage": ("leakage",),
}


def component_status(value: float) -> str:
    return "pass" if value >= PASS_AT else ("fail" if value < FAIL_BELOW else "partial")


def score_color(score: float) -> str:
    """Green only for a solved task: a fix that hides the symptom (0.85) is amber."""
    return GREEN if score >= SOLVED_AT else (RED if score < FAIL_BELOW else AMBER)


def component_targets(cfg: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, str]:
    """What each standard component needs for full marks, from the task's ``[grading]``."""
    metric = next((k for k in ("val_f1", "val_r2", "val_acc") if k in details), "held-out metric")
    return {
        "heldout_metric": f"{metric} ≥ {cfg.get('target', 0.9):g}",
        "heldout_loss": f"heldout_loss ≤ {cfg.get('loss_target', 0.3):g}",
        "loss_decrease": (
            f"training loss falls to {cfg.get('loss_ratio_target', 0.5):g}× its start or below"
        ),
        "trained": "every parameter changes during training",
        "memory": f"memory growth ≤ {cfg.get('memory_ok_mb', 5.0):g} MB",
        "no_leakage": "no held-out rows in the training data",
    }


class GradeReport(View):
    title = "grade"

    def __init__(
        self,
        score: float,
        details: dict[str, Any],
        output: str = "",
        *,
        attempts: Mapping[str, Series] | None = None,
        error: str | None = None,
        targets: Mapping[str, str] | None = None,
    ) -> None:
        self.score = score
        self.targets = dict(targets or {})
        self.details = details
        self.output = output
        self.error = error or details.get("error")
        losses = loss_series(details)  # thinned by the grader: each point with its step
        self.curve = (
            LossCurve(
                losses,
                attempts=attempts,
                label="this submission",
                title="Training loss during grading",
            )
            if losses.values or attempts
            else None
        )

    def measured(self, name: str) -> str:
        for key in _MEASURED.get(name, ()):
            if key in self.details:
                v = self.details[key]
                if isinstance(v, float):
                    return f"{key}={fmt_num(v)}"
                return f"{key}={v}"
        return ""

    def _rows(self) -> list[tuple[str, float, float | None, str, str]]:
        comps: dict[str, float] = self.details.get("components") or {}
        weights: dict[str, float] = self.details.get("weights") or {}
        return [
            (name, float(v), weights.get(name), self.measured(name), component_status(float(v)))
            for name, v in comps.items()
        ]

    def verdict(self) -> str:
        """``solved`` or what is missing: the components furthest from full marks, with their
        targets."""
        if self.score >= SOLVED_AT:
            return f"solved (a score of {SOLVED_AT:g} solves the task)"
        weights: dict[str, float] = self.details.get("weights") or {}
        short = sorted(
            ((weights.get(n, 0.0) * (1.0 - v), n, v) for n, v, *_ in self._rows() if v < 1.0),
            reverse=True,
        )
        missing = []
        for _, name, value in short[:2]:
            measured = self.measured(name)
            target = self.targets.get(name)
            extra = ", ".join(x for x in (measured, f"target {target}" if target else "") if x)
            missing.append(f"{name} {value:.2f}" + (f" ({extra})" if extra else ""))
        head = f"not solved: {SOLVED_AT:g} needed"
        return head + (f"; missing: {'; '.join(missing)}" if missing else "")

    def _problems(self) -> list[str]:
        out = []
        for key in ("error", "script_error", "model_error", "reference_error"):
            if self.details.get(key):
                out.append(f"{key.replace('_', ' ')}: {self.details[key]}")
        if self.details.get("crash_cap") is not None:
            out.append(f"the script crashed: score capped at {self.details['crash_cap']}")
        if self.error and not any(self.error in p for p in out):
            out.insert(0, str(self.error))
        return out

    def text(self) -> str:
        filled = round(20 * self.score)
        lines = [f"Score: {self.score:.3f}  [{'#' * filled}{'.' * (20 - filled)}]", self.verdict()]
        rows = [
            [n, f"{v:.2f}", "" if w is None else f"{w:.2f}", m, s.upper()]
            for n, v, w, m, s in self._rows()
        ]
        if rows:
            lines.append(text_table(rows, ["component", "value", "weight", "measured", "status"]))
        lines += self._problems()
        if self.curve:
            lines.append(self.curve.text())
        if self.output:
            n = self.output.count("\n") + 1
            lines.append(f"(run output: {n} lines, in .error_log)")
        return "\n".join(lines)

    def gauge_html(self) -> str:
        pct = max(0.0, min(1.0, self.score)) * 100
        color = score_color(self.score)
        return (
            f'<div style="display: flex; align-items: center; gap: 10px; margin: 4px 0">'
            f'<div style="font-size: 22px; font-weight: bold; color: {color}">'
            f"{self.score:.3f}</div>"
            f'<div style="width: 260px; height: 14px; background: #eee; border-radius: 7px">'
            f'<div style="width: {pct:.1f}%; height: 14px; background: {color}; '
            f'border-radius: 7px"></div></div><div>score (0–1)</div></div>'
            f'<div class="whip-verdict" style="color: {color}; margin: 2px 0 6px">'
            f"{esc(self.verdict())}</div>"
        )

    def components_html(self) -> str:
        colors = {"pass": GREEN, "partial": AMBER, "fail": RED}
        rows = [
            [esc(n), f"{v:.2f}", "" if w is None else f"{w:.2f}", esc(m), badge(s, colors[s])]
            for n, v, w, m, s in self._rows()
        ]
        out = table(rows, ["component", "value", "weight", "measured", "status"]) if rows else ""
        for p in self._problems():
            out += f'<div style="color: {RED}">{esc(p)}</div>'
        return out

    def output_html(self) -> str:
        if not self.output:
            return ""
        return f"<details><summary>Run output</summary>{pre(self.output)}</details>"

    def html(self) -> str:
        curve = self.curve.html() if self.curve else ""
        return (
            "<b>Grade report</b>"
            + self.gauge_html()
            + self.components_html()
            + curve
            + self.output_html()
        )

    def png(self) -> bytes | None:
        return self.curve.png() if self.curve else None

    def widget(self) -> Any:
        import ipywidgets as w

        # the same large, coloured score as the static report (a FloatProgress's label is tiny)
        kids: list[Any] = [
            html_widget("<b>Grade report</b>" + self.gauge_html()),
            html_widget(self.components_html()),
        ]
        if self.curve:
            kids.append(self.curve.tagged_widget())
        if self.output:
            out = w.Accordion(children=[html_widget(pre(self.output))], titles=("Run output",))
            out.selected_index = None
            kids.append(out)
        return w.VBox(kids)
