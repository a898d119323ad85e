"""Pydantic models shared by every layer: actions, observations, state and grading results.

Field names follow the WhipStudio API reference exactly; fields beyond it are additions only.
JSON Schemas for the HTTP server and the LLM tools are generated from these classes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny
from pydantic_core import to_jsonable_python

__all__ = [
    "NON_FINITE_KEY",
    "UnencodableError",
    "CodeObservation",
    "ErrorObservation",
    "ExecuteSnippetAction",
    "ExecuteSnippetObservation",
    "GetVariableStateAction",
    "GetVariableStateObservation",
    "GradeResult",
    "InspectDiffAction",
    "InspectDiffObservation",
    "InspectTensorAction",
    "InspectTensorObservation",
    "Observation",
    "ReplaceLinesAction",
    "ResetToOriginalAction",
    "RunTrainingProbeAction",
    "RunTrainingProbeObservation",
    "State",
    "StepResult",
    "SubmitFixAction",
    "SubmitFixObservation",
    "TaskInfo",
    "TaskSpec",
    "TensorHistogram",
    "ToolCallRecord",
    "ToolObservation",
    "UndoEditAction",
    "VariableState",
    "ViewCodeAction",
    "dumps",
    "restore_non_finite",
    "to_strict_json",
]


# --------------------------------------------------------------------------- actions


class _ActionBase(BaseModel):
    # Unknown fields are rejected so that a typo (``fixed_cod``) is reported, not ignored.
    model_config = ConfigDict(extra="forbid")

    thought: str | None = Field(
        default=None, description="Optional free-text reasoning; recorded, never executed."
    )


class ExecuteSnippetAction(_ActionBase):
    """Run a Python code snippet to test hypotheses."""

    action_type: Literal["execute_snippet"] = "execute_snippet"
    code: str = Field(description="Python source to run in a fresh sandbox kernel.")


class InspectTensorAction(_ActionBase):
    """Inspect tensor shape, dtype, gradients, and statistics."""

    action_type: Literal["inspect_tensor"] = "inspect_tensor"
    setup_code: str = Field(default="", description="Code run first, in the same namespace.")
    target_expression: str = Field(description="Expression that evaluates to a tensor.")


class RunTrainingProbeAction(_ActionBase):
    """Run N training steps and observe loss curve and gradients."""

    action_type: Literal["run_training_probe"] = "run_training_probe"
    code: str = Field(description="A training script; every loss passed to backward() is recorded.")
    steps: int = Field(
        default=5, ge=1, le=500, description="Stop after this many backward() calls."
    )


class GetVariableStateAction(_ActionBase):
    """Evaluate multiple expressions and return their state."""

    action_type: Literal["get_variable_state"] = "get_variable_state"
    setup_code: str = Field(default="", description="Code run first, in the same namespace.")
    expressions: list[str] = Field(
        min_length=1, max_length=50, description="Expressions evaluated independently."
    )


class InspectDiffAction(_ActionBase):
    """Compare proposed fix against original buggy code."""

    action_type: Literal["inspect_diff"] = "inspect_diff"
    proposed_code: str = Field(description="The full proposed script.")


class SubmitFixAction(_ActionBase):
    """Submit a final fix for grading."""

    action_type: Literal["submit_fix"] = "submit_fix"
    fixed_code: str | None = Field(
        default=None, description="The full fixed script; omitted means the working copy."
    )
    explanation: str | None = Field(default=None, description="What was wrong and what changed.")
    attempt_number: int | None = Field(default=None, ge=1)


class ViewCodeAction(_ActionBase):
    """Show the episode's working copy with line numbers."""

    action_type: Literal["view_code"] = "view_code"


class ReplaceLinesAction(_ActionBase):
    """Replace lines start_line..end_line (1-based, inclusive) of the working copy."""

    action_type: Literal["replace_lines"] = "replace_lines"
    start_line: int = Field(description="First line to replace (1-based).")
    end_line: int = Field(description="Last line to replace (inclusive).")
    new_code: str = Field(
        description="Replacement text; may span any number of lines, or be empty."
    )


class UndoEditAction(_ActionBase):
    """Undo the last edit of the working copy."""

    action_type: Literal["undo_edit"] = "undo_edit"


class ResetToOriginalAction(_ActionBase):
    """Restore the working copy to the original buggy code."""

    action_type: Literal["reset_to_original"] = "reset_to_original"


# ---------------------------------------------------------------------- observations


class Observation(BaseModel):
    """What ``reset`` returns: the task and the code to debug."""

    task_id: str
    task_description: str
    buggy_code: str
    error_log: str = ""
    last_reward: float = 0.0
    turn: int = 0
    episode_done: bool = False
    error: str | None = None
    # additions to the reference
    episode_id: str | None = None
    max_turns: int | None = None
    isolation: str | None = Field(default=None, description="Sandbox isolation level in force.")


class ToolObservation(BaseModel):
    """Fields every tool observation carries."""

    action_type: str
    turn: int = 0
    episode_done: bool = False
    reward: float = 0.0
    error: str | None = None
    error_code: str | None = Field(
        default=None,
        description="Stable code of `error` (whipstudio_nb.errors.ERROR_CODES), or null.",
    )
    non_finite: dict[str, str] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description=(
            "Set by the JSON encoder, present only when needed: each JSON Pointer (RFC 6901, "
            "from this object) of a value that was NaN, Infinity or -Infinity and is sent as "
            "null, mapped to which of the three it was."
        ),
    )


class ErrorObservation(ToolObservation):
    """An action that could not run: invalid, unknown, too late, past the turn limit."""

    action_type: str = "invalid"


class ExecuteSnippetObservation(ToolObservation):
    action_type: Literal["execute_snippet"] = "execute_snippet"
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    timed_out: bool = False


class TensorHistogram(BaseModel):
    edges: list[float]
    counts: list[int]


class InspectTensorObservation(ToolObservation):
    action_type: Literal["inspect_tensor"] = "inspect_tensor"
    shape: list[int] | None = None
    dtype: str | None = None
    requires_grad: bool | None = None
    grad_is_none: bool | None = None
    min_val: float | None = None
    max_val: float | None = None
    mean_val: float | None = None
    is_nan: bool | None = None
    is_inf: bool | None = None
    # additions: statistics are over the finite elements only
    std_val: float | None = None
    numel: int | None = None
    nan_count: int | None = None
    inf_count: int | None = None
    histogram: TensorHistogram | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


class RunTrainingProbeObservation(ToolObservation):
    action_type: Literal["run_training_probe"] = "run_training_probe"
    losses: list[float] = Field(default_factory=list)
    grad_norms: dict[str, float] = Field(default_factory=dict)
    optimizer_param_count: int = 0
    final_loss: float | None = None
    loss_is_nan: bool = False
    loss_is_inf: bool = False
    stderr: str = ""
    timed_out: bool = False
    # additions
    stdout: str = ""
    optimizer_steps: int = 0
    params_without_grad: list[str] = Field(default_factory=list)
    grad_norm_history: list[dict[str, float]] = Field(default_factory=list)


class VariableState(BaseModel):
    repr: str | None = None
    type: str | None = None
    value: Any = None
    shape: list[int] | None = None
    error: str | None = None


class GetVariableStateObservation(ToolObservation):
    action_type: Literal["get_variable_state"] = "get_variable_state"
    results: dict[str, VariableState] = Field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


class InspectDiffObservation(ToolObservation):
    action_type: Literal["inspect_diff"] = "inspect_diff"
    diff: str = ""
    lines_changed: int = 0
    additions: int = 0
    deletions: int = 0


class SubmitFixObservation(ToolObservation):
    action_type: Literal["submit_fix"] = "submit_fix"
    error_log: str = ""
    grader_details: dict[str, Any] = Field(default_factory=dict)


class CodeObservation(ToolObservation):
    """The working copy after a line-editing action."""

    action_type: Literal["view_code", "replace_lines", "undo_edit", "reset_to_original"]
    code: str = ""
    numbered_code: str = ""
    line_count: int = 0
    can_undo: bool = False
    message: str = ""
    changed_lines: list[int] = Field(
        default_factory=list,
        description="Line numbers (1-based) in `code` that hold the lines replace_lines put in.",
    )


# ------------------------------------------------------------------ state and results


class ToolCallRecord(BaseModel):
    turn: int
    action_type: str
    reward: float = 0.0
    error: str | None = None


class State(BaseModel):
    turn: int = 0
    task_id: str | None = None
    submitted: bool = False
    best_reward: float = 0.0
    tool_call_history: list[ToolCallRecord] = Field(default_factory=list)
    # additions
    episode_id: str | None = None
    episode_done: bool = False
    max_turns: int | None = None
    submissions: int = 0
    seed: int | None = None


class StepResult(BaseModel):
    # SerializeAsAny: dump the concrete observation's fields, not just the base class's.
    observation: SerializeAsAny[ToolObservation]
    reward: float = 0.0
    done: bool = False


class GradeResult(BaseModel):
    score: float = Field(ge=0.0, le=1.0)
    details: dict[str, Any] = Field(default_factory=dict)
    output: str = Field(default="", description="What the submission printed (counts for nothing).")


class TaskInfo(BaseModel):
    id: str
    name: str
    difficulty: Literal["easy", "medium", "hard"]
    category: str = ""
    description: str = ""
    max_turns: int = 10


class TaskSpec(BaseModel):
    """A loaded task pack. ``solution_code`` never goes to a client, nor to a kernel that runs
    submitted code: grading runs it alone in a kernel of its own (``grading.reference``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    info: TaskInfo
    buggy_code: str
    solution_code: str = Field(default="", exclude=True, repr=False)
    hints: list[str] = Field(default_factory=list)
    grading: dict[str, Any] = Field(default_factory=dict)
    time_budget_s: float = 20.0
    path: Path | None = Field(default=None, exclude=True, repr=False)
    partial_code: str | None = Field(default=None, exclude=True, repr=False)  # for calibration
    variants: dict[str, list[Any]] = Field(default_factory=dict)  # name -> possible values
    params: dict[str, Any] = Field(default_factory=dict)  # the values this copy was rendered with
    # The pack's sources with their {{placeholders}}, so that any variant can be rendered.
    templates: dict[str, str | None] = Field(default_factory=dict, exclude=True, repr=False)
    seed: int | None = None
    # The hidden seed of the task's data generator for this episode (host-only; never sent to a
    # sandbox or a client). None: derived from a secret of the host process (grading/data.py).
    data_seed: int | None = Field(default=None, exclude=True, repr=False)


# --------------------------------------------------------------------- strict JSON
# The one encoder for every wire and file format (HTTP bodies, WebSocket frames, MCP results,
# JSONL trajectories): strict JSON never holds a bare NaN/Infinity token, so non-finite floats
# travel as null and the object they sit in says which they were under NON_FINITE_KEY.

NON_FINITE_KEY = "non_finite"
MAX_ENCODE_DEPTH = 200


class UnencodableError(ValueError):
    """A value that has no JSON form (a cycle, nesting deeper than MAX_ENCODE_DEPTH)."""


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _float_name(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def to_strict_json(value: Any) -> Any:
    """A copy of ``value`` (pydantic models are dumped in JSON mode) that strict JSON can hold.

    Every non-finite float becomes None; when there were any, each object that declares or
    already carries a ``non_finite`` map, else the root object, records the JSON Pointer of
    each from itself. Other objects take pydantic's JSON form, else their ``str``. Raises
    UnencodableError.
    """
    found: list[tuple[list[str], str]] = []

    def walk(v: Any, path: list[str], depth: int) -> Any:
        if depth > MAX_ENCODE_DEPTH:
            raise UnencodableError(f"nested deeper than {MAX_ENCODE_DEPTH} levels")
        if v is None or isinstance(v, (str, bool, int)):
            return v
        if isinstance(v, float):
            if math.isfinite(v):
                return v
            found.append((path, _float_name(v)))
            return None
        declares = False
        if isinstance(v, BaseModel):
            declares = NON_FINITE_KEY in type(v).model_fields
            # Python mode: JSON mode would turn a NaN in an Any-typed field into a silent null
            v = v.model_dump(mode="python")
        if isinstance(v, dict):
            mark = len(found)
            out = {str(k): walk(x, [*path, str(k)], depth + 1) for k, x in v.items()}
            marks = out.get(NON_FINITE_KEY, {} if declares else None)
            if isinstance(marks, dict) and len(found) > mark:
                mine, found[mark:] = found[mark:], []
                marks.update({_pointer(p[len(path) :]): k for p, k in mine})
                out[NON_FINITE_KEY] = marks
            return out
        if isinstance(v, (list, tuple)):
            return [walk(x, [*path, str(i)], depth + 1) for i, x in enumerate(v)]
        try:  # dates, paths, enums, sets, bytes...: pydantic's JSON form of them
            plain = to_jsonable_python(v)
        except (TypeError, ValueError):
            return str(v)
        return str(v) if plain is v else walk(plain, path, depth + 1)

    try:
        out = walk(value, [], 0)
    except RecursionError:
        raise UnencodableError("nested too deeply") from None
    if found:
        if not isinstance(out, dict):
            raise UnencodableError("non-finite numbers outside any object")
        out.setdefault(NON_FINITE_KEY, {}).update({_pointer(p): k for p, k in found})
    return out


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text for ``value`` (see ``to_strict_json``); never a bare NaN/Infinity."""
    return json.dumps(to_strict_json(value), allow_nan=False, ensure_ascii=False, indent=indent)


def restore_non_finite(data: dict[str, Any]) -> dict[str, Any]:
    """The inverse for Python readers: put NaN/Infinity back where ``non_finite`` says,
    in every object that carries the map (a copy; ``data`` is left alone)."""
    values = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

    def walk(v: Any) -> Any:
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, dict):
            return v
        out = {k: walk(x) for k, x in v.items()}
        marks = out.pop(NON_FINITE_KEY, None)
        for pointer, kind in (marks or {}).items() if isinstance(marks, dict) else ():
            parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
            node: Any = out
            try:
                for p in parts[:-1]:
                    node = node[int(p)] if isinstance(node, list) else node[p]
                last = parts[-1]
                if isinstance(node, list):
                    node[int(last)] = values.get(kind, math.nan)
                else:
                    node[last] = values.get(kind, math.nan)
            except (KeyError, IndexError, ValueError, TypeError):
                continue  # a pointer that names nothing: leave the document as it is
        return out

    return dict(walk(data))
