"""inspect_tensor: run setup code, evaluate an expression, describe the tensor it yields."""

from __future__ import annotations

from typing import Any

from ..models import InspectTensorAction, InspectTensorObservation, TensorHistogram
from ._common import ToolContext, call_kernel
from .registry import Tool

HIST_BINS = 10


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch

    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = kl.fresh_namespace()
    if args.get("setup_code"):
        exit_code, err = kl.run_user_code(args["setup_code"], ns, "<setup_code>")
        if exit_code != 0:
            return {"error": f"setup_code failed: {err}"}
    expr = args["target_expression"]
    try:
        value = kl.eval_user_expr(expr, ns)
    except BaseException as exc:
        return {"error": f"Could not evaluate '{expr}': {kl.format_exception_only(exc)}"}
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        return {"error": f"'{expr}' is not a tensor (got {kl.type_name(value)})"}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .grad of a non-leaf tensor warns
        grad_is_none = value.grad is None
    out: dict[str, Any] = {
        "shape": list(value.shape),
        "dtype": str(value.dtype),
        "requires_grad": bool(value.requires_grad),
        "grad_is_none": grad_is_none,
        "numel": int(value.numel()),
    }
    t = value.detach()
    if t.is_complex() or t.numel() == 0:
        out.update(is_nan=False, is_inf=False, nan_count=0, inf_count=0)
        return out
    t = t.to(torch.float64)
    nan_mask, inf_mask = torch.isnan(t), torch.isinf(t)
    finite = t[~(nan_mask | inf_mask)]
    out.update(
        is_nan=bool(nan_mask.any()),
        is_inf=bool(inf_mask.any()),
        nan_count=int(nan_mask.sum()),
        inf_count=int(inf_mask.sum()),
    )
    if finite.numel():
        lo, hi = float(finite.min()), float(finite.max())
        out.update(
            min_val=lo,
            max_val=hi,
            mean_val=float(finite.mean()),
            std_val=float(finite.std()) if finite.numel() > 1 else 0.0,
        )
        counts, edges = np.histogram(
            finite.numpy(), bins=HIST_BINS, range=(lo, hi) if hi > lo else None
        )
        out["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def run(ctx: ToolContext, action: InspectTensorAction) -> InspectTensorObservation:
    out = call_kernel(
        ctx,
        TOOL,
        {"setup_code": action.setup_code, "target_expression": action.target_expression},
    )
    r = out.result
    hist = r.get("histogram")
    return InspectTensorObservation(
        shape=r.get("shape"),
        dtype=r.get("dtype"),
        requires_grad=r.get("requires_grad"),
        grad_is_none=r.get("grad_is_none"),
        min_val=r.get("min_val"),
        max_val=r.get("max_val"),
        mean_val=r.get("mean_val"),
        is_nan=r.get("is_nan"),
        is_inf=r.get("is_inf"),
        std_val=r.get("std_val"),
        numel=r.get("numel"),
        nan_count=r.get("nan_count"),
        inf_count=r.get("inf_count"),
        histogram=TensorHistogram(**hist) if hist else None,
        stdout=out.run.stdout,
        stderr=out.run.stderr,
        timed_out=out.run.timed_out,
        error=out.error or r.get("error"),
        error_code=out.code or ("tool_error" if r.get("error") else None),
    )


TOOL = Tool(
    action=InspectTensorAction,
    observation=InspectTensorObservation,
    run=run,
    kernel_entry=f"{__name__}:in_kernel",
    code_fields=(("setup_code", "exec"), ("target_expression", "eval")),
    view="tensor",
)
