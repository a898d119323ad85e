"""Diff viewer: unified and side-by-side, colour-coded, with line numbers."""

from __future__ import annotations

import difflib
from typing import Any

from ._base import View, esc, html_widget, styled

__all__ = ["DiffViewer"]

_ADD = "#e6ffed"
_DEL = "#ffeef0"
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.5;"
_NUM = "color: #999; padding: 0 6px; text-align: right; user-select: none;"
# explicit left: JupyterLab's and nbconvert's stylesheets right-align table cells
_CODE = "white-space: pre; padding: 0 8px 0 2px; text-align: left;"
_HUNK = "color: #6a737d; background: #f1f8ff; padding: 2px 6px; text-align: left;"
_KIND = {"+": "color: #2e7d32;", "-": "color: #c62828;"}
# side by side, each half gets half the width and long lines wrap inside it (at 1024 px a
# 90-character line no longer pushes the proposed column out of the output area)
_HALF = "white-space: pre-wrap; overflow-wrap: anywhere; padding: 0 8px 0 2px; text-align: left;"
_SCROLL = '<div class="whip-scroll" style="overflow-x: auto; max-width: 100%">'


class DiffViewer(View):
    title = "diff"

    def __init__(self, original: str, proposed: str) -> None:
        self.a = original.splitlines()
        self.b = proposed.splitlines()
        self.opcodes = difflib.SequenceMatcher(a=self.a, b=self.b, autojunk=False).get_opcodes()

    @property
    def additions(self) -> int:
        return sum(j2 - j1 for t, _, _, j1, j2 in self.opcodes if t in ("insert", "replace"))

    @property
    def deletions(self) -> int:
        return sum(i2 - i1 for t, i1, i2, _, _ in self.opcodes if t in ("delete", "replace"))

    def _unified_rows(self, context: int = 3) -> list[tuple[str, int | None, int | None, str]]:
        """(kind, old line no., new line no., text); kind is ' ', '-', '+' or '@'."""
        rows: list[tuple[str, int | None, int | None, str]] = []
        sm = difflib.SequenceMatcher(a=self.a, b=self.b, autojunk=False)
        for group in sm.get_grouped_opcodes(context):
            i0, j0 = group[0][1], group[0][3]
            rows.append(("@", None, None, f"@@ line {i0 + 1} → {j0 + 1} @@"))
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    rows += [(" ", i + 1, j1 + i - i1 + 1, self.a[i]) for i in range(i1, i2)]
                    continue
                rows += [("-", i + 1, None, self.a[i]) for i in range(i1, i2)]
                rows += [("+", None, j + 1, self.b[j]) for j in range(j1, j2)]
        return rows

    def text(self) -> str:
        if not any(t != "equal" for t, *_ in self.opcodes):
            return "No changes."
        lines = [f"+{self.additions} -{self.deletions}"]
        for kind, old, new, txt in self._unified_rows():
            if kind == "@":
                lines.append(txt)
            else:
                lines.append(f"{old or '':>4} {new or '':>4} {kind} {txt}")
        return "\n".join(lines)

    def unified_html(self) -> str:
        out = [f'<table style="border-collapse: collapse; {_MONO}">']
        for kind, old, new, txt in self._unified_rows():
            if kind == "@":
                out.append(f'<tr><td colspan="4" style="{_HUNK}">{esc(txt)}</td></tr>')
                continue
            bg = {"+": _ADD, "-": _DEL}.get(kind, "transparent")
            out.append(
                f'<tr style="background: {bg}"><td style="{_NUM}">{old or ""}</td>'
                f'<td style="{_NUM}">{new or ""}</td>'
                f'<td style="padding: 0 2px; {_KIND.get(kind, "")}">{esc(kind)}</td>'
                f'<td style="{_CODE}">{esc(txt)}</td></tr>'
            )
        out.append("</table>")
        return "".join(out)

    def side_by_side_html(self) -> str:
        table = "border-collapse: collapse; width: 100%; table-layout: fixed;"
        out = [f'<table class="whip-side-by-side" style="{table} {_MONO}">']
        out.append(
            '<colgroup><col style="width: 3.5em"><col><col style="width: 3.5em"><col></colgroup>'
        )
        th = "text-align: left; padding: 2px 8px; border-bottom: 1px solid #ddd;"
        out.append(
            f'<tr><th></th><th style="{th}">original</th><th></th>'
            f'<th style="{th}">proposed</th></tr>'
        )

        def cell(n: int | None, txt: str, bg: str) -> str:
            return (
                f'<td style="{_NUM}">{n or ""}</td>'
                f'<td style="{_HALF} background: {bg}">{esc(txt)}</td>'
            )

        for tag, i1, i2, j1, j2 in self.opcodes:
            if tag == "equal":
                for k in range(i2 - i1):
                    left = cell(i1 + k + 1, self.a[i1 + k], "transparent")
                    right = cell(j1 + k + 1, self.b[j1 + k], "transparent")
                    out.append(f"<tr>{left}{right}</tr>")
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                left = cell(i1 + k + 1, self.a[i1 + k], _DEL) if i1 + k < i2 else cell(None, "", "")
                right = (
                    cell(j1 + k + 1, self.b[j1 + k], _ADD) if j1 + k < j2 else cell(None, "", "")
                )
                out.append(f"<tr>{left}{right}</tr>")
        out.append("</table>")
        return "".join(out)

    def _head(self) -> str:
        return (
            f'<div><b>Diff against the original</b>: <span style="color:#2e7d32">'
            f'+{self.additions}</span> <span style="color:#c62828">-{self.deletions}</span>'
            "</div>"
        )

    def html(self) -> str:
        if not any(t != "equal" for t, *_ in self.opcodes):
            return "<i>No changes.</i>"
        side = f"<details><summary>Side by side</summary>{self.side_by_side_html()}</details>"
        return self._head() + _SCROLL + self.unified_html() + "</div>" + side

    def widget(self) -> Any:
        import ipywidgets as w

        body = html_widget(self.unified_html())
        mode = w.ToggleButtons(options=["unified", "side by side"], value="unified")

        def switch(change: dict[str, Any]) -> None:
            body.value = styled(
                self.unified_html() if change["new"] == "unified" else self.side_by_side_html()
            )

        mode.observe(switch, names="value")
        return w.VBox([w.HBox([w.HTML(self._head()), mode]), body])
