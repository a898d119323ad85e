"""Training data for WhipStudio task scripts (importable as ``whip_data``).

    from whip_data import load_training_data
    data = load_training_data("task1")      # {"X": ndarray, "y": ndarray, ...}

Inside the WhipStudio environment (tools, grading) the environment hands each kernel the
training data of the current episode: fresh draws from a generator whose hidden parameters
(weights, rules, noise) are drawn from a seed the sandbox never sees. Outside the environment
(``python buggy.py``) the loader falls back to the task's public demo draw and says so on stderr.
Held-out data comes from the same hidden distribution and never enters the sandbox with labels.
"""

from __future__ import annotations

import base64
import sys
from typing import Any

__all__ = ["load_training_data"]

_PROVIDED: dict[str, Any] = {}  # set by the environment (kernel_lib.dispatch) before code runs


def install(payload: dict[str, Any]) -> None:
    """Called by the environment inside a kernel, before any user code runs."""
    kernel_setup()
    _PROVIDED.clear()
    _PROVIDED.update(payload)


_install = install  # the name the top-level whip_data shim re-exports


def kernel_setup() -> None:
    """Preloaded into every sandbox kernel: make ``import whip_data`` work. The top-level shim
    where it is on the path, otherwise this module under that name."""
    if "whip_data" in sys.modules:
        return
    try:
        import whip_data  # noqa: F401
    except ImportError:
        sys.modules["whip_data"] = sys.modules[__name__]


def _decode(d: dict[str, Any]) -> Any:
    import numpy as np

    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=d["dtype"]).reshape(d["shape"]).copy()


def load_training_data(task_id: str) -> dict[str, Any]:
    """The training arrays of ``task_id`` (numpy arrays; a fresh copy on every call)."""
    if _PROVIDED:
        provided = _PROVIDED.get("task_id")
        if provided != task_id:
            raise ValueError(
                f"this environment provides the training data of {provided!r}, not {task_id!r}"
            )
        return {k: _decode(v) for k, v in _PROVIDED["arrays"].items()}
    return _demo(task_id)


def _demo(task_id: str) -> dict[str, Any]:
    try:
        from whipstudio_nb.grading.data import demo_training_data
        from whipstudio_nb.tasks import load_task

        task = load_task(task_id)
        data = demo_training_data(task)
    except Exception as exc:
        raise RuntimeError(
            f"whip_data: no training data was provided for {task_id!r} and its public demo draw "
            f"is not available here ({type(exc).__name__}: {exc})"
        ) from None
    print(
        f"whip_data: not running in the WhipStudio environment; using the public demo draw of "
        f"{task_id} (the environment uses hidden data, drawn anew for each episode).",
        file=sys.stderr,
    )
    return data
