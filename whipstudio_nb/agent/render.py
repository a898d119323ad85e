"""Observations as compact text for a language model (and one-line summaries for logs).

Code comes with line numbers, long output is cut in the middle with a marker, grader details
are summarised; raw JSON is never sent. Works on observation models and on their dicts (as
loaded back from a trajectory file).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from ..models import restore_non_finite
from ..working_copy import number_lines

__all__ = ["render_observation", "render_reset", "summarize_observation", "truncate"]

MAX_TEXT = 1500  # characters of stdout/stderr/diff kept per field
MAX_REPR = 300


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    """Keep the head and tail of ``text`` with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [truncated {cut} chars] ...\n{text[-tail:]}"


def _as_dict(obs: Any) -> dict[str, Any]:
    if isinstance(obs, BaseModel):
        return obs.model_dump()
    return restore_non_finite(dict(obs))  # a loaded trajectory's nulls that were NaN/Inf


def _num(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return str(x)


def _floats(xs: list[Any], keep: int = 8) -> str:
    if len(xs) <= 2 * keep:
        return "[" + ", ".join(_num(x) for x in xs) + "]"
    return (
        "["
        + ", ".join(_num(x) for x in xs[:keep])
        + f", ... ({len(xs) - 2 * keep} more) ..., "
        + ", ".join(_num(x) for x in xs[-keep:])
        + "]"
    )


def _block(label: str, text: str) -> list[str]:
    text = (text or "").rstrip()
    return [f"{label}:", truncate(text)] if text else []


def render_reset(obs: Any) -> str:
    """The start of an episode: the task, the turn budget and the numbered buggy code."""
    d = _as_dict(obs)
    lines = [f"Task {d.get('task_id')}: {' '.join(str(d.get('task_description', '')).split())}"]
    if d.get("max_turns"):
        lines.append(f"Turns allowed: {d['max_turns']}. One submit_fix ends the episode.")
    if d.get("error_log"):
        lines.append(f"Note: {d['error_log']}")
    lines += ["Buggy code (line numbers are not part of the code):", number_lines(d["buggy_code"])]
    return "\n".join(lines)


def _grader_summary(details: dict[str, Any]) -> list[str]:
    out = []
    for key in ("error", "script_error", "model_error", "reference_error"):
        if details.get(key):
            out.append(f"{key.replace('_', ' ')}: {truncate(str(details[key]), 600)}")
    comps = details.get("components") or {}
    weights = details.get("weights") or {}
    if comps:
        out.append(
            "score components: "
            + ", ".join(
                f"{k}={_num(v)}" + (f" (weight {_num(weights[k])})" if k in weights else "")
                for k, v in comps.items()
            )
        )
    keys = ("val_acc", "heldout_loss", "final_loss", "loss_steps", "optimizer_steps", "chance")
    facts = [f"{k}={_num(details[k])}" for k in keys if details.get(k) is not None]
    if facts:
        out.append(", ".join(facts))
    if isinstance(details.get("losses"), list) and details["losses"]:
        out.append(f"training losses: {_floats(details['losses'], 4)}")
    return out


def _body(d: dict[str, Any]) -> list[str]:
    t = d.get("action_type")
    out: list[str] = []
    if t == "execute_snippet":
        out.append(f"exit_code={d.get('exit_code')} timed_out={d.get('timed_out')}")
        out += _block("stdout", d.get("stdout", "")) or ["stdout: (empty)"]
        out += _block("stderr", d.get("stderr", ""))
    elif t == "inspect_tensor":
        if d.get("shape") is not None or d.get("dtype") is not None:
            keys = ("shape", "dtype", "requires_grad", "grad_is_none", "numel")
            out.append(" ".join(f"{k}={d.get(k)}" for k in keys))
            stats = ("min_val", "max_val", "mean_val", "std_val", "nan_count", "inf_count")
            out.append(" ".join(f"{k}={_num(d.get(k))}" for k in stats))
        out += _block("stdout", d.get("stdout", "")) + _block("stderr", d.get("stderr", ""))
    elif t == "run_training_probe":
        losses = d.get("losses") or []
        out.append(f"losses that reached backward() ({len(losses)}): {_floats(losses)}")
        out.append(
            f"final_loss={_num(d.get('final_loss'))} loss_is_nan={d.get('loss_is_nan')} "
            f"loss_is_inf={d.get('loss_is_inf')} optimizer_steps={d.get('optimizer_steps')} "
            f"optimizer_param_count={d.get('optimizer_param_count')}"
        )
        norms = d.get("grad_norms") or {}
        if norms:
            items = list(norms.items())[:12]
            more = f" (+{len(norms) - 12} more)" if len(norms) > 12 else ""
            out.append("grad norms: " + ", ".join(f"{k}={_num(v)}" for k, v in items) + more)
        if d.get("params_without_grad"):
            out.append(f"params without grad: {', '.join(d['params_without_grad'][:12])}")
        out += _block("stdout", d.get("stdout", "")) + _block("stderr", d.get("stderr", ""))
    elif t == "get_variable_state":
        for expr, st in (d.get("results") or {}).items():
            st = st or {}
            if st.get("error"):
                out.append(f"{expr} -> error: {truncate(str(st['error']), MAX_REPR)}")
            else:
                shape = f" shape={st['shape']}" if st.get("shape") is not None else ""
                out.append(
                    f"{expr} -> {truncate(str(st.get('repr')), MAX_REPR)} "
                    f"(type {st.get('type')}{shape})"
                )
        out += _block("stdout", d.get("stdout", "")) + _block("stderr", d.get("stderr", ""))
    elif t == "inspect_diff":
        out.append(
            f"lines_changed={d.get('lines_changed')} additions={d.get('additions')} "
            f"deletions={d.get('deletions')}"
        )
        out += _block("diff", d.get("diff", ""))
    elif t == "submit_fix":
        out.append(f"score={_num(d.get('reward'))}")
        out += _grader_summary(d.get("grader_details") or {})
        out += _block("script output", d.get("error_log", ""))
    elif t in ("view_code", "replace_lines", "undo_edit", "reset_to_original"):
        if d.get("message"):
            out.append(str(d["message"]))
        out.append(f"Working copy ({d.get('line_count')} lines):")
        out.append(d.get("numbered_code") or number_lines(d.get("code", "")))
    return out


def render_observation(obs: Any, *, max_turns: int | None = None) -> str:
    """A tool observation as compact text for the model."""
    d = _as_dict(obs)
    turn = d.get("turn", 0)
    head = f"[{d.get('action_type')}] turn {turn}" + (f"/{max_turns}" if max_turns else "")
    if d.get("episode_done"):
        head += ", episode done"
    lines = [head]
    if d.get("error"):
        lines.append(f"error: {d['error']}")
    lines += _body(d)
    if max_turns and not d.get("episode_done"):
        left = max_turns - int(turn or 0)
        if left == 1:
            lines.append("One turn left: call submit_fix now.")
    return "\n".join(lines)


def summarize_observation(obs: Any) -> str:
    """One line for a log or a dashboard row."""
    d = _as_dict(obs)
    t = d.get("action_type")
    if d.get("error"):
        return f"error: {' '.join(str(d['error']).split())[:160]}"
    if t == "execute_snippet":
        first = next((ln for ln in str(d.get("stdout", "")).splitlines() if ln.strip()), "")
        return f"exit {d.get('exit_code')}" + (f", stdout: {first[:100]}" if first else "")
    if t == "inspect_tensor":
        return f"shape={d.get('shape')} dtype={d.get('dtype')} mean={_num(d.get('mean_val'))}"
    if t == "run_training_probe":
        losses = d.get("losses") or []
        if losses:
            return f"{len(losses)} losses {_num(losses[0])} -> {_num(losses[-1])}"
        return "no loss reached backward()"
    if t == "get_variable_state":
        return f"{len(d.get('results') or {})} expressions evaluated"
    if t == "inspect_diff":
        return f"{d.get('lines_changed')} lines changed"
    if t == "submit_fix":
        return f"score {_num(d.get('reward'))}"
    if t in ("view_code", "replace_lines", "undo_edit", "reset_to_original"):
        return str(d.get("message") or f"{d.get('line_count')} lines")
    if "buggy_code" in d:
        return f"task {d.get('task_id')} ({len(str(d['buggy_code']).splitlines())} lines)"
    return str(t)
