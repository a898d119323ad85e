"""Exceptions raised to *callers* (programming errors). Agent mistakes never raise: they come
back in-band as an observation's ``error``."""

from __future__ import annotations

__all__ = ["SandboxError", "TaskPackError", "UnknownTaskError", "WhipError"]


class WhipError(Exception):
    """Base class of everything whipstudio_nb raises on purpose."""


class UnknownTaskError(WhipError, ValueError):
    """``reset``/``grade``/``load_task`` got a task id that no pack provides."""

    def __init__(self, task_id: str, available: list[str]) -> None:
        self.task_id = task_id
        self.available = available
        super().__init__(f"Unknown task_id: {task_id}. Available: {', '.join(available)}")


class TaskPackError(WhipError, ValueError):
    """A task pack on disk is malformed; the message names the file and the field."""


class SandboxError(WhipError, RuntimeError):
    """A sandbox kernel could not be started or talked to."""
