"""A short scripted debugging episode on task1 that shows every tool at work (``whip demo``)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from .turns import costs_turn
from .working_copy import number_lines

__all__ = ["run_demo"]


def _find_line(code: str, needle: str) -> int:
    for i, line in enumerate(code.splitlines(), 1):
        if needle in line:
            return i
    raise LookupError(f"demo: line containing {needle!r} not found")


def _fmt_losses(losses: list[float]) -> str:
    return "[" + ", ".join(f"{x:.3f}" for x in losses) + "]"


def run_demo(task_id: str = "task1", out: Callable[[str], Any] = print) -> float:
    """Play the episode, narrating to ``out``; returns the final reward."""
    from .env import WhipEnv

    def say(text: str = "") -> None:
        out(text)

    def step(env: WhipEnv, title: str, action: dict[str, Any]) -> Any:
        t0 = time.monotonic()
        res = env.step(action)
        obs = res.observation
        took = time.monotonic() - t0
        free = "" if costs_turn(action["action_type"]) else " (free)"
        say(f"\n── turn {obs.turn}{free}: {title}  [{action['action_type']}, {took:.2f} s]")
        if obs.error:
            say(f"   error: {obs.error}")
        return obs

    say("Starting the sandbox kernel pool (torch is imported ahead of time)...")
    with WhipEnv() as env:
        obs = env.reset(task_id)
        say(f"\n══ {obs.task_id}: {env.task.info.name if env.task else ''} ══")
        say(textwrap.indent(obs.task_description, "   "))
        say(f"   isolation: {obs.isolation}, turns allowed: {obs.max_turns}")
        say("\n" + textwrap.indent(number_lines(obs.buggy_code), "   "))
        buggy = obs.buggy_code

        o = step(
            env,
            "does the script run, and what does it print?",
            {"action_type": "execute_snippet", "code": buggy},
        )
        say(textwrap.indent(o.stdout.strip() or "(no output)", "   stdout: "))

        o = step(
            env,
            "probe 5 training steps of the buggy loop",
            {"action_type": "run_training_probe", "code": buggy, "steps": 5},
        )
        say(f"   losses that reached backward(): {_fmt_losses(o.losses)}")
        say(
            f"   optimizer steps: {o.optimizer_steps}; grad norms after backward: "
            + ", ".join(f"{k}={v:.3f}" for k, v in o.grad_norms.items())
        )
        say("   -> the loss never moves, although gradients exist.")

        o = step(
            env,
            "inspect the weights after the whole buggy run",
            {
                "action_type": "inspect_tensor",
                "setup_code": buggy,
                "target_expression": "model.weight",
            },
        )
        say(
            f"   shape={o.shape} dtype={o.dtype} min={o.min_val:.3f} max={o.max_val:.3f} "
            f"mean={o.mean_val:.3f} nan={o.is_nan}"
        )

        o = step(
            env,
            "look at the optimizer and the inputs",
            {
                "action_type": "get_variable_state",
                "setup_code": buggy,
                "expressions": [
                    "optimizer.param_groups[0]['lr']",
                    "X.abs().max().item()",
                    "losses[0] == losses[-1]",
                ],
            },
        )
        for expr, st in o.results.items():
            say(f"   {expr} = {st.repr}")
        say("   -> step() runs before backward(), and lr=10 is huge for inputs this large.")

        code = env.working_code or ""
        step_line = _find_line(code, "    optimizer.step()")
        o = step(
            env,
            f"delete the early optimizer.step() (line {step_line})",
            {
                "action_type": "replace_lines",
                "start_line": step_line,
                "end_line": step_line,
                "new_code": "",
            },
        )
        code = o.code
        back_line = _find_line(code, "loss.backward()")
        o = step(
            env,
            f"step after backward (line {back_line})",
            {
                "action_type": "replace_lines",
                "start_line": back_line,
                "end_line": back_line,
                "new_code": "    loss.backward()\n    optimizer.step()",
            },
        )
        lr_line = _find_line(o.code, "lr=10.0")
        new_lr = o.code.splitlines()[lr_line - 1].replace("lr=10.0", "lr=0.05")
        o = step(
            env,
            f"a sane learning rate (line {lr_line})",
            {
                "action_type": "replace_lines",
                "start_line": lr_line,
                "end_line": lr_line,
                "new_code": new_lr,
            },
        )

        working = env.working_code
        o = step(
            env, "review the change", {"action_type": "inspect_diff", "proposed_code": working}
        )
        say(textwrap.indent(o.diff.rstrip(), "   ", lambda line: True))

        o = step(
            env,
            "probe the fixed loop",
            {"action_type": "run_training_probe", "code": working, "steps": 40},
        )
        say(f"   every 5th loss: {_fmt_losses(o.losses[::5])} ... {o.losses[-1]:.3f}")

        o = step(env, "submit the working copy for grading", {"action_type": "submit_fix"})
        details = o.grader_details
        say(f"   reward: {o.reward:.3f}   episode done: {o.episode_done}")
        final = details.get("final_loss")
        say(
            f"   held-out accuracy: {details.get('val_acc')}   final training loss: "
            f"{'n/a' if final is None else f'{final:.4f}'}"
        )
        for name, value in details.get("components", {}).items():
            say(f"   {name:<16} {value:.2f}  (weight {details['weights'][name]:.2f})")
        return float(o.reward)
