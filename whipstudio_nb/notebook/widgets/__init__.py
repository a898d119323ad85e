"""Notebook views. Each has a live ipywidgets form and a static one (text/plain, text/html and
image/png for plots) in ``_repr_mimebundle_``. ipywidgets and matplotlib are imported only
when a view is rendered."""

from __future__ import annotations

from ._base import Stack, View
from .agent_run import AgentRunView
from .dashboard import EpisodeDashboard, TimelineEntry
from .diff import DiffViewer
from .observation import observation_view, timeline
from .plots import GradNorms, LossCurve, sparkline
from .progress import LiveLossCurve, progress
from .report import GradeReport
from .status import BudgetStatus, WithStatus
from .tables import CodeView, Message, SnippetOutput, TaskTable, VariableTable
from .tensor import TensorInspector, summary_line

__all__ = [
    "AgentRunView",
    "BudgetStatus",
    "CodeView",
    "DiffViewer",
    "EpisodeDashboard",
    "GradNorms",
    "GradeReport",
    "LossCurve",
    "Message",
    "SnippetOutput",
    "Stack",
    "TaskTable",
    "TensorInspector",
    "TimelineEntry",
    "VariableTable",
    "View",
    "WithStatus",
    "observation_view",
    "LiveLossCurve",
    "progress",
    "sparkline",
    "summary_line",
    "timeline",
]
