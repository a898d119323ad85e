from __future__ import annotations

import pytest

from whipstudio_nb.working_copy import EditError, WorkingCopy, number_lines

CODE = "a = 1\nb = 2\nc = 3\n"


def test_replace_undo_reset():
    wc = WorkingCopy(CODE)
    wc.replace_lines(2, 2, "b = 20\nb2 = 21")
    assert wc.code == "a = 1\nb = 20\nb2 = 21\nc = 3\n"
    wc.replace_lines(1, 1, "")  # deleting a line
    assert wc.code == "b = 20\nb2 = 21\nc = 3\n"
    wc.undo()
    assert wc.code == "a = 1\nb = 20\nb2 = 21\nc = 3\n"
    wc.reset()
    assert wc.code == CODE
    wc.undo()  # reset is itself undoable
    assert wc.code == "a = 1\nb = 20\nb2 = 21\nc = 3\n"
    wc.undo()
    assert wc.code == CODE
    assert not wc.can_undo
    with pytest.raises(EditError, match="Nothing to undo"):
        wc.undo()


def test_insert_and_append():
    wc = WorkingCopy(CODE)
    wc.replace_lines(1, 0, "# header")  # end = start - 1 inserts
    assert wc.lines[0] == "# header" and len(wc.lines) == 4
    wc.replace_lines(5, 4, "d = 4")  # after the last line
    assert wc.lines[-1] == "d = 4"


@pytest.mark.parametrize(("start", "end"), [(0, 1), (-1, 2), (5, 5), (2, 4), (3, 1)])
def test_bad_ranges(start, end):
    wc = WorkingCopy(CODE)
    with pytest.raises(EditError):
        wc.replace_lines(start, end, "x")
    assert wc.code == CODE


def test_number_lines():
    assert number_lines(CODE) == "1 | a = 1\n2 | b = 2\n3 | c = 3"
