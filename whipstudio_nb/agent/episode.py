"""The episode runner and its trajectory: ``run_episode`` and ``EpisodeResult``.

Safeguards (from the reference agent loop): the episode stops after 3 consecutive parse errors,
when the same action (same type and arguments; the thought does not count) is chosen 3 times in
a row, at the turn limit, and cleanly when the policy's endpoint fails. Every decision of the
policy is one step: a parse error is a step that does not reach the environment (and costs it no
turn); it comes back to the policy as an observation whose ``error`` starts with ``PARSE_ERROR:``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ..config import SUCCESS_THRESHOLD
from ..models import (
    ErrorObservation,
    SubmitFixAction,
    SubmitFixObservation,
    dumps,
    to_strict_json,
)
from .config import success_threshold as _env_threshold
from .parsing import InvalidAction, validate_action
from .policies import EndpointError
from .render import summarize_observation

if TYPE_CHECKING:
    from ..env import WhipEnv

__all__ = [
    "MAX_PARSE_ERRORS",
    "MAX_REPEATS",
    "TRAJECTORY_FORMAT",
    "EpisodeResult",
    "StepRecord",
    "load_jsonl",
    "run_episode",
]

MAX_PARSE_ERRORS = 3
MAX_REPEATS = 3
TRAJECTORY_FORMAT = "whipstudio-trajectory/1"

StopReason = Literal[
    "done",  # the environment ended the episode (a submission, or its own turn limit)
    "turn_limit",  # the runner's turn limit
    "parse_errors",  # 3 consecutive parse errors
    "repeat",  # the same action 3 times in a row
    "policy_stopped",  # the policy returned None
    "endpoint_error",  # the model endpoint failed after retries
    "policy_error",  # the policy raised
    "env_error",  # the environment raised (sandbox trouble)
    "interrupted",  # KeyboardInterrupt or the stop event
]


def _dump(model: BaseModel) -> dict[str, Any]:
    """Strict JSON data (models' one encoder): NaN/Inf as null, listed under non_finite."""
    return dict(to_strict_json(model))


class StepTiming(BaseModel):
    started_at: float = Field(description="Unix time at which the policy was asked.")
    policy_s: float = Field(description="Seconds the policy took to choose.")
    env_s: float = Field(default=0.0, description="Seconds the environment took to step.")


class StepRecord(BaseModel):
    """One decision of the policy and what came of it."""

    step: int
    action_type: str
    action: dict[str, Any] | None = Field(
        default=None, description="The validated action; None when the reply did not parse."
    )
    thought: str | None = None
    observation: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    reward: float = 0.0
    done: bool = False
    error: str | None = None
    raw_response: str | None = Field(
        default=None, description="The model's reply, kept when it did not parse."
    )
    timing: StepTiming


class EpisodeResult(BaseModel):
    """Everything about one episode; ``save_jsonl``/``load_jsonl`` round-trip it."""

    task_id: str
    seed: int | None = None
    model: str | None = None
    policy: str = ""
    use_tools: bool | None = None
    max_turns: int
    initial_observation: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)
    score: float = 0.0
    success: bool = False
    success_threshold: float = SUCCESS_THRESHOLD
    stop_reason: str = "done"
    error: str | None = None
    fixed_code: str | None = None
    output: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    package_version: str = ""

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.steps]

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    # ------------------------------------------------------------------ JSONL

    def header(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"steps"})
        return {"type": "header", "format": TRAJECTORY_FORMAT, "n_steps": self.n_steps, **d}

    def save_jsonl(self, path: str | Path) -> Path:
        """One header record (task, seed, model, package version, outcome), then one record
        per step (observation, action, reward, done, timing)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            f.write(dumps(self.header()) + "\n")
            for s in self.steps:
                f.write(dumps({"type": "step", **s.model_dump(mode="json")}) + "\n")
        return path

    @classmethod
    def load_jsonl(cls, path: str | Path) -> EpisodeResult:
        records = [
            json.loads(line)
            for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if not records or records[0].get("type") != "header":
            raise ValueError(f"{path}: not a trajectory file (no header record)")
        header = dict(records[0])
        fmt = header.pop("format", None)
        if fmt != TRAJECTORY_FORMAT:
            raise ValueError(f"{path}: unsupported trajectory format {fmt!r}")
        for key in ("type", "n_steps"):
            header.pop(key, None)
        steps = [
            StepRecord.model_validate({k: v for k, v in r.items() if k != "type"})
            for r in records[1:]
            if r.get("type") == "step"
        ]
        return cls.model_validate({**header, "steps": steps})


def load_jsonl(path: str | Path) -> EpisodeResult:
    """Read a trajectory written by ``EpisodeResult.save_jsonl``."""
    return EpisodeResult.load_jsonl(path)


def _action_key(action: BaseModel) -> str:
    return json.dumps(action.model_dump(mode="json", exclude={"thought"}), sort_keys=True)


def _refused(
    record: Callable[[StepRecord], None],
    env: WhipEnv,
    n: int,
    action_type: str,
    msg: str,
    done: bool,
    timing: StepTiming,
    **extra: Any,
) -> ErrorObservation:
    """Record a step the loop refused to send to the environment (an unparsable reply, a
    repeated action): the policy sees an ErrorObservation, and the turn is not spent."""
    err_obs = ErrorObservation(
        action_type=action_type, turn=env.state().turn, episode_done=done, error=msg
    )
    record(
        StepRecord(
            step=n,
            action_type=action_type,
            observation=_dump(err_obs),
            summary=summarize_observation(err_obs),
            done=done,
            error=msg,
            timing=timing,
            **extra,
        )
    )
    return err_obs


def _package_version() -> str:
    from .._version import __version__

    return __version__


def run_episode(
    env: WhipEnv,
    policy: Callable[[Any, Sequence[StepRecord]], Any],
    task_id: str,
    seed: int | None = None,
    on_step: Callable[[StepRecord], Any] | None = None,
    *,
    max_turns: int | None = None,
    success_threshold: float | None = None,
    on_reset: Callable[[Any], Any] | None = None,
    stop: threading.Event | None = None,
) -> EpisodeResult:
    """Reset ``env`` to ``task_id`` and let ``policy`` act until the episode ends.

    ``on_step(record)`` is called after every step (a live dashboard); ``on_reset(observation)``
    once after the reset. ``max_turns`` defaults to the environment's turn limit. A
    KeyboardInterrupt or setting ``stop`` ends the run early, keeping the steps so far.
    Only a caller's mistake raises (an unknown task id); the policy's and the endpoint's
    failures end the episode with ``stop_reason`` and ``error`` set.
    """
    started = time.time()
    t0 = time.monotonic()
    threshold = _env_threshold() if success_threshold is None else success_threshold
    obs = env.reset(task_id, seed=seed)
    limit = max_turns or obs.max_turns or env.state().max_turns or 10
    model = getattr(policy, "model", None)
    result = EpisodeResult(
        task_id=obs.task_id,
        seed=seed,
        model=model if isinstance(model, str) else None,
        policy=type(policy).__name__,
        use_tools=getattr(policy, "use_tools", None),
        max_turns=limit,
        initial_observation=_dump(obs),
        success_threshold=threshold,
        started_at=started,
        package_version=_package_version(),
    )
    start = getattr(policy, "start", None)
    last_obs: Any = obs
    parse_errors = 0
    last_key: str | None = None
    repeats = 0
    stop_reason: str = "turn_limit"

    def record(rec: StepRecord) -> None:
        result.steps.append(rec)
        if on_step is not None:
            on_step(rec)

    try:
        if callable(start):
            start(obs.task_id, seed)
        if on_reset is not None:
            on_reset(obs)
        for n in range(1, limit + 1):
            if stop is not None and stop.is_set():
                stop_reason = "interrupted"
                break
            asked = time.time()
            p0 = time.monotonic()
            try:
                choice = policy(last_obs, result.steps)
            except EndpointError as exc:
                stop_reason, result.error = "endpoint_error", str(exc)
                break
            except Exception as exc:  # a policy's bug must not take the whole run down
                stop_reason, result.error = "policy_error", f"{type(exc).__name__}: {exc}"
                break
            timing = StepTiming(started_at=asked, policy_s=round(time.monotonic() - p0, 4))
            if choice is None:
                stop_reason = "policy_stopped"
                break
            if isinstance(choice, dict):
                choice = validate_action(choice, dumps(choice))
            if isinstance(choice, InvalidAction):
                parse_errors += 1
                last_key, repeats = None, 0
                final = parse_errors >= MAX_PARSE_ERRORS
                msg = f"PARSE_ERROR: {choice.error}"
                if final:
                    msg += f" (stopping: {MAX_PARSE_ERRORS} consecutive parse errors)"
                raw = choice.raw or None
                last_obs = _refused(
                    record, env, n, choice.action_type, msg, final, timing, raw_response=raw
                )
                if final:
                    stop_reason = "parse_errors"
                    break
                continue
            parse_errors = 0
            key = _action_key(choice)
            repeats = repeats + 1 if key == last_key else 1
            last_key = key
            thought = getattr(choice, "thought", None)
            if repeats >= MAX_REPEATS:
                msg = (
                    f"REPEAT_STOP: the same {choice.action_type} action was chosen "
                    f"{MAX_REPEATS} times in a row"
                )
                _refused(
                    record,
                    env,
                    n,
                    choice.action_type,
                    msg,
                    True,
                    timing,
                    action=_dump(choice),
                    thought=thought,
                )
                stop_reason = "repeat"
                break
            submitted = None
            if isinstance(choice, SubmitFixAction):
                submitted = choice.fixed_code if choice.fixed_code is not None else env.working_code
            e0 = time.monotonic()
            try:
                res = env.step(choice)
            except Exception as exc:
                stop_reason, result.error = "env_error", f"{type(exc).__name__}: {exc}"
                break
            timing.env_s = round(time.monotonic() - e0, 4)
            o = res.observation
            if isinstance(o, SubmitFixObservation) and o.error is None:
                result.fixed_code, result.output = submitted, o.error_log
            record(
                StepRecord(
                    step=n,
                    action_type=choice.action_type,
                    action=_dump(choice),
                    thought=thought,
                    observation=_dump(o),
                    summary=summarize_observation(o),
                    reward=float(res.reward),
                    done=bool(res.done),
                    error=o.error,
                    timing=timing,
                )
            )
            last_obs = o
            if res.done:
                stop_reason = "done"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    state = env.state()
    result.stop_reason = stop_reason
    result.score = float(state.best_reward) if state.submitted else 0.0
    result.success = result.score >= threshold
    result.duration_s = round(time.monotonic() - t0, 3)
    return result
