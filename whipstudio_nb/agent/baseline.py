"""The LLM baseline over the seed tasks: the reference's log lines and response shapes.

``run_baseline`` returns the ``/baseline`` shape and ``run_baseline_task`` the
``/baseline/task/{id}`` shape; neither raises for a failing endpoint, a bad configuration or an
unknown task: failures are reported in the result. ``baseline_main`` is ``whip baseline``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..config import SUCCESS_THRESHOLD
from ..errors import WhipError
from .config import DEFAULT_MODEL_NAME, AgentConfig, AgentConfigError
from .episode import EpisodeResult, StepRecord, run_episode
from .llm import LLMPolicy

if TYPE_CHECKING:
    from ..env import WhipEnv

__all__ = [
    "SEED_TASKS",
    "baseline_cli",
    "baseline_main",
    "default_task_ids",
    "format_end",
    "format_start",
    "format_step",
    "run_baseline",
    "run_baseline_task",
]

SEED_TASKS = ("task1", "task2", "task3", "task4", "task5", "task6")
ENV_NAME = "whipstudio"
_FAILED = ("endpoint_error", "policy_error", "env_error", "error")

log = logging.getLogger("whipstudio_nb.agent")


def default_task_ids() -> list[str]:
    """The reference's six seed tasks, those that exist."""
    from ..tasks import find_task_dirs

    available = find_task_dirs()
    return [t for t in SEED_TASKS if t in available]


# ---------------------------------------------------------------------- log lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_start(task_id: str, model: str) -> str:
    return f"[START] task={task_id} env={ENV_NAME} model={model}"


def format_step(rec: StepRecord) -> str:
    error = _one_line(rec.error) if rec.error else "null"
    return (
        f"[STEP] step={rec.step} action={rec.action_type} reward={rec.reward:.2f} "
        f"done={str(rec.done).lower()} error={error or 'null'}"
    )


def format_end(result: EpisodeResult) -> str:
    rewards = ",".join(f"{r:.2f}" for r in result.rewards)
    return (
        f"[END] success={str(result.success).lower()} steps={result.n_steps} "
        f"score={result.score:.2f} rewards={rewards}"
    )


# ---------------------------------------------------------------------- running


def _task_turns(task_id: str) -> int:
    from ..tasks import load_task

    try:
        return load_task(task_id).info.max_turns
    except Exception:
        return 0


def _failed_result(task_id: str, cfg: AgentConfig | None, use_tools: bool, error: str) -> Any:
    return EpisodeResult(
        task_id=task_id,
        model=cfg.model if cfg else None,
        policy="LLMPolicy",
        use_tools=use_tools,
        max_turns=(cfg.max_steps if cfg else None) or _task_turns(task_id),
        stop_reason="error",
        error=error,
        success_threshold=cfg.success_threshold if cfg else SUCCESS_THRESHOLD,
    )


def _run_task(
    env: WhipEnv,
    task_id: str,
    cfg: AgentConfig,
    *,
    use_tools: bool,
    max_turns: int | None,
    emit: Callable[[str], Any] | None = None,
) -> EpisodeResult:
    """One task, never raising: a failure becomes a result with ``stop_reason`` and ``error``."""
    if emit:
        emit(format_start(task_id, cfg.model))
    policy = LLMPolicy(config=cfg, use_tools=use_tools)
    try:
        result = run_episode(
            env,
            policy,
            task_id,
            max_turns=max_turns or cfg.max_steps,
            success_threshold=cfg.success_threshold,
            on_step=(lambda rec: emit(format_step(rec))) if emit else None,
        )
    except Exception as exc:  # the reset failed: unknown task, sandbox trouble
        msg = str(exc) if isinstance(exc, WhipError) else f"{type(exc).__name__}: {exc}"
        result = _failed_result(task_id, cfg, use_tools, msg)
    if result.error:
        log.warning("%s: %s: %s", task_id, result.stop_reason, result.error)
    if emit:
        emit(format_end(result))
    return result


def _model_id(model: str | None) -> str:
    return model or os.environ.get("MODEL_NAME") or DEFAULT_MODEL_NAME


def _config(model: str | None, max_turns: int | None) -> AgentConfig:
    return AgentConfig.from_env(model=model, max_steps=max_turns).validate()


def _make_env(env_factory: Callable[[], WhipEnv] | None, max_turns: int | None) -> WhipEnv:
    if env_factory is None:
        from ..env import WhipEnv

        return WhipEnv(max_turns=max_turns)
    env = env_factory()
    if max_turns is not None:
        env.max_turns_override = max_turns
    return env


def _close_quietly(env: WhipEnv) -> None:
    try:
        env.close()
    except Exception as exc:  # the results are in; a failing cleanup must not lose them
        log.warning("closing the environment failed: %s: %s", type(exc).__name__, exc)


def _task_dict(result: EpisodeResult, cfg_model: str | None, use_tools: bool) -> dict[str, Any]:
    status = "error" if result.stop_reason in _FAILED else "ok"
    attempts = [
        {
            "step": s.step,
            "action_type": s.action_type,
            "thought": s.thought,
            "action": s.action,
            "reward": s.reward,
            "done": s.done,
            "error": s.error,
            "summary": s.summary,
        }
        for s in result.steps
    ]
    tool_history = [
        {
            "turn": s.observation.get("turn"),
            "action_type": s.action_type,
            "reward": s.reward,
            "error": s.error,
            "observation": s.observation,
        }
        for s in result.steps
        if s.action is not None
        and s.observation.get("turn") is not None
        and not str(s.error or "").startswith("REPEAT_STOP")
    ]
    out: dict[str, Any] = {
        "task_id": result.task_id,
        "score": result.score,
        "status": status,
        "model_id": result.model or cfg_model,
        "use_tools": use_tools,
        "max_turns": result.max_turns,
        "fixed_code": result.fixed_code,
        "output": result.output,
        "attempts": attempts,
        "tool_history": tool_history,
        "success": result.success,
        "stop_reason": result.stop_reason,
    }
    if status == "error":
        out["error"] = result.error or result.stop_reason
    return out


def run_baseline_task(
    task_id: str,
    *,
    model: str | None = None,
    use_tools: bool = True,
    max_turns: int | None = None,
    env_factory: Callable[[], WhipEnv] | None = None,
) -> dict[str, Any]:
    """The ``/baseline/task/{task_id}`` response: the agent's run on one task, in detail."""
    try:
        cfg = _config(model, max_turns)
    except AgentConfigError as exc:
        cfg_model = _model_id(model)
        return _task_dict(_failed_result(task_id, None, use_tools, str(exc)), cfg_model, use_tools)
    try:
        env = _make_env(env_factory, max_turns)
    except Exception as exc:
        err = f"could not start the environment: {type(exc).__name__}: {exc}"
        return _task_dict(_failed_result(task_id, cfg, use_tools, err), cfg.model, use_tools)
    try:
        result = _run_task(env, task_id, cfg, use_tools=use_tools, max_turns=max_turns)
    finally:
        _close_quietly(env)
    return _task_dict(result, cfg.model, use_tools)


def _baseline_dict(
    results: list[EpisodeResult], model_id: str, use_tools: bool, error: str | None = None
) -> dict[str, Any]:
    scores = {r.task_id: r.score for r in results}
    out: dict[str, Any] = {
        "baseline_scores": scores,
        "average": round(sum(scores.values()) / len(scores), 4) if scores else 0.0,
        "model_id": model_id,
        "use_tools": use_tools,
    }
    errors = {r.task_id: r.error or r.stop_reason for r in results if r.stop_reason in _FAILED}
    if errors:
        out["errors"] = errors
    if error:
        out["error"] = error
    return out


def run_baseline(
    task_ids: list[str] | None = None,
    *,
    model: str | None = None,
    use_tools: bool = True,
    max_turns: int | None = None,
    env_factory: Callable[[], WhipEnv] | None = None,
) -> dict[str, Any]:
    """The ``/baseline`` response: the agent's score on each task (the seed tasks by default)."""
    ids = list(task_ids) if task_ids else default_task_ids()
    try:
        cfg = _config(model, max_turns)
    except AgentConfigError as exc:
        failed = [_failed_result(t, None, use_tools, str(exc)) for t in ids]
        return _baseline_dict(failed, _model_id(model), use_tools, str(exc))
    try:
        env = _make_env(env_factory, max_turns)
    except Exception as exc:
        err = f"could not start the environment: {type(exc).__name__}: {exc}"
        failed = [_failed_result(t, cfg, use_tools, err) for t in ids]
        return _baseline_dict(failed, cfg.model, use_tools, err)
    try:
        results = [_run_task(env, t, cfg, use_tools=use_tools, max_turns=max_turns) for t in ids]
    finally:
        _close_quietly(env)
    return _baseline_dict(results, cfg.model, use_tools)


# ---------------------------------------------------------------------- whip baseline


@contextmanager
def _reserved_stdout() -> Iterator[TextIO]:
    """Yield a stream on the real stdout, and point file descriptor 1 at stderr meanwhile, so
    that nothing else (a warning, a kernel's output) can reach stdout. Also sends the agent's
    diagnostics (retries) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("whip: %(message)s"))
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)
    try:
        try:
            fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # replaced streams (tests, notebooks)
            yield sys.stdout
            return
        sys.stdout.flush()
        saved = os.dup(fd)
        out = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8")
        os.dup2(err_fd, fd)
        try:
            yield out
        finally:
            out.flush()
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)
            out.close()
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def baseline_cli(
    task_ids: list[str] | None,
    *,
    model: str | None = None,
    api_base_url: str | None = None,
    use_tools: bool = True,
    max_turns: int | None = None,
    as_json: bool = False,
    save_dir: str | None = None,
) -> int:
    """``whip baseline`` with stdout reserved for the reference lines (or the JSON)."""
    with _reserved_stdout() as out:
        return baseline_main(
            task_ids,
            model=model,
            api_base_url=api_base_url,
            use_tools=use_tools,
            max_turns=max_turns,
            as_json=as_json,
            save_dir=save_dir,
            out=out,
        )


def baseline_main(
    task_ids: list[str] | None,
    *,
    model: str | None = None,
    api_base_url: str | None = None,
    use_tools: bool = True,
    max_turns: int | None = None,
    as_json: bool = False,
    save_dir: str | None = None,
    out: TextIO | None = None,
) -> int:
    """``whip baseline``: the three reference lines per task on ``out`` (stdout), nothing else;
    diagnostics on stderr. 0 when the run completed, 2 for a usage or configuration error."""
    from ..errors import UnknownTaskError
    from ..models import dumps
    from ..tasks import find_task_dirs

    out = out or sys.stdout
    try:
        cfg = AgentConfig.from_env(
            model=model, api_base_url=api_base_url, max_steps=max_turns
        ).validate()
    except AgentConfigError as exc:
        print(f"whip: error: {exc}", file=sys.stderr)
        return 2
    ids = list(task_ids) if task_ids else default_task_ids()
    available = find_task_dirs()
    for t in ids:
        if t not in available:
            print(f"whip: error: {UnknownTaskError(t, list(available))}", file=sys.stderr)
            return 2
    if not ids:
        print("whip: error: no tasks to run", file=sys.stderr)
        return 2
    save = Path(save_dir) if save_dir else None
    if save is not None:
        try:
            save.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"whip: error: cannot create {save}: {exc}", file=sys.stderr)
            return 2

    def emit(line: str) -> None:
        print(line, file=sys.stderr if as_json else out, flush=True)

    print(
        f"whip: baseline: {len(ids)} task(s), model {cfg.model} at {cfg.api_base_url}, "
        f"tools {'on' if use_tools else 'off'}",
        file=sys.stderr,
    )
    env = _make_env(None, max_turns)
    results: list[EpisodeResult] = []
    interrupted = False
    try:
        for t in ids:
            result = _run_task(env, t, cfg, use_tools=use_tools, max_turns=max_turns, emit=emit)
            results.append(result)
            if save is not None:
                path = result.save_jsonl(save / f"{t}.jsonl")
                print(f"whip: trajectory saved to {path}", file=sys.stderr)
            if result.stop_reason == "interrupted":
                interrupted = True
                break
    finally:
        _close_quietly(env)
    if as_json:
        print(dumps(_baseline_dict(results, cfg.model, use_tools), indent=2), file=out)
    if interrupted:
        print("whip: error: interrupted", file=sys.stderr)
        return 130
    return 0
