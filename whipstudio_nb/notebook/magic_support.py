"""What the magics say to a learner: one friendly line for every mistake, never a traceback.

Kept apart from :mod:`whipstudio_nb.notebook.magics` (which wires the magics to the
environment) so the wording lives in one place.
"""

from __future__ import annotations

import difflib
import functools
import re
import traceback
from collections.abc import Callable
from typing import Any

__all__ = [
    "NO_EPISODE",
    "cell_line_offset",
    "friendly",
    "notebook_error",
    "observation_from_record",
    "related_to",
    "syntax_message",
    "usage_message",
]

NO_EPISODE = "No episode yet: start an episode with %whip_reset TASK (%whip_tasks lists them)."


def _usage(parser: Any) -> str:
    text = " ".join(parser.format_usage().split())
    return text.removeprefix("usage: ").removeprefix(":: ").replace("[-h] ", "")


def _options(parser: Any) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _suggestion(bad: str, name: str, parser: Any, others: dict[str, Any]) -> str:
    """``did you mean --seed? `` for this magic, or the magic that has such an option."""
    close = difflib.get_close_matches(bad, _options(parser), n=1, cutoff=0.75)
    if close:
        return f"did you mean {close[0]}? "
    for other, other_parser in others.items():
        close = difflib.get_close_matches(bad, _options(other_parser), n=1, cutoff=0.75)
        if close and other != name:
            return f"{close[0]} is an option of %{other}. "
    return ""


def usage_message(name: str, parser: Any, error: str, others: dict[str, Any] | None = None) -> str:
    """An argparse error as one line naming the fix: ``%whip_reset: unknown option --sed; did
    you mean --seed? Usage: %whip_reset [--seed SEED] [task]``. ``others``: the parsers of the
    other magics, to point at the one a misplaced option belongs to."""
    usage = f"Usage: {_usage(parser)}"
    unknown = re.search(r"unrecognized arguments: (.*)", error)
    if unknown:
        tokens = unknown.group(1).split()
        bad = next((t for t in tokens if t.startswith("-")), tokens[0] if tokens else "")
        if bad.startswith("-"):
            hint = _suggestion(bad.split("=")[0], name, parser, others or {})
            return f"%{name}: unknown option {bad}; {hint}{usage}"
        return f"%{name}: unexpected argument {bad!r}. {usage}"
    bad_value = re.search(r"argument (\S+): invalid (\w+) value: (.*)", error)
    if bad_value:
        opt, kind, value = bad_value.groups()
        what = {"int": "a whole number", "float": "a number"}.get(kind, kind)
        return f"%{name}: {opt.split('/')[-1]} needs {what}, got {value}. {usage}"
    missing = re.search(r"the following arguments are required: (.*)", error)
    if missing:
        return f"%{name}: give {missing.group(1).upper()}. {usage}"
    needs_value = re.search(r"argument (\S+): expected (.*)", error)
    if needs_value:
        opt, what = needs_value.groups()
        return f"%{name}: {opt.split('/')[-1]} expects {what}. {usage}"
    return f"%{name}: {error.rstrip('.')}. {usage}"


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception into one short message, never a traceback: option errors name the
    fix, unexpected ones point at ``%config WhipMagics.debug = True``."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        from IPython.core.error import UsageError

        try:
            return func(self, *args, **kwargs)
        except KeyboardInterrupt:  # e.g. while the sandbox kernels are still starting
            return self._message("interrupted (no turn used)", "status")
        except UsageError as exc:
            parser = getattr(getattr(self, func.__name__, None), "parser", None)
            if parser is None:
                return self._message(str(exc))
            others = {
                n: getattr(getattr(self, n, None), "parser", None)
                for n in dir(self)
                if n.startswith("whip_")
            }
            others = {n: p for n, p in others.items() if p is not None}
            return self._message(usage_message(func.__name__, parser, str(exc), others))
        except Exception as exc:
            if self.debug:
                raise
            self.last_exception = exc
            self.last_traceback = traceback.format_exc()
            return self._report(exc)

    return wrapper


def cell_line_offset(cell: str | None) -> int:
    """How many lines of the cell come before the code a cell magic runs: the magic's own line
    and the blank lines the body starts with (they are stripped before running)."""
    if cell is None:
        return 0
    body = cell.lstrip("\n")
    return 1 + (len(cell) - len(body))


def syntax_message(found: Any, cell: str | None) -> str:
    """A SyntaxError at the line the learner sees: in the cell, or in the working copy."""
    if cell is not None and found.field in ("code", "setup_code", "fixed_code"):
        line = found.line + cell_line_offset(cell)
        shown = f": {found.text}" if found.text else ""
        return (
            f"SyntaxError at line {line} of this cell: {found.message}{shown} "
            "(no turn used): fix it and run the cell again."
        )
    if found.field in ("working copy", "setup_code"):
        text = found.describe(where="in the working copy, ")
        return f"{text} (no turn used): %whip_code shows it, %%whip_code --replace fixes it."
    if found.field == "target_expression" or found.field.startswith("expressions"):
        return f"{found.describe(where='in the expression, ')} (no turn used)."
    return f"{found.describe()} (no turn used)."


def notebook_error(code: str | None, error: str, task_id: str, best: float) -> str | None:
    """The API's end-of-episode errors (by their code), said the notebook way: with what to do
    next."""
    if code == "turn_limit":
        return (
            f"No turns left: {error.lower()}, so the episode is over (best {best:.2f}). "
            f"Start again with %whip_reset {task_id}."
        )
    if code == "episode_done":
        return (
            f"This episode is over (best {best:.2f}): start a new one with %whip_reset {task_id}."
        )
    if code == "no_episode":
        return NO_EPISODE
    return None


def related_to(code: str, original: str, at_least: float = 0.5) -> bool:
    """Whether ``code`` is a version of ``original`` (line-wise similarity), so that earlier
    attempts at the task belong on the same chart."""
    sm = difflib.SequenceMatcher(a=code.splitlines(), b=original.splitlines(), autojunk=False)
    return sm.ratio() >= at_least


def observation_from_record(action_type: str, data: dict[str, Any]) -> Any:
    """An agent step's observation (stored as a dict) back as its model, for the dashboard."""
    from .. import models as m

    by_action: dict[str, type[Any]] = {
        "execute_snippet": m.ExecuteSnippetObservation,
        "inspect_tensor": m.InspectTensorObservation,
        "run_training_probe": m.RunTrainingProbeObservation,
        "get_variable_state": m.GetVariableStateObservation,
        "inspect_diff": m.InspectDiffObservation,
        "submit_fix": m.SubmitFixObservation,
    }
    cls = by_action.get(action_type, m.CodeObservation)
    if set(data) <= set(m.ErrorObservation.model_fields):  # refused: only the common fields
        cls = m.ErrorObservation
    for candidate in (cls, m.ErrorObservation):
        try:
            return candidate.model_validate(data)
        except Exception:
            continue
    return None
