"""WhipStudio Notebook: an ML-debugging gym in Jupyter.

from whipstudio_nb import WhipEnv, list_tasks, load_task, grade
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import SandboxConfig
from .errors import (
    ERROR_CODES,
    ConfigError,
    EditError,
    SandboxError,
    TaskPackError,
    UnknownTaskError,
    WhipError,
)
from .tasks import list_tasks, load_task

if TYPE_CHECKING:
    from .env import WhipEnv
    from .models import GradeResult


__all__ = [
    "ERROR_CODES",
    "ConfigError",
    "EditError",
    "SandboxConfig",
    "SandboxError",
    "TaskPackError",
    "UnknownTaskError",
    "WhipEnv",
    "WhipError",
    "__version__",
    "grade",
    "list_tasks",
    "load_task",
]


def grade(
    task_id: str, code: str, *, seed: int | None = None, config: SandboxConfig | None = None
) -> GradeResult:
    """Grade ``code`` as a fix for ``task_id`` (its variant ``seed``) in a fresh sandbox
    (``config``, default ``SandboxConfig.from_env()``)."""
    from .env import make_sandbox
    from .grading import grade_code

    task = load_task(task_id, seed=seed)  # unknown ids raise before any kernel starts
    sandbox = make_sandbox(1, config=config)
    try:
        return grade_code(task, code, sandbox)
    finally:
        sandbox.close()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext whipstudio_nb``: the magics; the sandbox warms up in the background."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext whipstudio_nb``: shut the sandbox pool down, remove the magics."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # WhipEnv pulls in pydantic models and jupyter_client: import it on first use only.
    if name == "WhipEnv":
        from .env import WhipEnv

        return WhipEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
