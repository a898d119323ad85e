"""The default view of any observation (or State): what a notebook shows for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import dashboard, plots, report, tables, tensor
from ._base import Stack, View

__all__ = ["TOOL_VIEWS", "observation_view", "timeline"]


def _snippet(o: Any, views: list[View]) -> list[View]:
    return [*views, tables.SnippetOutput(o.stdout, o.stderr, o.exit_code, o.timed_out)]


def _tensor(o: Any, views: list[View]) -> list[View]:
    if o.shape is not None:
        views.append(tensor.TensorInspector(o))
    if o.stdout or o.stderr:
        views.append(tables.SnippetOutput(o.stdout, o.stderr))
    return views


def _probe(o: Any, views: list[View]) -> list[View]:
    views.append(plots.LossCurve(o.losses, title="Probe: training loss"))
    views.append(plots.GradNorms(o.grad_norms, o.params_without_grad))
    if o.stderr:
        views.append(tables.SnippetOutput(o.stdout, o.stderr, 1))
    return views


def _grade(o: Any, views: list[View]) -> list[View]:
    return [report.GradeReport(o.reward, o.grader_details, o.error_log, error=o.error)]


def _code(o: Any, views: list[View]) -> list[View]:
    view = tables.CodeView(o.code, "Working copy", note=o.message, highlight=o.changed_lines)
    return [*views, view]


def _fields(o: Any, views: list[View]) -> list[View]:
    from ...models import ToolObservation

    own = {k: getattr(o, k) for k in type(o).model_fields if k not in ToolObservation.model_fields}
    return [*views, tables.FieldTable(own)] if own else views


# A tool's spec names its view (``Tool.view``); each builder gets the observation and the views
# so far (its error message, if any) and returns the views to show. A tool whose view is not
# here shows its own fields (``fields``).
TOOL_VIEWS: dict[str, Callable[[Any, list[View]], list[View]]] = {
    "snippet": _snippet,
    "tensor": _tensor,
    "probe": _probe,
    "variables": lambda o, views: [*views, tables.VariableTable(o.results)],
    "diff": lambda o, views: [*views, tables.CodeView(o.diff or "(no changes)", "Diff")],
    "grade": _grade,
    "code": _code,
    "fields": _fields,
}


def _tool_view(action_type: str) -> str | None:
    from ...tools import get_tool

    try:
        return get_tool(action_type).view
    except KeyError:
        return None


def observation_view(obj: Any) -> View:
    """A view for an observation from ``reset``/``step``, or a ``State``."""
    from ... import models as m

    if isinstance(obj, m.Observation):
        note = f"Note: {obj.error_log}" if obj.error_log else ""
        return tables.CodeView(
            obj.buggy_code, f"{obj.task_id}: buggy code", obj.task_description, note
        )
    if isinstance(obj, m.State):
        return dashboard.EpisodeDashboard(obj)
    if isinstance(obj, m.ErrorObservation):
        return tables.Message(obj.error or "unknown error")
    views: list[View] = []
    if obj.error:
        views.append(tables.Message(obj.error))
    views = TOOL_VIEWS.get(_tool_view(obj.action_type) or "", _fields)(obj, views)
    if len(views) == 1:
        return views[0]
    return Stack(views)


def timeline(steps: Iterable[tuple[Any, Any]]) -> list[dashboard.TimelineEntry]:
    """Timeline entries for the episode dashboard from ``(action, observation)`` pairs, e.g. the
    steps of a policy loop: ``EpisodeDashboard(env.state(), timeline(steps))``."""
    entries = []
    for action, obs in steps:
        act = action if isinstance(action, dict) else action.model_dump()
        summary = str(act.get("thought") or act.get("target_expression") or "")
        if obs.action_type == "submit_fix" and not obs.error:
            summary = f"score {obs.reward:.3f}"
        entries.append(
            dashboard.TimelineEntry(
                obs.turn, obs.action_type, summary, observation_view(obs), obs.error, obs.reward
            )
        )
    return entries
