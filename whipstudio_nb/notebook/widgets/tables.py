"""Table-like views: variables, tasks, code listings, snippet output, messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._base import AMBER, CSS, GREEN, RED, View, badge, esc, pre, table, text_table

__all__ = ["CodeView", "FieldTable", "Message", "SnippetOutput", "TaskTable", "VariableTable"]

_CODE = (
    "margin: 4px 0; padding: 6px; background: #f7f7f7; overflow-x: auto;"
    " font-family: var(--jp-code-font-family, monospace); font-size: 12px;"
)


# a line just put in by replace_lines: a pale yellow band across the listing
_EDITED = '<span class="whip-edited" style="display: block; background: #fff3bf">'


def _short(text: str, limit: int = 120) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_VAR_COLS = ["expression", "value", "type", "shape", "error"]


class VariableTable(View):
    """One row per expression: value (repr), type, shape, error."""

    title = "variables"

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results

    def _rows(self) -> list[list[str]]:
        rows = []
        for expr, st in self.results.items():
            shape = "" if st.shape is None else str(tuple(st.shape))
            rows.append([expr, st.repr or "", st.type or "", shape, st.error or ""])
        return rows

    def _keep(self) -> list[int]:
        """Column indices to show: shape and error only when some row has one."""
        rows = self._rows()
        return [i for i in range(5) if i < 3 or any(r[i] for r in rows)]

    def text(self) -> str:
        keep = self._keep()
        rows = [[r[0], _short(r[1], 60), r[2], r[3], _short(r[4], 60)] for r in self._rows()]
        return text_table([[r[i] for i in keep] for r in rows], [_VAR_COLS[i] for i in keep])

    def html(self) -> str:
        keep = self._keep()
        rows = []
        for expr, rep, typ, shape, err in self._rows():
            cells = [
                f"<code>{esc(expr)}</code>",
                # wrapped at a readable width instead of stretching the table across the page
                f'<code style="white-space: pre-wrap; display: inline-block; max-width: 72ch">'
                f"{esc(_short(rep, 400))}</code>",
                esc(typ),
                esc(shape),
                f'<span style="color: {RED}">{esc(err)}</span>' if err else "",
            ]
            rows.append([cells[i] for i in keep])
        return table(rows, [_VAR_COLS[i] for i in keep])


class FieldTable(View):
    """One row per field of an observation: the default view of a tool without its own."""

    title = "fields"

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def text(self) -> str:
        rows = [[k, _short(str(v), 80)] for k, v in self.fields.items()]
        return text_table(rows, ["field", "value"])

    def html(self) -> str:
        rows = [
            [f"<code>{esc(k)}</code>", f"<code>{esc(_short(str(v), 400))}</code>"]
            for k, v in self.fields.items()
        ]
        return table(rows, ["field", "value"])


class TaskTable(list):  # type: ignore[type-arg]
    """The task list (a real list of TaskInfo) that renders as a table with best scores."""

    def __init__(self, tasks: Sequence[Any], best: dict[str, float] | None = None) -> None:
        super().__init__(tasks)
        self.best = dict(best or {})

    def _rows(self) -> list[list[str]]:
        return [
            [
                t.id,
                t.name,
                t.difficulty,
                t.category,
                f"{self.best[t.id]:.2f}" if t.id in self.best else "–",
            ]
            for t in self
        ]

    def text(self) -> str:
        return text_table(self._rows(), ["id", "name", "difficulty", "category", "best"])

    def html(self) -> str:
        colors = {"easy": GREEN, "medium": AMBER, "hard": RED}
        rows = [
            [
                f"<code>{esc(r[0])}</code>",
                esc(r[1]),
                badge(r[2], colors.get(r[2], "#555")),
                esc(r[3]),
                esc(r[4]),
            ]
            for r in self._rows()
        ]
        return table(rows, ["id", "name", "difficulty", "category", "best score"])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        html = f'<div class="whip-view whip-tasks" style="{CSS}">{self.html()}</div>'
        return {"text/plain": self.text(), "text/html": html}

    def __repr__(self) -> str:
        return self.text()


class CodeView(View):
    """Code with line numbers, optionally under a heading and a description."""

    title = "code"

    def __init__(
        self,
        code: str,
        heading: str = "",
        description: str = "",
        note: str = "",
        highlight: Sequence[int] = (),
    ) -> None:
        self.code = code
        self.heading = heading
        self.description = description
        self.note = note
        self.highlight = set(highlight)  # 1-based lines just edited, marked in the listing

    def numbered(self) -> str:
        lines = self.code.splitlines()
        width = len(str(max(1, len(lines))))
        mark = {True: ">", False: "|"}
        return "\n".join(
            f"{i:>{width}} {mark[i in self.highlight]} {ln}" for i, ln in enumerate(lines, 1)
        )

    def text(self) -> str:
        parts = [p for p in (self.heading, self.description, self.numbered(), self.note) if p]
        return "\n\n".join(parts)

    def html(self) -> str:
        lines = self.code.splitlines()
        width = len(str(max(1, len(lines))))
        body = "".join(
            # one block per line (no newlines between them), so a marked line is a full band
            (_EDITED if i in self.highlight else '<span style="display: block">')
            + f'<span style="color: #999; user-select: none">{i:>{width}}</span>  {esc(ln)}'
            + "</span>"
            for i, ln in enumerate(lines, 1)
        )
        out = f"<h4 style='margin: 4px 0'>{esc(self.heading)}</h4>" if self.heading else ""
        if self.description:
            # `name` in a task description is code, as in Markdown
            prose = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", esc(self.description))
            out += f"<p style='white-space: pre-wrap'>{prose}</p>"
        out += f'<pre style="{_CODE}">{body}</pre>'
        if self.note:
            out += f"<p><i>{esc(self.note)}</i></p>"
        return out


class SnippetOutput(View):
    title = "snippet"

    def __init__(self, stdout: str, stderr: str, exit_code: int = 0, timed_out: bool = False):
        self.stdout, self.stderr, self.exit_code, self.timed_out = (
            stdout,
            stderr,
            exit_code,
            timed_out,
        )

    def _status(self) -> str:
        if self.timed_out:
            return "timed out"
        return "ok" if self.exit_code == 0 else f"exit code {self.exit_code}"

    def text(self) -> str:
        parts = [self.stdout.rstrip("\n")] if self.stdout else []
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        parts.append(f"[{self._status()}]")
        return "\n".join(parts)

    def html(self) -> str:
        ok = self.exit_code == 0 and not self.timed_out
        out = pre(self.stdout) if self.stdout else ""
        if self.stderr:
            out += pre(self.stderr, RED)
        return out + badge(self._status(), GREEN if ok else RED)


class Message(View):
    """A short, friendly message box (errors, notes) instead of a traceback."""

    title = "message"

    def __init__(self, text: str, kind: str = "error") -> None:
        self.message = text
        self.kind = kind

    def text(self) -> str:
        if self.kind == "status":  # a plain line (an interrupted call)
            return self.message
        label = {"error": "Error", "warning": "Note", "info": "Info"}.get(self.kind, self.kind)
        return f"{label}: {self.message}"

    def html(self) -> str:
        color = {"error": RED, "warning": AMBER, "status": "#757575"}.get(self.kind, "#1565c0")
        # the coloured bar already says what kind it is: a hint needs no "Info:" in front
        label = {"error": "Error", "warning": "Note"}.get(self.kind)
        lead = f'<b style="color: {color}">{label}:</b> ' if label else ""
        return (
            f'<div style="border-left: 4px solid {color}; padding: 4px 10px; '
            f'background: #fafafa; white-space: pre-wrap">{lead}{esc(self.message)}</div>'
        )
