"""One error model for the whole package.

Two kinds of failure, one vocabulary of codes:

- **Caller mistakes and infrastructure failures raise** a ``WhipError`` subclass. Each class has a
  stable ``code``.
- **Agent mistakes never raise.** They come back in-band as an observation whose ``error`` is the
  human message and whose ``error_code`` is one of ``ERROR_CODES``.

Front ends map codes, never message text: the server maps a code to an HTTP status
(``server/errors.py``), and the magics map it to a friendly line (``notebook/messages.py``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = [
    "ERROR_CODES",
    "ConfigError",
    "EditError",
    "ErrorCode",
    "SandboxError",
    "TaskPackError",
    "UnknownTaskError",
    "WhipError",
    "format_validation_error",
]

ErrorCode = Literal[
    "invalid_action",  # the action is malformed: a missing or wrong field
    "unknown_action",  # action_type names no tool
    "no_episode",  # a step before any reset
    "episode_done",  # a step after the episode ended
    "turn_limit",  # the step that went past max_turns (it ends the episode)
    "security_violation",  # the code imports or calls something the policy refuses
    "syntax_error",  # the code cannot be parsed (refused before running, costs no turn)
    "too_large",  # a field is over the size cap (refused before parsing)
    "edit_error",  # a line edit outside the working copy
    "timeout",  # the code ran past the tool's time limit; the kernel was killed
    "kernel_died",  # the kernel exited while running the code
    "tool_error",  # the tool itself failed or produced no result
    "sandbox_unavailable",  # no kernel could be started (infrastructure: costs no turn)
    "unknown_task",
    "task_pack",
    "config",
    "capacity",
    "unknown_session",
    "shutting_down",
    "rate_limited",
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


class WhipError(Exception):
    """Base class of everything whipstudio_nb raises on purpose; ``code`` is stable."""

    code: str = "error"


class UnknownTaskError(WhipError, ValueError):
    """``reset``/``grade``/``load_task`` got a task id that no pack provides."""

    code = "unknown_task"

    def __init__(self, task_id: str, available: list[str]) -> None:
        self.task_id = task_id
        self.available = available
        super().__init__(f"Unknown task_id: {task_id}. Available: {', '.join(available)}")


class TaskPackError(WhipError, ValueError):
    """A task pack on disk is malformed; the message names the file and the field."""

    code = "task_pack"


class SandboxError(WhipError, RuntimeError):
    """A sandbox kernel could not be started or talked to."""

    code = "sandbox_unavailable"


class ConfigError(WhipError, ValueError):
    """A configuration value (argument or ``WHIP_*`` variable) is invalid or impossible."""

    code = "config"


class EditError(WhipError, ValueError):
    """A line edit that does not fit the working copy (the message says why)."""

    code = "edit_error"


def format_validation_error(
    exc: Any, *, prefix: str = "Invalid action: ", skip: Any = (), limit: int | None = None
) -> str:
    """A pydantic ``ValidationError`` as one line, one clause per problem (the first ``limit``),
    naming the field and what was expected. ``skip`` drops location parts (such as a
    discriminator's tag)."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = [str(x) for x in err.get("loc", ()) if str(x) not in skip]
        field = ".".join(loc) or "action"
        kind = err.get("type")
        if kind == "missing":
            parts.append(f"field '{field}' is required")
        elif kind == "extra_forbidden":
            parts.append(f"field '{field}' is not a valid field for this action")
        else:
            parts.append(f"field '{field}': {err.get('msg')}")
    return prefix + "; ".join(parts)
