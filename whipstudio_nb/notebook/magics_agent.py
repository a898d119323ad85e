"""``%whip_agent``: an LLM agent plays an episode in the magics' own environment, with a live
dashboard (one row per step) redrawn through a display handle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .magic_support import observation_from_record

if TYPE_CHECKING:
    from .widgets import View

__all__ = ["record_view", "run_agent_magic"]


def run_agent_magic(magics: Any, args: Any) -> Any:
    """The body of ``%whip_agent`` after its options are parsed; returns the cell's value."""
    from IPython.display import display

    from ..agent import AgentConfig, LLMPolicy, StepRecord, run_episode
    from . import widgets as w

    if args.max_turns is not None and args.max_turns < 1:
        return magics._message(f"--max-turns must be >= 1, got {args.max_turns}")
    cfg = AgentConfig.from_env(model=args.model, max_steps=args.max_turns).validate()
    policy = LLMPolicy(config=cfg, use_tools=not args.no_tools)
    env = magics.env
    env.max_submissions = 1  # as the agent is told: submit_fix ends the episode
    steps: list[StepRecord] = []
    live: dict[str, Any] = {}

    def redraw(view: w.AgentRunView) -> None:
        if "handle" in live:
            live["handle"].update(view.bundle(), raw=True)
        else:
            live["handle"] = display(view.bundle(), raw=True, display_id=True)

    def on_reset(obs: Any) -> None:
        magics._timeline, magics._attempts, magics._hint_index = [], [], 0
        limit = cfg.max_steps or obs.max_turns  # what the runner will stop at
        live["view"] = w.AgentRunView(obs.task_id, cfg.model, steps, limit)
        redraw(live["view"])

    def on_step(rec: StepRecord) -> None:
        steps.append(rec)
        turn = int(rec.observation.get("turn") or 0)
        magics._timeline.append(
            w.TimelineEntry(
                turn, rec.action_type, rec.summary, record_view(magics, rec), rec.error, rec.reward
            )
        )
        view = live["view"]
        view.steps = list(steps)
        redraw(view)

    try:
        result = run_episode(
            env,
            policy,
            args.task,
            seed=args.seed,
            on_step=on_step,
            on_reset=on_reset,
            max_turns=cfg.max_steps,
            success_threshold=cfg.success_threshold,
        )
    finally:
        env.max_submissions = magics.max_submissions
    if "view" in live:  # the final rows; the head line is the cell's value, shown once
        redraw(w.AgentRunView.from_result(result, head=False))
    if env.state().submitted:
        magics._best[result.task_id] = max(magics._best.get(result.task_id, 0.0), result.score)
    # the full dashboard is on screen already: the cell's value shows its head line
    return magics._remember(result, w.AgentRunView.from_result(result, compact=True))


def record_view(magics: Any, rec: Any) -> View | None:
    """What an agent's step showed, for its row in %whip_state: the observation's own view,
    or for a reply that did not parse, the error and the model's words."""
    from . import widgets as w

    if rec.raw_response is not None or rec.action is None:
        reply = (rec.raw_response or "").strip() or "(empty reply)"
        said = w.CodeView(reply, "The model replied")
        return w.Stack([w.Message(rec.error or rec.summary), said])
    obs = observation_from_record(rec.action_type, rec.observation)
    return magics._default_view(obs) if obs is not None else None
