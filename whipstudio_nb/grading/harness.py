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
    from whipstudio_nb.sandbox import kernel_lib as kl

    ns = kl.fresh_namespace()
    rec = kl.TrainingRecorder(ns)
    rec.install()
    guard = kl.TamperGuard()  # after install: the recorder's own patches are the baseline
    try:
        exit_code, err = kl.run_user_code(args["code"], ns, "<submission>")
        tampered = guard.changes()
    finally:
        rec.uninstall()
    _STATE["ns"] = ns
    model_name = args.get("model", "model")
    model = ns.get(model_name)
    import torch

    found = isinstance(model, torch.nn.Module)
    changes = rec.param_changes(model) if found else {}
    trainable = (
        [n for n, p in model.named_parameters() if p.requires_grad]
        if isinstance(model, torch.nn.Module)
        else []
    )
    return {
        "exit_code": exit_code,
        "error": err,
        "tampered": tampered,
        "losses": [kl.float_out(x) for x in rec.losses],
        "optimizer_steps": rec.optimizer_steps,
        "model_found": found,
        "model_type": kl.type_name(model) if model is not None else None,
        "param_changes": {k: kl.float_out(v) for k, v in changes.items()},
        "trainable_params": trainable,
    }


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
