"""Calibration of a task pack: does the grader separate buggy, partial and fixed code, resist
cheats, give the same score twice, and stay within the time budget? Used by
``whip validate-task`` and by the test suite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..config import SUCCESS_THRESHOLD
from ..models import GradeResult, TaskSpec
from ..sandbox import Sandbox
from .cheats import ADDS_NOTHING, CHEAT_MAX, cheat_codes, partial_cheat_codes
from .grader import grade_code, load_pack_grader

__all__ = ["CHEAT_MAX", "Check", "calibrate", "cheat_codes"]

BUGGY_MAX = 0.25
SOLUTION_MIN = SUCCESS_THRESHOLD  # the reference fix must solve its own task
PARTIAL_MARGIN = 0.1
REPEAT_TOLERANCE = 0.01
GRADING_TIME_TARGET_S = 5.0
CALIBRATION_SEED = 20_251_204  # hidden-data seed of a calibration run: the same code, same score


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # reported, but does not fail the pack

    def line(self) -> str:
        mark = "PASS" if self.ok else ("WARN" if self.warning else "FAIL")
        return f"{mark}  {self.name}: {self.detail}"


def calibrate(
    task: TaskSpec,
    sandbox: Sandbox,
    *,
    seeds: Iterable[int] = (),
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if on_check:
            on_check(check)

    def timed(code: str, t: TaskSpec = task) -> tuple[GradeResult, float]:
        t0 = time.monotonic()
        try:
            res = grade_code(t, code, sandbox, data_seed=CALIBRATION_SEED)
        except Exception as exc:  # the pack's own code failed (grader.py): a FAIL, not a crash
            res = GradeResult(score=0.0, details={"error": f"{type(exc).__name__}: {exc}"})
        return res, time.monotonic() - t0

    pack_checks = _pack_checks(task)
    for check in pack_checks:
        add(check)
    if any(not c.ok and not c.warning for c in pack_checks):
        return checks
    buggy, _ = timed(task.buggy_code)
    add(_ran(task, "buggy code runs", buggy, must_succeed=False))
    add(
        Check(
            "buggy code scores low", buggy.score <= BUGGY_MAX, f"{buggy.score:.3f} (<= {BUGGY_MAX})"
        )
    )
    solution, t_solution = timed(task.solution_code)
    add(_ran(task, "solution runs", solution, must_succeed=True))
    add(
        Check(
            "solution scores high",
            solution.score >= SOLUTION_MIN,
            f"{solution.score:.3f} (>= {SOLUTION_MIN})",
        )
    )
    if task.partial_code is not None:
        partial, _ = timed(task.partial_code)
        ok = buggy.score + PARTIAL_MARGIN <= partial.score <= solution.score - PARTIAL_MARGIN
        add(
            Check(
                "partial fix scores in between",
                ok,
                f"{buggy.score:.3f} < {partial.score:.3f} < {solution.score:.3f} "
                f"(margin {PARTIAL_MARGIN} each side)",
            )
        )
        for name, code in partial_cheat_codes(task).items():
            res, _ = timed(code)
            add(
                Check(
                    f"cheat '{name}'",
                    res.score - partial.score <= REPEAT_TOLERANCE,
                    f"{res.score:.3f} (partial fix alone: {partial.score:.3f})",
                )
            )
    else:
        add(
            Check("partial fix scores in between", False, "no partial.py in the pack", warning=True)
        )
    weights = task.grading.get("weights") or {}
    for name, w in weights.items():
        earned = solution.details.get("components", {}).get(name, 0.0)
        if w > 0 and earned <= 0.0:
            why = ""
            if name == "heldout_loss" and solution.details.get("heldout_loss") is None:
                why = " (no held-out loss: the interface returns class indices, not logits)"
            add(
                Check(
                    f"weight '{name}' can be earned",
                    False,
                    f"the reference solution earns 0 of its weight {w:g}{why}",
                    warning=True,
                )
            )
    for name, code in cheat_codes(task).items():
        res, _ = timed(code)
        if name in ADDS_NOTHING:
            gain = res.score - buggy.score
            add(
                Check(
                    f"cheat '{name}'",
                    gain <= REPEAT_TOLERANCE,
                    f"{res.score:.3f} (buggy code alone: {buggy.score:.3f})",
                )
            )
            continue
        add(Check(f"cheat '{name}'", res.score <= CHEAT_MAX, f"{res.score:.3f} (<= {CHEAT_MAX})"))
    again, t_again = timed(task.solution_code)
    diff = abs(again.score - solution.score)
    add(
        Check(
            "same code, same score",
            diff <= REPEAT_TOLERANCE,
            f"{solution.score:.4f} then {again.score:.4f}",
        )
    )
    slowest = max(t_solution, t_again)
    add(
        Check(
            "grading time",
            slowest <= task.time_budget_s,
            f"{slowest:.2f} s (budget {task.time_budget_s:g} s)",
        )
    )
    if slowest > GRADING_TIME_TARGET_S:
        add(
            Check(
                "grading time target",
                False,
                f"{slowest:.2f} s > {GRADING_TIME_TARGET_S:g} s",
                warning=True,
            )
        )
    for seed in seeds:
        from ..tasks import render_variant

        variant = render_variant(task, seed)
        v_sol, _ = timed(variant.solution_code, variant)
        v_bug, _ = timed(variant.buggy_code, variant)
        ok = v_sol.score >= SOLUTION_MIN and v_bug.score <= BUGGY_MAX
        add(
            Check(
                f"variant seed={seed} {variant.params}",
                ok,
                f"buggy {v_bug.score:.3f}, solution {v_sol.score:.3f}",
            )
        )
    return checks


def _pack_checks(task: TaskSpec) -> list[Check]:
    """grader.py loads, its generator returns data of the right shapes, and what the computed
    chance is: PASS/FAIL lines with numbers, never a traceback."""
    import numpy as np

    from .data import heldout_data, is_legacy, training_data
    from .metrics import constant_baseline

    cfg = task.grading
    metric = cfg.get("metric", "accuracy")
    try:
        load_pack_grader(task)
        legacy = is_legacy(task)
        train = {} if legacy else training_data(task, CALIBRATION_SEED)
        inputs, labels = heldout_data(task, CALIBRATION_SEED)
    except Exception as exc:
        return [Check("grader.py data", False, f"{type(exc).__name__}: {exc}")]
    n = len(labels)
    problems = []
    if len(inputs) != n:
        problems.append(f"heldout() returned {len(inputs)} inputs but {n} labels")
    if metric == "accuracy" and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
        problems.append(
            f"accuracy needs labels of shape (N,) of class indices, got "
            f"{labels.shape} {labels.dtype}"
        )
    if metric == "multilabel_f1" and (labels.ndim != 2 or not np.isin(labels, (0, 1)).all()):
        problems.append(f"multilabel_f1 needs 0/1 labels of shape (N, L), got {labels.shape}")
    if metric == "r2" and labels.shape not in ((n,), (n, 1)):
        problems.append(f"r2 needs labels of shape (N,) or (N, 1), got {labels.shape}")
    if problems:
        return [Check("grader.py data", False, "; ".join(problems))]
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in train.items()) or "built by the script"
    out = [
        Check(
            "grader.py data",
            True,
            f"training data {shapes}; held-out inputs "
            f"{tuple(inputs.shape)}, labels {tuple(labels.shape)}",
        )
    ]
    if legacy:
        out.append(
            Check(
                "data from the environment",
                False,
                "grader.py defines no training_data(seed, params): the script builds its "
                "own data, so a submission can see its rule (README: task packs)",
                warning=True,
            )
        )
    out.extend(_val_split_checks(task, train, legacy))
    best, loss = constant_baseline(metric, labels)
    chance = max(best, float(cfg.get("chance", best)))
    loss_max = min(loss, float(cfg.get("loss_max", loss)))
    target = float(cfg.get("target", 0.9 if metric != "multilabel_f1" else 0.8))
    out.append(
        Check(
            "chance (best constant predictor)",
            target > chance,
            f"metric {best:.3f}, loss {loss:.3f}; scoring from chance {chance:.3f} "
            f"to target {target:.3f}, held-out loss from {loss_max:.3f}",
        )
    )
    loss_target = cfg.get("loss_target")
    if loss_target is not None and float(loss_target) >= loss_max:
        out.append(
            Check(
                "held-out loss can be earned",
                False,
                f"loss_target {loss_target} >= {loss_max:.3f}, the loss of a constant predictor",
                warning=True,
            )
        )
    return out


def _val_split_checks(task: TaskSpec, train: dict[str, Any], legacy: bool) -> list[Check]:
    """``no_leakage`` is measured outside the submission's process only when the pack hands the
    script its validation split (``val_data``): say so, and that the named arrays exist."""
    from .data import val_keys

    if "no_leakage" not in (task.grading.get("weights") or {}):
        return []
    keys = val_keys(task)
    name = "validation split from the environment"
    if not keys or legacy:
        return [
            Check(
                name,
                False,
                "no val_data in [grading]: no_leakage is seen only by the recorder inside the "
                "submission's process, which code there can hide from (README: task packs)",
                warning=True,
            )
        ]
    missing = [k for k in keys if k not in train]
    if missing:
        return [Check(name, False, f"val_data names {missing}, not in training_data()")]
    return [Check(name, True, f"{', '.join(keys)}: swapped for another draw in a second run")]


def _ran(task: TaskSpec, name: str, res: GradeResult, *, must_succeed: bool) -> Check:
    d = res.details
    if d.get("error"):
        return Check(name, False, d["error"])
    if d.get("script_error"):
        return Check(name, not must_succeed, f"raised {d['script_error']}")
    return Check(name, True, f"ran {d.get('loss_steps', 0)} training steps")
