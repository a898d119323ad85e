"""The tool registry: one ``Tool`` spec per action, the single source for every front end.

The env runs a tool through its spec; the server's schemas, the LLM function definitions, MCP,
the magics' views and the docs are all generated from the registered specs. Adding a tool is one
module (its action and observation models, its host half ``run`` and, if it runs code, its
in-kernel half) plus one ``register`` line in ``tools/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

if TYPE_CHECKING:
    from ..models import ToolObservation
    from ._common import ToolContext

__all__ = [
    "Tool",
    "action_adapter",
    "action_models",
    "get_tool",
    "register",
    "registered",
    "tool_names",
    "tools",
    "unregister",
]

CodeMode = Literal["exec", "eval"]


@dataclass(frozen=True)
class Tool:
    """Everything the package needs to know about one action.

    - ``action`` / ``observation``: the pydantic models (``action_type`` is the tool's name);
    - ``run(ctx, action) -> observation``: the host half;
    - ``kernel_entry``: ``"module:function"`` run inside a sandbox kernel (None: host only). The
      sandbox gets it as an argument and never names a tool itself;
    - ``costs_turn``: False for calls that only read the working copy;
    - ``code_fields``: the fields holding code, with how it parses (``exec`` or ``eval``), for
      the import policy and the syntax check before anything runs (a list field is checked item
      by item); ``working_copy_field``: a code field whose absence means "the working copy";
    - ``view``: the name of the notebook view that shows its observation (``notebook`` maps
      names to widgets, so this layer never imports a front end);
    - ``description``: for schemas and LLM tools (default: the action model's docstring).
    """

    action: type[BaseModel]
    observation: type[ToolObservation]
    run: Callable[[ToolContext, Any], ToolObservation]
    kernel_entry: str | None = None
    costs_turn: bool = True
    code_fields: tuple[tuple[str, CodeMode], ...] = ()
    working_copy_field: str | None = None
    view: str = "fields"
    description: str = field(default="")

    @property
    def name(self) -> str:
        return str(self.action.model_fields["action_type"].default)

    @property
    def runs_code(self) -> bool:
        """Whether a call runs code in a sandbox kernel (it can take seconds, be interrupted)."""
        return bool(self.kernel_entry or self.code_fields)

    @property
    def summary(self) -> str:
        return " ".join((self.description or self.action.__doc__ or self.name).split())

    def code_of(self, action: Any, working_code: str | None = None) -> list[tuple[str, str, str]]:
        """(field label, code, mode) for every piece of code in ``action``."""
        out: list[tuple[str, str, str]] = []
        for name, mode in self.code_fields:
            value = getattr(action, name, None)
            if value is None and name == self.working_copy_field:
                if working_code is not None:
                    out.append(("working copy", working_code, mode))
            elif isinstance(value, list):
                out += [(f"{name}[{i}]", str(v), mode) for i, v in enumerate(value)]
            elif value is not None:
                out.append((name, str(value), mode))
        return out


_TOOLS: dict[str, Tool] = {}
_adapter: TypeAdapter[Any] | None = None


def register(tool: Tool) -> Tool:
    """Add ``tool`` (its name must be new)."""
    global _adapter
    if tool.name in _TOOLS:
        raise ValueError(f"a tool named {tool.name!r} is registered already")
    _TOOLS[tool.name] = tool
    _adapter = None
    return tool


def unregister(name: str) -> None:
    global _adapter
    _TOOLS.pop(name, None)
    _adapter = None


@contextmanager
def registered(tool: Tool) -> Iterator[Tool]:
    """``tool`` registered for the duration of a ``with`` block (tests, experiments)."""
    register(tool)
    try:
        yield tool
    finally:
        unregister(tool.name)


def get_tool(name: str) -> Tool:
    """The spec of ``name``; KeyError when no tool has that name."""
    return _TOOLS[name]


def tools() -> tuple[Tool, ...]:
    return tuple(_TOOLS.values())


def tool_names() -> tuple[str, ...]:
    return tuple(_TOOLS)


def action_models() -> dict[str, type[BaseModel]]:
    return {name: t.action for name, t in _TOOLS.items()}


def action_adapter() -> TypeAdapter[Any]:
    """A validator (and JSON Schema) for any registered action, discriminated by action_type."""
    global _adapter
    if _adapter is None:
        members = tuple(t.action for t in _TOOLS.values())
        union = Union[members] if len(members) > 1 else members[0]  # noqa: UP007
        _adapter = TypeAdapter(Annotated[union, Field(discriminator="action_type")])  # type: ignore[arg-type]
    return _adapter
