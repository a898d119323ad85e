"""The base of every view: one object, three renderings.

``_repr_mimebundle_`` carries ``text/plain`` and ``text/html`` (plus ``image/png`` for plots)
and nothing else, so JupyterLab, Notebook 7, VS Code, an nbconvert export, GitHub and a terminal
IPython all show the same result, and a saved notebook reopens intact without its kernel.
``widget()`` builds the live ipywidgets form on request.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = [
    "View",
    "badge",
    "esc",
    "fig_png",
    "fmt_num",
    "html_widget",
    "in_kernel",
    "png_img_tag",
    "pre",
    "styled",
    "table",
]

CSS = (
    "font-family: var(--jp-ui-font-family, -apple-system, 'Segoe UI', sans-serif);"
    " font-size: 13px; line-height: 1.4;"
)
RED = "#c62828"
GREEN = "#2e7d32"
AMBER = "#ef6c00"
GREY = "#757575"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where ipywidgets have a frontend to talk to)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def fig_png(fig: Any) -> bytes:
    """PNG bytes of a matplotlib Figure made without pyplot (Agg; no GUI, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def styled(markup: str) -> str:
    """Markup inside a div with our font and line height."""
    return f'<div style="{CSS}">{markup}</div>'


def html_widget(markup: str) -> Any:
    """An ipywidgets ``HTML`` for multi-line content. The widget's own line height is 28 px
    (made for one-line labels beside buttons), which spreads tables and code far apart."""
    import ipywidgets as w

    return w.HTML(styled(markup))


def png_img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}"/>'


class View:
    """Subclasses implement ``text`` and ``html``; plots also ``png``; ``widget`` is the live
    ipywidgets version (by default the static HTML inside a core ``HTML`` widget)."""

    title = "view"

    def text(self) -> str:
        raise NotImplementedError

    def html(self) -> str:
        raise NotImplementedError

    def png(self) -> bytes | None:
        return None

    def widget(self) -> Any:
        import ipywidgets as w

        return w.HTML(self.wrapped_html())

    def tagged_widget(self) -> Any:
        """``widget()`` carrying the static view's CSS classes (``whip-view whip-<title>``)."""
        live = self.widget()
        if hasattr(live, "add_class"):
            live.add_class("whip-view").add_class(f"whip-{self.title}")
        return live

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.text(), "text/html": self.wrapped_html()}
        png = self.png()
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        # No widget MIME type on purpose: a frontend prefers it to the static HTML, and once the
        # kernel is gone a reopened notebook shows "model not found" in its place. ``widget()``
        # is there for code that wants a live ipywidgets view.
        return bundle

    def wrapped_html(self) -> str:
        return f'<div class="whip-view whip-{self.title}" style="{CSS}">{self.html()}</div>'

    def __repr__(self) -> str:
        return self.text()


def table(rows: list[list[str]], header: list[str] | None = None) -> str:
    """An HTML table from already-escaped cells."""
    style = "border-collapse: collapse; margin: 4px 0;"
    cell = "padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left;"
    out = [f'<table style="{style}">']
    if header:
        out.append("<tr>" + "".join(f'<th style="{cell}">{h}</th>' for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def text_table(rows: list[list[str]], header: list[str] | None = None) -> str:
    all_rows = ([header] if header else []) + rows
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in all_rows]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pre(text: str, color: str | None = None) -> str:
    style = "margin: 4px 0; padding: 6px; background: #f7f7f7; overflow-x: auto;"
    if color:
        style += f" color: {color};"
    return f'<pre style="{style}">{esc(text)}</pre>'


def badge(text: str, color: str) -> str:
    return (
        f'<span style="background: {color}; color: white; border-radius: 3px; '
        f'padding: 0 5px; font-weight: bold;">{esc(text)}</span>'
    )


def fmt_num(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}g}"


class Stack(View):
    """Several views one under the other (a probe's loss curve above its gradient norms)."""

    title = "stack"

    def __init__(self, views: list[View]) -> None:
        self.views = [v for v in views if v is not None]

    def text(self) -> str:
        return "\n\n".join(v.text() for v in self.views)

    def html(self) -> str:
        # each part keeps its own classes (whip-loss-curve, ...), so it can be found and styled
        return "".join(v.wrapped_html() for v in self.views)

    def png(self) -> bytes | None:
        return next((p for p in (v.png() for v in self.views) if p), None)

    def widget(self) -> Any:
        import ipywidgets as w

        return w.VBox([v.tagged_widget() for v in self.views])
