"""The grading harness's in-kernel half.

Phase "run" executes the submission under a TrainingRecorder and a TamperGuard and keeps its
namespace. Phase "evaluate" then receives held-out *inputs* only (the labels stay on the host),
calls the task's declared interface exactly as the script left it, and returns the outputs.
"""

from __future__ import annotations

import base64
from typing import Any

_STATE: dict[str, Any] = {}


def encode_array(a: Any) -> dict[str, Any]:
    import numpy as np

    a = np.ascontiguousarray(a)
    return {
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "b64": base64.b64encode(a.tobytes()).decode(),
    }


def decode_array(d: dict[str, Any]) -> Any:
    import numpy as np

    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"]).copy()


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    if args["phase"] == "run":
        return _run(args)
    return _evaluate(args)


def _run(args: dict[str, Any]) -> dict[str, Any]:
    import torch

    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = kl.fresh_namespace()
    val_name = args.get("val_inputs")
    rec = kl.TrainingRecorder(
        ns,
        record_memory=bool(args.get("record_memory")),
        record_inputs=bool(val_name),
        progress=True,
    )
    rec.install()
    guard = kl.TamperGuard()  # after install: the recorder's own patches are the baseline
    try:
        exit_code, err = kl.run_user_code(args["code"], ns, "<submission>")
        tampered = guard.changes()
    finally:
        rec.uninstall()
    _STATE["ns"] = ns
    model = ns.get(args.get("model", "model"))
    found = isinstance(model, torch.nn.Module)
    out: dict[str, Any] = {
        "exit_code": exit_code,
        "error": err,
        "tampered": tampered,
        "losses": [kl.float_out(x) for x in rec.losses],
        "optimizer_steps": rec.optimizer_steps,
        "model_found": found,
        "model_type": kl.type_name(model) if model is not None else None,
        "param_changes": {},
        "trainable_params": [],
        "frozen_params": [],
    }
    if isinstance(model, torch.nn.Module):
        out["param_changes"] = {k: kl.float_out(v) for k, v in rec.param_changes(model).items()}
        named = list(model.named_parameters())
        out["trainable_params"] = [n for n, p in named if p.requires_grad]
        out["frozen_params"] = [n for n, p in named if not p.requires_grad]
    if rec.record_memory:
        out["rss_mb"] = [round(x, 2) for x in rec.rss_mb]
    if val_name:
        out["leakage"] = _leakage(ns.get(val_name), val_name, rec.training_rows)
    if args.get("check_code"):
        out["checks"] = _run_checks(args["check_code"], ns, out)
    return out


def _leakage(val: Any, name: str, training_rows: set[bytes]) -> dict[str, Any]:
    """How many rows of the validation inputs went through the model with gradients on."""
    from whipstudio_nb.sandbox import kernel_lib as kl

    if val is None or not hasattr(val, "shape"):
        return {"error": f"no validation inputs named '{name}' after the run"}
    keys = kl.row_keys(val)
    return {"val_rows": len(keys), "val_rows_in_training": len(keys & training_rows)}


def _run_checks(check_code: str, ns: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A task's own in-kernel checks: ``check_code`` defines ``check(ns, record) -> dict``."""
    from whipstudio_nb.sandbox import kernel_lib as kl

    scope: dict[str, Any] = {}
    try:
        exec(compile(check_code, "<task checks>", "exec"), scope)
        return kl.json_safe(scope["check"](ns, record))
    except BaseException as exc:
        return {"error": f"task check failed: {kl.format_exception_only(exc)}"}


def _evaluate(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = _STATE.get("ns", {})
    inputs = torch.from_numpy(decode_array(args["inputs"]))
    fn_name = args.get("predict")
    target = ns.get(fn_name) if fn_name else ns.get(args.get("model", "model"))
    if target is None or not callable(target):
        return {
            "error": f"'{fn_name or args.get('model', 'model')}' is not defined or not callable"
        }
    try:
        with torch.no_grad():
            out = target(inputs)
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out, dtype=np.float64)
    except BaseException as exc:
        return {
            "error": f"calling the model on held-out inputs failed: {kl.format_exception_only(exc)}"
        }
    return {"outputs": encode_array(out)}
