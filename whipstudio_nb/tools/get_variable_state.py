"""get_variable_state: run setup code, then evaluate each expression independently."""

from __future__ import annotations

import math
from typing import Any

from ..models import GetVariableStateAction, GetVariableStateObservation, VariableState
from ._common import ToolContext, call_kernel
from .registry import Tool


def _shape_of(value: Any) -> list[int] | None:
    import torch

    if isinstance(value, torch.Size):
        return list(value)
    shape = getattr(value, "shape", None)
    try:
        if shape is not None and all(isinstance(d, int) for d in shape):
            return [int(d) for d in shape]
    except TypeError:
        pass
    return None


def _json_scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) or len(value) <= 500 else None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = kl.fresh_namespace()
    setup_error = None
    if args.get("setup_code"):
        exit_code, err = kl.run_user_code(args["setup_code"], ns, "<setup_code>")
        if exit_code != 0:
            setup_error = f"setup_code failed: {err}"
    results: dict[str, Any] = {}
    for expr in args["expressions"]:
        try:
            value = kl.eval_user_expr(expr, ns)
        except BaseException as exc:
            results[expr] = {"error": kl.format_exception_only(exc)}
            continue
        results[expr] = {
            "repr": kl.short_repr(value),
            "type": kl.type_name(value),
            "value": _json_scalar(value),
            "shape": _shape_of(value),
        }
    return {"results": results, "error": setup_error}


def run(ctx: ToolContext, action: GetVariableStateAction) -> GetVariableStateObservation:
    out = call_kernel(
        ctx, TOOL, {"setup_code": action.setup_code, "expressions": action.expressions}
    )
    results = {k: VariableState(**v) for k, v in out.result.get("results", {}).items()}
    return GetVariableStateObservation(
        results=results,
        stdout=out.run.stdout,
        stderr=out.run.stderr,
        timed_out=out.run.timed_out,
        error=out.error or out.result.get("error"),
        error_code=out.code or ("tool_error" if out.result.get("error") else None),
    )


TOOL = Tool(
    action=GetVariableStateAction,
    observation=GetVariableStateObservation,
    run=run,
    kernel_entry=f"{__name__}:in_kernel",
    code_fields=(("setup_code", "exec"), ("expressions", "eval")),
    view="variables",
)
