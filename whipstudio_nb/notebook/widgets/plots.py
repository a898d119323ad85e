"""Loss curve (NaN/Inf steps shaded, log scale, earlier attempts overlaid) and per-layer
gradient norms (zero / missing gradients stand out)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...series import LossSeries
from ._base import AMBER, GREY, RED, View, badge, esc, fig_png, fmt_num, png_img_tag, table

__all__ = ["GradNorms", "LossCurve", "sparkline"]

_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], width: int = 40) -> str:
    """A one-line text plot; non-finite values show as ``!``."""
    if not values:
        return ""
    step = max(1, math.ceil(len(values) / width))
    picked = list(values)[::step]
    finite = [v for v in picked if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (hi - lo) or 1.0
    out = []
    for v in picked:
        if v is None or not math.isfinite(v):
            out.append("!")
        else:
            out.append(_SPARK[min(7, int((v - lo) / span * 7.999))])
    return "".join(out)


def _clean(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def _runs(steps: list[int]) -> list[tuple[int, int]]:
    """Consecutive steps grouped into (first, last) runs."""
    out: list[tuple[int, int]] = []
    for s in steps:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def wants_log_scale(*curves: Sequence[float]) -> bool:
    """A log axis reads better when every finite loss is positive and they span over two
    decades (a diverged earlier attempt would otherwise flatten this run to a line at 0)."""
    finite = [v for c in curves for v in c if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


Series = Sequence[float | None] | LossSeries


def _as_series(values: Series) -> tuple[list[int], list[float]]:
    """(steps, values): a plain list of losses is one point per step from 0."""
    if isinstance(values, LossSeries):
        if len(values.steps) != len(values.values):
            raise ValueError(f"{len(values.steps)} steps for {len(values.values)} losses")
        return [int(s) for s in values.steps], _clean(values.values)
    vals = _clean(values)
    return list(range(len(vals))), vals


class LossCurve(View):
    """Losses per step. ``attempts`` are earlier runs (label -> losses), drawn faded. A
    thinned series (the grader's) comes as a ``LossSeries`` or with ``steps``: the step of each
    point, so its events are drawn where they happened."""

    title = "loss-curve"

    def __init__(
        self,
        losses: Series,
        *,
        steps: Sequence[int] | None = None,
        attempts: Mapping[str, Series] | None = None,
        label: str = "this run",
        log_scale: bool | None = None,
        title: str = "Training loss",
    ) -> None:
        if steps is not None:
            values: list[float | None] = list(_as_series(losses)[1])
            losses = LossSeries(list(steps), values)
        self.steps, self.losses = _as_series(losses)
        self.attempts = {k: _as_series(v) for k, v in (attempts or {}).items()}
        self.label = label
        # None: decided by the data (see wants_log_scale); the widget's toggle starts there
        auto = wants_log_scale(self.losses, *(v for _, v in self.attempts.values()))
        self.log_scale = auto if log_scale is None else log_scale
        self.heading = title

    @property
    def total_steps(self) -> int:
        return self.steps[-1] + 1 if self.steps else 0

    @property
    def thinned(self) -> bool:
        return self.total_steps > len(self.losses)

    @property
    def bad_steps(self) -> list[int]:
        return [s for s, v in zip(self.steps, self.losses, strict=True) if not math.isfinite(v)]

    def _summary(self) -> str:
        finite = [v for v in self.losses if math.isfinite(v)]
        parts = [f"{self.total_steps} steps"]
        if self.thinned:
            parts[0] += f" ({len(self.losses)} points shown)"
        if finite:
            parts.append(f"first {fmt_num(finite[0])}, last {fmt_num(self.losses[-1])}")
            parts.append(f"min {fmt_num(min(finite))}")
            if len(finite) > 1 and max(finite) - min(finite) <= 1e-9 * max(1.0, abs(finite[0])):
                parts.append("flat: the loss never changed")
        bad = self.bad_steps
        if bad:
            count = "" if self.thinned else f" ({len(bad)} steps)"
            parts.append(f"NaN/Inf from step {bad[0]}{count}")
        return ", ".join(parts)

    def text(self) -> str:
        lines = [f"{self.heading}: {self._summary()}", "  " + sparkline(self.losses)]
        for name, (_, vals) in self.attempts.items():
            lines.append(f"  {name}: {sparkline(vals)}")
        return "\n".join(lines)

    def png(self, log_scale: bool | None = None) -> bytes | None:
        if not self.losses and not self.attempts:
            return None
        from matplotlib.figure import Figure

        log = self.log_scale if log_scale is None else log_scale
        fig = Figure(figsize=(6, 3))
        ax = fig.add_subplot(1, 1, 1)
        for i, (name, (xs, vals)) in enumerate(self.attempts.items()):
            ax.plot(
                xs,
                vals,
                color=GREY,
                alpha=0.45 + 0.4 * i / max(1, len(self.attempts)),
                lw=1.4,
                ls="--",
                label=name,
            )
        ax.plot(self.steps, self.losses, color="#1565c0", lw=1.8, label=self.label)
        bad_idx = [i for i, v in enumerate(self.losses) if not math.isfinite(v)]
        finite = [v for v in self.losses if math.isfinite(v)]
        for k, (first, last) in enumerate(_runs(bad_idx)):
            # a shaded band where the loss is NaN/Inf (matplotlib leaves a silent gap there)
            ax.axvspan(
                self.steps[first] - 0.5,
                self.steps[last] + 0.5,
                color=RED,
                alpha=0.12,
                lw=0,
                label="loss is NaN/Inf" if k == 0 else None,
            )
        if bad_idx:
            at = self.steps[bad_idx[0]]
            ax.axvline(at, color=RED, lw=1.0, ls=":")
            ax.annotate(
                f"NaN/Inf from step {at}",
                xy=(at, 0.96),
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                color=RED,
                fontsize=8,
                va="top",
            )
        if log and (finite or self.attempts):
            ax.set_yscale("log")
        ax.set_xlabel("step (backward() call)")
        ax.set_ylabel("loss" + (" (log)" if log else ""))
        ax.set_title(self.heading, fontsize=10)
        ax.grid(alpha=0.3)
        if self.attempts or bad_idx:
            ax.legend(fontsize=8)
        return fig_png(fig)

    def _html_summary(self) -> str:
        s = esc(self._summary())
        if self.bad_steps:
            s += " " + badge("NaN/Inf", RED)
        return f"<div><b>{esc(self.heading)}</b>: {s}</div>"

    def html(self) -> str:
        png = self.png()
        img = png_img_tag(png, self.text()) if png else "<i>no losses recorded</i>"
        return self._html_summary() + img

    def widget(self) -> Any:
        import ipywidgets as w

        png = self.png()
        # natural size: a VBox would otherwise stretch the PNG (blurry, oversized) to its width
        image = w.Image(value=png or b"", format="png", layout=w.Layout(align_self="flex-start"))
        toggle = w.ToggleButton(value=self.log_scale, description="log scale", icon="line-chart")

        def redraw(change: dict[str, Any]) -> None:
            image.value = self.png(log_scale=bool(change["new"])) or b""

        toggle.observe(redraw, names="value")
        return w.VBox([w.HBox([w.HTML(self._html_summary()), toggle]), image])


class GradNorms(View):
    """A horizontal bar per parameter; zero or missing gradients are drawn in red."""

    title = "grad-norms"

    def __init__(self, grad_norms: dict[str, float], without_grad: Sequence[str] = ()) -> None:
        self.norms = dict(grad_norms)
        for name in without_grad:
            self.norms.setdefault(name, 0.0)
        self.without_grad = set(without_grad)

    def is_dead(self, name: str) -> bool:
        v = self.norms[name]
        return name in self.without_grad or v == 0.0

    def _note(self, name: str) -> tuple[str, str] | None:
        """What the chart writes beside a bar that is not a plain norm, and in which colour."""
        if name in self.without_grad:
            return "no gradient", RED
        v = self.norms[name]
        if not math.isfinite(v):
            return "non-finite (NaN/Inf)", AMBER
        return ("zero", RED) if v == 0 else None

    def text(self) -> str:
        if not self.norms:
            return "Gradient norms: none recorded"
        width = max(len(n) for n in self.norms)
        top = max((v for v in self.norms.values() if math.isfinite(v)), default=1.0) or 1.0
        lines = ["Gradient norms (last backward):"]
        for name, v in self.norms.items():
            if name in self.without_grad:
                bar, note = "", "  <- no gradient"
            elif not math.isfinite(v):
                bar, note = "!", "  <- non-finite"
            else:
                bar, note = "#" * max(0, round(20 * v / top)), ("  <- zero" if v == 0 else "")
            lines.append(f"  {name.ljust(width)} {fmt_num(v):>10} {bar}{note}")
        return "\n".join(lines)

    @property
    def all_non_finite(self) -> bool:
        return bool(self.norms) and not any(math.isfinite(v) for v in self.norms.values())

    def png(self) -> bytes | None:
        if not self.norms or self.all_non_finite:  # nothing to draw: the table says it all
            return None
        from matplotlib.figure import Figure

        names = list(self.norms)
        vals = [v if math.isfinite(v) else 0.0 for v in self.norms.values()]
        fig = Figure(figsize=(6, 0.3 * len(names) + 1.0))
        ax = fig.add_subplot(1, 1, 1)
        colors = [RED if self.is_dead(n) else "#1565c0" for n in names]
        ax.barh(range(len(names)), vals, color=colors)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=8)
        for i, (label, name) in enumerate(zip(ax.get_yticklabels(), names, strict=True)):
            note = self._note(name)
            if note:
                label.set_color(note[1])
                ax.text(0, i, "  " + note[0], va="center", color=note[1], fontsize=8)
        ax.invert_yaxis()
        if not any(vals):  # nothing to draw: a clean 0..1 axis, not matplotlib's -0.04..0.04
            ax.set_xlim(0, 1)
        ax.set_xlabel("gradient L2 norm")
        title = "Gradient norms per parameter (red: zero or none, orange: NaN/Inf)"
        ax.set_title(title, fontsize=9)
        return fig_png(fig)

    def html(self) -> str:
        rows = []
        for name, v in self.norms.items():
            dead = self.is_dead(name)
            flag = badge("no grad" if name in self.without_grad else "zero", RED) if dead else ""
            if not math.isfinite(v):
                flag = badge("non-finite", AMBER)
            rows.append([esc(name), esc(fmt_num(v)), flag])
        png = self.png()
        img = png_img_tag(png, self.text()) if png else ""
        if self.all_non_finite:
            img = f'<div style="color: {AMBER}">Every gradient norm is NaN/Inf: no chart.</div>'
        return "<b>Gradient norms</b>" + table(rows, ["parameter", "norm", ""]) + img
