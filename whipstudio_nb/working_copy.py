"""An episode's editable copy of the buggy code, with line edits and undo."""

from __future__ import annotations

from .errors import EditError

__all__ = ["EditError", "WorkingCopy", "number_lines"]


def number_lines(code: str) -> str:
    lines = code.splitlines()
    width = len(str(max(1, len(lines))))
    return "\n".join(f"{i:>{width}} | {line}" for i, line in enumerate(lines, 1))


class WorkingCopy:
    def __init__(self, original: str) -> None:
        self.original = original
        self.code = original
        self._undo: list[str] = []

    @property
    def lines(self) -> list[str]:
        return self.code.splitlines()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def replace_lines(self, start_line: int, end_line: int, new_code: str) -> None:
        """Replace lines start..end (1-based, inclusive). ``end_line == start_line - 1``
        inserts before ``start_line`` without removing anything."""
        lines = self.lines
        n = len(lines)
        if start_line < 1 or start_line > n + 1:
            raise EditError(f"start_line must be between 1 and {n + 1} (got {start_line})")
        if end_line < start_line - 1 or end_line > n:
            raise EditError(
                f"end_line must be between start_line - 1 ({start_line - 1}) and {n} "
                f"(got {end_line})"
            )
        replacement = new_code.splitlines()
        new_lines = lines[: start_line - 1] + replacement + lines[end_line:]
        self._push("\n".join(new_lines) + ("\n" if new_lines else ""))

    def undo(self) -> None:
        if not self._undo:
            raise EditError("Nothing to undo.")
        self.code = self._undo.pop()

    def reset(self) -> None:
        if self.code != self.original:
            self._push(self.original)

    def _push(self, code: str) -> None:
        self._undo.append(self.code)
        self.code = code
