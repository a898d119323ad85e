"""Policies: anything callable as ``policy(observation, history) -> action``.

The action may be an action model, a dict (validated by the runner), an ``InvalidAction``
(a reply that could not be parsed: counted as a parse error) or ``None`` (the policy stops).
A policy may also define ``start(task_id, seed)``, called by ``run_episode`` after the reset,
and a ``model`` attribute naming it in logs and trajectories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import WhipError
from ..models import SubmitFixAction

if TYPE_CHECKING:
    from .episode import StepRecord

__all__ = ["EndpointError", "OraclePolicy", "Policy", "ScriptedPolicy"]


class EndpointError(WhipError, RuntimeError):
    """The model endpoint kept failing (HTTP 5xx, timeouts, connection refused) after the
    bounded retries, or refused the request outright: the episode ends cleanly."""


@runtime_checkable
class Policy(Protocol):
    def __call__(self, observation: Any, history: Sequence[StepRecord]) -> Any: ...


class ScriptedPolicy:
    """Plays a fixed list of actions (dicts or action models), then stops."""

    model = "scripted"

    def __init__(self, actions: Iterable[Any]) -> None:
        self.actions = list(actions)
        self._next = 0

    def start(self, task_id: str, seed: int | None) -> None:
        self._next = 0

    def __call__(self, observation: Any, history: Sequence[StepRecord]) -> Any:
        if self._next >= len(self.actions):
            return None
        action = self.actions[self._next]
        self._next += 1
        return action


class OraclePolicy:
    """Submits the task's reference fix (its variant's, with a seed).

    For demos and tests only: it reads the host-only solution, so it is never exposed over the
    network.
    """

    model = "oracle"

    def __init__(self) -> None:
        self._task: tuple[str, int | None] | None = None

    def start(self, task_id: str, seed: int | None) -> None:
        self._task = (task_id, seed)

    def __call__(self, observation: Any, history: Sequence[StepRecord]) -> Any:
        from ..tasks import load_task

        task_id, seed = self._task or (getattr(observation, "task_id", None), None)
        if not task_id:
            raise ValueError("OraclePolicy: no task (call start() or pass a reset observation)")
        solution = load_task(task_id, seed=seed).solution_code
        return SubmitFixAction(
            fixed_code=solution,
            thought="Submit the reference fix.",
            explanation="The task's reference solution.",
        )
