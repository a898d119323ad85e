"""WhipEnv: the episode state machine behind every front end (notebook, CLI, server, agents).

Agent mistakes never raise from ``step``: they come back as an observation with ``error`` (the
human message) and ``error_code`` (stable, ``errors.ErrorCode``) set. Caller mistakes (an
unknown task id) raise a ``WhipError`` (``UnknownTaskError``, a ValueError).
Every action runs through its ``Tool`` spec in the registry (``tools``).
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from typing import Any

from pydantic import ValidationError

from .config import SandboxConfig
from .episode_file import (
    EpisodeRecord,
    TrailEntry,
    append_trail,
    student_id_from_env,
    trail_entry,
)
from .errors import ConfigError, ErrorCode, SandboxError, format_validation_error
from .grading import grade_code
from .models import (
    ErrorObservation,
    GradeResult,
    Observation,
    State,
    StepResult,
    TaskSpec,
    ToolCallRecord,
    ToolObservation,
)
from .sandbox import ProgressCallback, Sandbox, check_code, owner_scope
from .sandbox.isolation import warning_for
from .sandbox.policy import oversized_field
from .tasks import load_task
from .tools import ToolContext, action_adapter, action_models, get_tool, kernel_preload, tool_names
from .turns import costs_turn, syntax_error_in
from .working_copy import WorkingCopy

__all__ = ["WhipEnv", "make_sandbox"]

# Front-end neutral wording: callers map error codes to their own words (HTTP, magics).
EPISODE_DONE_MSG = "Episode already complete: reset to start a new episode."
NO_EPISODE_MSG = "No episode in progress: reset to start a new episode."


def make_sandbox(
    pool_size: int | None = None, *, config: SandboxConfig | None = None, **kwargs: Any
) -> Sandbox:
    """A sandbox (``config``, default ``SandboxConfig.from_env()``) whose kernels come with the
    registered tools' in-kernel halves, the grading harness and the data loader imported."""
    return Sandbox(config, pool_size=pool_size, preload=kernel_preload(), **kwargs)


class WhipEnv:
    """One debugging episode at a time, over a warm pool of sandbox kernels.

    ``max_turns`` defaults to the task's; ``max_submissions`` (default 1) is how many
    ``submit_fix`` calls an episode allows before it ends. The sandbox comes from ``config``
    (default: ``SandboxConfig.from_env()``, the ``WHIP_*`` variables), with ``pool_size`` and
    ``tool_timeout_s`` overriding it; or pass a ready ``sandbox`` (then not ``config``).
    """

    def __init__(
        self,
        *,
        max_turns: int | None = None,
        tool_timeout_s: float | None = None,
        max_submissions: int = 1,
        pool_size: int | None = None,
        sandbox: Sandbox | None = None,
        config: SandboxConfig | None = None,
    ) -> None:
        if max_turns is not None and max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        if max_submissions < 1:
            raise ValueError("max_submissions must be >= 1")
        if sandbox is not None and config is not None:
            raise ConfigError("pass either sandbox= or config=, not both (a sandbox has one)")
        if sandbox is None:
            config = (config or SandboxConfig.from_env()).with_overrides(
                pool_size=pool_size, tool_timeout_s=tool_timeout_s
            )
        else:
            config = getattr(sandbox, "config", None) or SandboxConfig()
            config = config.with_overrides(tool_timeout_s=tool_timeout_s)
        self.config = config
        self.max_turns_override = max_turns
        self.tool_timeout_s = config.tool_timeout_s
        self.max_submissions = max_submissions
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox or make_sandbox(config=config)
        self._lock = threading.RLock()
        self._task: TaskSpec | None = None
        self._copy: WorkingCopy | None = None
        self._state = State()
        self._closed = False
        self.last_grade: GradeResult | None = None
        self._trail: list[TrailEntry] = []  # for export(): every step, as given and answered
        self._submitted_code: str | None = None
        self._graded_now = False  # set by the submit tool during the current step

    # ------------------------------------------------------------------ episode API

    def reset(self, task_id: str, seed: int | None = None) -> Observation:
        task = load_task(task_id, seed=seed)  # raises UnknownTaskError
        # Hidden data for this episode: the tools and the grader see the same draw.
        task = task.model_copy(update={"data_seed": secrets.randbits(62)})
        with self._lock:
            self._check_open()
            self._task = task
            self._copy = WorkingCopy(task.buggy_code)
            max_turns = self.max_turns_override or task.info.max_turns
            self._state = State(
                task_id=task.info.id,
                episode_id=uuid.uuid4().hex,
                max_turns=max_turns,
                seed=seed,
            )
            self.last_grade = None
            self._trail, self._submitted_code = [], None
            return Observation(
                task_id=task.info.id,
                task_description=task.info.description,
                buggy_code=task.buggy_code,
                error_log=warning_for(self.sandbox.isolation) or "",
                episode_id=self._state.episode_id,
                max_turns=max_turns,
                isolation=self.sandbox.isolation,
            )

    def step(self, action: Any, *, on_progress: ProgressCallback | None = None) -> StepResult:
        """Run one action. ``on_progress`` receives partial results of long calls as they come
        (``{"losses": [...], "offset": n}`` from probes and grading), for live views."""
        with self._lock, owner_scope(self):  # its calls queue fairly beside other sessions'
            res = self._step(action, on_progress=on_progress)
            if self._task is not None:
                graded = self._graded_now and not res.observation.error
                entry = trail_entry(action, res, self._submitted_code if graded else None)
                append_trail(self._trail, entry)
            return res

    def export(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        student_id: str | None = None,
        assignment: str | None = None,
    ) -> EpisodeRecord:
        """The episode as an ``EpisodeRecord`` (task, variant seed, student id, final submitted
        code, working copy, score and components, turn-by-turn trail), written to ``path`` as
        strict JSON if given; ``load_episode`` reads it back. ``student_id`` defaults to
        ``$WHIP_STUDENT_ID`` or ``$JUPYTERHUB_USER``."""
        from ._version import __version__

        with self._lock:
            if self._task is None or self._copy is None:
                raise ValueError("no episode to export: call reset() first")
            st, grade = self._state, self.last_grade
            record = EpisodeRecord(
                whipstudio_version=__version__,
                student_id=student_id_from_env() if student_id is None else student_id,
                assignment=assignment,
                task_id=self._task.info.id,
                seed=st.seed,
                variant=self._task.params,
                episode_id=st.episode_id,
                turns=st.turn,
                max_turns=st.max_turns,
                submissions=st.submissions,
                max_submissions=self.max_submissions,
                episode_done=st.episode_done,
                final_code=self._submitted_code,
                working_code=self._copy.code,
                score=grade.score if grade else None,
                best_score=st.best_reward,
                components=(grade.details.get("components") or {}) if grade else {},
                isolation=self.sandbox.isolation,
                trail=[t.model_copy(deep=True) for t in self._trail],
            )
        if path is not None:
            record.write(path)
        return record

    def _step(self, action: Any, *, on_progress: ProgressCallback | None = None) -> StepResult:
        with self._lock:
            self._check_open()
            self._graded_now = False
            st = self._state
            if self._task is None or self._copy is None:
                return self._error(None, NO_EPISODE_MSG, "no_episode", done=True)
            if st.episode_done:
                return self._error(
                    _action_type_of(action), EPISODE_DONE_MSG, "episode_done", done=True
                )

            too_big = oversized_field(action, limit=self.config.max_code_bytes)
            if too_big:  # checked before parsing anything: costs no turn
                return self._error(_action_type_of(action), too_big, "too_large", done=False)
            parsed, problem, problem_code = _parse_action(action)
            if parsed is not None:
                tool = get_tool(parsed.action_type)
                codes = [code for _, code, _ in tool.code_of(parsed)]
                violation = next(filter(None, map(check_code, codes)), None)
                if violation:  # rejected before running: costs no turn, ends nothing
                    return self._error(
                        parsed.action_type, violation, "security_violation", done=False
                    )
                bad = syntax_error_in(parsed, self._copy.code)
                if bad:  # nothing can run: costs no turn either (the rules: turns.py)
                    msg = bad.describe()
                    return self._error(parsed.action_type, msg, "syntax_error", done=False)

            counts = parsed is None or costs_turn(parsed.action_type)
            st.turn += counts
            assert st.max_turns is not None
            if st.turn > st.max_turns:
                st.episode_done = True
                msg = f"Maximum turns ({st.max_turns}) exceeded"
                st.tool_call_history.append(
                    ToolCallRecord(turn=st.turn, action_type=_action_type_of(action), error=msg)
                )
                return self._error(_action_type_of(action), msg, "turn_limit", done=True)
            if parsed is None:
                st.tool_call_history.append(
                    ToolCallRecord(turn=st.turn, action_type=_action_type_of(action), error=problem)
                )
                return self._error(
                    _action_type_of(action), problem or "Invalid action", problem_code, done=False
                )

            try:
                obs = self._run_tool(parsed, on_progress)
            except SandboxError as exc:  # infrastructure, not the agent: in-band, no turn used
                st.turn -= counts
                message = f"Sandbox unavailable: {exc}"
                return self._error(parsed.action_type, message, "sandbox_unavailable", done=False)
            except BaseException:  # interrupted (Ctrl-C, Stop): nothing recorded, no turn spent
                st.turn -= counts
                raise
            if obs.error and obs.error_code is None:
                obs.error_code = "tool_error"
            reward = obs.reward if self._graded_now else 0.0
            if self._graded_now and obs.error is None:
                st.submitted = True
                st.submissions += 1
                st.best_reward = max(st.best_reward, reward)
                if st.submissions >= self.max_submissions:
                    st.episode_done = True
            obs.turn = st.turn
            obs.episode_done = st.episode_done
            obs.reward = reward
            st.tool_call_history.append(
                ToolCallRecord(
                    turn=st.turn, action_type=parsed.action_type, reward=reward, error=obs.error
                )
            )
            return StepResult(observation=obs, reward=reward, done=st.episode_done)

    def state(self) -> State:
        with self._lock:
            return self._state.model_copy(deep=True)

    @property
    def task(self) -> TaskSpec | None:
        return self._task

    @property
    def working_code(self) -> str | None:
        return self._copy.code if self._copy else None

    def grade(self, code: str, task_id: str | None = None) -> GradeResult:
        """Grade code for a task (the current one by default) without touching the episode."""
        task = load_task(task_id) if task_id else self._task
        if task is None:
            raise ValueError("no task: pass task_id or call reset() first")
        with owner_scope(self):
            return grade_code(task, code, self.sandbox)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._owns_sandbox:
            self.sandbox.close()

    def __enter__(self) -> WhipEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this WhipEnv is closed")

    def _error(
        self, action_type: str | None, message: str, code: ErrorCode, *, done: bool
    ) -> StepResult:
        obs = ErrorObservation(
            action_type=action_type or "invalid",
            turn=self._state.turn,
            episode_done=done,
            error=message,
            error_code=code,
        )
        return StepResult(observation=obs, reward=0.0, done=done)

    def _graded(self, code: str, result: GradeResult) -> None:
        """A tool graded a submission: its score is this step's reward."""
        self.last_grade = result
        self._submitted_code = code
        self._graded_now = True

    def _run_tool(self, action: Any, on_progress: ProgressCallback | None) -> ToolObservation:
        assert self._task is not None and self._copy is not None
        ctx = ToolContext(
            sandbox=self.sandbox,
            timeout_s=self.tool_timeout_s,
            task=self._task,
            copy=self._copy,
            on_progress=on_progress,
            on_graded=self._graded,
        )
        obs: ToolObservation = get_tool(action.action_type).run(ctx, action)
        return obs


def _action_type_of(action: Any) -> str:
    if isinstance(action, dict):
        t = action.get("action_type")
        return t if isinstance(t, str) else "invalid"
    return getattr(action, "action_type", "invalid")


def _parse_action(action: Any) -> tuple[Any | None, str | None, ErrorCode]:
    """(parsed action, None, _) or (None, message naming the problem, its code)."""
    if isinstance(action, tuple(action_models().values())):
        return action, None, "invalid_action"
    valid = ", ".join(tool_names())
    if not isinstance(action, dict):
        kind = type(action).__name__
        msg = f"Invalid action: expected an object with 'action_type', got {kind}"
        return None, msg, "invalid_action"
    t = action.get("action_type")
    if t is None:
        msg = f"Invalid action: field 'action_type' is required. Valid: {valid}"
        return None, msg, "invalid_action"
    if not isinstance(t, str) or t not in action_models():
        return None, f"Unknown action_type: {t!r}. Valid: {valid}", "unknown_action"
    try:
        return action_adapter().validate_python(action), None, "invalid_action"
    except ValidationError as exc:
        return None, format_validation_error(exc, skip=tool_names()), "invalid_action"
