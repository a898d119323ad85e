"""The import policy: the reference's allowlist, checked statically on the AST.

This is a policy, not a wall: ``os`` and ``sys`` are allowed, so real isolation comes from the
operating system (see the isolation layer). What it does is reject, before any kernel runs, code
that imports something outside the list, directly or through the usual dynamic back doors.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

from ..config import SandboxConfig

__all__ = [
    "ALLOWED_IMPORTS",
    "check_code",
    "max_field_bytes",
    "oversized_field",
    "parse",
    "violation_message",
]

# Order matters: it is the order the reference prints in its message.
ALLOWED_IMPORTS: tuple[str, ...] = (
    "torch",
    "numpy",
    "sklearn",
    "pandas",
    "matplotlib",
    "scipy",
    "math",
    "random",
    "os",
    "sys",
    "collections",
    "itertools",
    "functools",
    "json",
    "re",
    "typing",
)
# Provided by the environment itself (task scripts load their training data with it); admitted
# without changing the reference's message above.
ENVIRONMENT_IMPORTS: tuple[str, ...] = ("whip_data",)

# Names whose mere use opens a path to importing anything.
_FORBIDDEN_NAMES = {"__import__", "importlib", "__builtins__", "builtins", "__loader__", "__spec__"}
_DYNAMIC_EXEC = {"exec", "eval", "compile"}


def violation_message(module: str) -> str:
    return (
        f"Security violation: import '{module}' is not allowed. "
        f"Allowed: {', '.join(ALLOWED_IMPORTS)}"
    )


def max_field_bytes(config: SandboxConfig | None = None) -> int:
    """The size limit of code and of every string an action carries (``config.max_code_bytes``;
    without a config ``WHIP_MAX_CODE_BYTES``, read now, 256 KiB by default): checked before
    anything parses it, so its cost on the host is bounded. A bad value raises ``ConfigError``."""
    if config is None:
        config = SandboxConfig.from_env()
    return config.max_code_bytes


def oversized_field(action: Any, _depth: int = 0, *, limit: int | None = None) -> str | None:
    """The message for the first string in a raw action over the limit (``limit``, default
    ``max_field_bytes()``), or a structure nested too deeply to be an action, else None."""
    if limit is None:
        limit = max_field_bytes()
    if _depth > 8:
        return "Invalid action: nested too deeply"
    if isinstance(action, str):
        if len(action) > limit:  # characters: never fewer than bytes' worth of work to check
            return (
                f"Input too large: a field of {len(action)} characters is over the limit of "
                f"{limit} (WHIP_MAX_CODE_BYTES). Send less code."
            )
        return None
    values = action.values() if isinstance(action, dict) else action
    if isinstance(action, (dict, list, tuple)):
        for value in values:
            if (found := oversized_field(value, _depth + 1, limit=limit)) is not None:
                return found
    return None


def _allowed(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in ALLOWED_IMPORTS or top in ENVIRONMENT_IMPORTS


_PARSING = threading.Lock()


def parse(code: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, one at a time in this process: CPython 3.11 builds the tree's objects with
    one recursion counter for all threads, which a parse starting in another thread resets, and
    the first then fails with "SystemError: AST constructor recursion depth mismatch"
    (python/cpython#106905). Every parse of the host goes through here."""
    with _PARSING:
        return ast.parse(code, mode=mode)


def check_code(code: str, *, mode: str = "exec", max_bytes: int | None = None) -> str | None:
    """Return the violation message for ``code``, or None if it passes. Code over
    ``max_bytes`` (default ``max_field_bytes()``) is refused before it is parsed.

    Code that does not parse passes: it cannot import anything, and running it reports the
    SyntaxError the way Python would.
    """
    limit = max_field_bytes() if max_bytes is None else max_bytes
    if len(code) > limit:
        return oversized_field(code, limit=limit)
    try:
        tree = parse(code, mode=mode)
        return _check_tree(tree)
    except (SyntaxError, ValueError):
        return None
    except (RecursionError, MemoryError) as exc:
        return (
            f"Code rejected: it is nested too deeply to check ({type(exc).__name__}). Simplify it."
        )


def _check_tree(tree: ast.AST) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _allowed(alias.name):
                    return violation_message(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or not _allowed(module):
                return violation_message(module)
        elif isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            return violation_message(node.id if node.id != "__import__" else "__import__")
        elif isinstance(node, ast.Attribute) and node.attr in _FORBIDDEN_NAMES:
            return violation_message(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # sys.modules["importlib"], getattr(x, "__import__"), ...
            if node.value.split(".", 1)[0] in _FORBIDDEN_NAMES:
                return violation_message(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in _DYNAMIC_EXEC:
                found = _check_dynamic(node)
                if found:
                    return found
    return None


def _check_dynamic(call: ast.Call) -> str | None:
    """exec/eval/compile: a literal source is checked like any other code; anything else could
    build an import at run time, so it is refused."""
    func = call.func.id  # type: ignore[attr-defined]
    if not call.args:
        return None
    source = call.args[0]
    if isinstance(source, ast.Constant) and isinstance(source.value, str):
        # the literal is part of code whose size was already checked
        mode = "exec" if func != "eval" else "eval"
        return check_code(source.value, mode=mode, max_bytes=len(source.value))
    return violation_message(f"<dynamic {func}>")
