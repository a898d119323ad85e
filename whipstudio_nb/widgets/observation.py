"""The default view of any observation (or State): what a notebook shows for it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import dashboard, plots, report, tables, tensor
from ._base import Stack, View

__all__ = ["observation_view", "timeline"]


def observation_view(obj: Any) -> View:
    """A view for an observation from ``reset``/``step``, or a ``State``."""
    from .. import models as m

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
    if isinstance(obj, m.ExecuteSnippetObservation):
        views.append(tables.SnippetOutput(obj.stdout, obj.stderr, obj.exit_code, obj.timed_out))
    elif isinstance(obj, m.InspectTensorObservation):
        if obj.shape is not None:
            views.append(tensor.TensorInspector(obj))
        if obj.stdout or obj.stderr:
            views.append(tables.SnippetOutput(obj.stdout, obj.stderr))
    elif isinstance(obj, m.RunTrainingProbeObservation):
        views.append(plots.LossCurve(obj.losses, title="Probe: training loss"))
        views.append(plots.GradNorms(obj.grad_norms, obj.params_without_grad))
        if obj.stderr:
            views.append(tables.SnippetOutput(obj.stdout, obj.stderr, 1))
    elif isinstance(obj, m.GetVariableStateObservation):
        views.append(tables.VariableTable(obj.results))
    elif isinstance(obj, m.InspectDiffObservation):
        views.append(tables.CodeView(obj.diff or "(no changes)", "Diff"))
    elif isinstance(obj, m.SubmitFixObservation):
        views = [report.GradeReport(obj.reward, obj.grader_details, obj.error_log, error=obj.error)]
    elif isinstance(obj, m.CodeObservation):
        views.append(
            tables.CodeView(obj.code, "Working copy", note=obj.message, highlight=obj.changed_lines)
        )
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
