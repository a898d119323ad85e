"""Tensor inspector: shape, dtype, gradient state, statistics, NaN/Inf flags and a histogram."""

from __future__ import annotations

from typing import Any

from ._base import (
    GREEN,
    RED,
    View,
    badge,
    esc,
    fig_png,
    fmt_num,
    html_widget,
    png_img_tag,
    pre,
    table,
)

__all__ = ["TensorInspector", "summary_line"]


def summary_line(obs: Any) -> str:
    """One line in the spirit of lovely-tensors' repr:
    ``tensor[400, 4] n=1600 x∈[-60, 58] μ=0.1 σ=20``."""
    if obs.shape is None:
        return "tensor ?"
    parts = [f"tensor[{', '.join(map(str, obs.shape))}]"]
    if obs.numel is not None:
        parts.append(f"n={obs.numel}")
    if obs.min_val is not None and obs.max_val is not None:
        parts.append(f"x∈[{fmt_num(obs.min_val, 3)}, {fmt_num(obs.max_val, 3)}]")
    if obs.mean_val is not None:
        parts.append(f"μ={fmt_num(obs.mean_val, 3)}")
    if obs.std_val is not None:
        parts.append(f"σ={fmt_num(obs.std_val, 3)}")
    if obs.dtype and obs.dtype not in ("torch.float32", "float32"):
        parts.append(str(obs.dtype).replace("torch.", ""))
    if obs.requires_grad:
        parts.append("grad" if not obs.grad_is_none else "requires_grad (no .grad)")
    if obs.is_nan:
        parts.append(f"NaN!{'' if obs.nan_count is None else f' ×{obs.nan_count}'}")
    if obs.is_inf:
        parts.append(f"Inf!{'' if obs.inf_count is None else f' ×{obs.inf_count}'}")
    return " ".join(parts)


class TensorInspector(View):
    title = "tensor"

    def __init__(self, obs: Any, expression: str = "") -> None:
        self.obs = obs
        self.expression = expression

    def _rows(self) -> list[tuple[str, str, bool]]:
        o = self.obs
        grad = "–" if not o.requires_grad else ("None" if o.grad_is_none else "present")
        return [
            ("shape", str(o.shape), False),
            ("dtype", str(o.dtype), False),
            ("numel", str(o.numel), False),
            ("requires_grad", str(o.requires_grad), False),
            (".grad", grad, False),
            ("min", fmt_num(o.min_val), False),
            ("max", fmt_num(o.max_val), False),
            ("mean", fmt_num(o.mean_val), False),
            ("std", fmt_num(o.std_val), False),
            ("NaN", f"{bool(o.is_nan)} ({o.nan_count or 0})", bool(o.is_nan)),
            ("Inf", f"{bool(o.is_inf)} ({o.inf_count or 0})", bool(o.is_inf)),
        ]

    def text(self) -> str:
        o = self.obs
        head = f"{self.expression}: " if self.expression else ""
        if o.error:
            return f"{head}error: {o.error}"
        lines = [head + summary_line(o)]
        for k, v, bad in self._rows():
            lines.append(f"  {k:<14}{v}{'   <-- !' if bad else ''}")
        return "\n".join(lines)

    def png(self) -> bytes | None:
        h = self.obs.histogram
        if h is None or not h.counts:
            return None
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.5, 2.2))
        ax = fig.add_subplot(1, 1, 1)
        edges = h.edges
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=False)]
        ax.bar(edges[:-1], h.counts, width=widths, align="edge", color="#1565c0")
        ax.set_title("histogram of finite values", fontsize=9)
        ax.tick_params(labelsize=8)
        return fig_png(fig)

    def _head_html(self) -> str:
        o = self.obs
        head = f"<b><code>{esc(self.expression)}</code></b> " if self.expression else ""
        if o.error:
            return head + pre(o.error, RED)
        flag = badge("NaN/Inf", RED) if (o.is_nan or o.is_inf) else badge("finite", GREEN)
        return f"<div>{head}{flag} <code>{esc(summary_line(o))}</code></div>"

    def _table_html(self) -> str:
        if self.obs.error:
            return ""
        rows = []
        for k, v, bad in self._rows():
            cell = f'<b style="color: {RED}">{esc(v)}</b>' if bad else esc(v)
            rows.append([esc(k), cell])
        return table(rows)

    def html(self) -> str:
        png = self.png()
        img = png_img_tag(png, "histogram") if png else ""
        # the summary on top, the table and the histogram side by side under it
        return (
            self._head_html() + '<div style="display: flex; gap: 24px; align-items: flex-start;">'
            f"<div>{self._table_html()}</div><div>{img}</div></div>"
        )

    def widget(self) -> Any:
        import ipywidgets as w

        png = self.png()
        kids: list[Any] = [html_widget(self._table_html())]
        if png:
            kids.append(w.Image(value=png, format="png", layout=w.Layout(align_self="flex-start")))
        body = w.HBox(kids, layout=w.Layout(grid_gap="24px"))
        return w.VBox([html_widget(self._head_html()), body])
