"""Turning a model's reply into an action, or into a short error naming the field at fault."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import format_validation_error
from ..models import SubmitFixAction
from ..sandbox.policy import parse
from ..tools import action_adapter, tool_names

__all__ = [
    "InvalidAction",
    "parse_content",
    "parse_fix",
    "parse_tool_call",
    "validate_action",
]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def _valid() -> str:
    return ", ".join(tool_names())


@dataclass
class InvalidAction:
    """A reply that is not a valid action: sent back to the model, counted as a parse error."""

    error: str
    raw: str = ""
    action_type: str = "invalid"


def validate_action(data: Any, raw: str = "") -> Any:
    """An action model from a decoded object, or an InvalidAction naming the problem."""
    if not isinstance(data, dict):
        return InvalidAction(
            f"expected one JSON object with an 'action_type' field, got {type(data).__name__}",
            raw,
        )
    t = data.get("action_type")
    if t is None:
        return InvalidAction(f"field 'action_type' is required. Valid: {_valid()}", raw)
    if not isinstance(t, str) or t not in tool_names():
        return InvalidAction(f"field 'action_type': unknown value {t!r}. Valid: {_valid()}", raw)
    try:
        return action_adapter().validate_python(data)
    except ValidationError as exc:
        return InvalidAction(format_validation_error(exc, skip=tool_names(), limit=3), raw, t)


def parse_tool_call(name: str, arguments: str | None) -> Any:
    """A function call (tool name = action_type, JSON arguments) as an action."""
    raw = f"{name}({arguments or ''})"
    if name not in tool_names():
        return InvalidAction(f"unknown tool {name!r}. Valid: {_valid()}", raw)
    try:
        args = json.loads(arguments) if arguments and arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return InvalidAction(f"the arguments of {name} are not valid JSON ({exc.msg})", raw, name)
    if not isinstance(args, dict):
        return InvalidAction(f"the arguments of {name} must be a JSON object", raw, name)
    given = args.pop("action_type", name)
    if given != name:
        return InvalidAction(
            f"field 'action_type': {given!r} does not match the tool called ({name})", raw, name
        )
    return validate_action({"action_type": name, **args}, raw)


def _json_candidates(text: str) -> list[str]:
    stripped = text.strip()
    out = [stripped]
    out += [body for _lang, body in _FENCE.findall(text)]
    start = stripped.find("{")
    if start > 0:
        out.append(stripped[start:])
    return out


def _decode_object(text: str) -> Any:
    """The first JSON object in ``text``: bare, fenced, or after some prose."""
    decoder = json.JSONDecoder()
    first_error: json.JSONDecodeError | None = None
    for cand in _json_candidates(text):
        cand = cand.strip()
        if not cand.startswith(("{", "[")):
            continue
        try:
            obj, _end = decoder.raw_decode(cand)
            return obj
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    raise json.JSONDecodeError("no JSON object found", text, 0)


def parse_content(text: str | None) -> Any:
    """A message content holding one JSON action object, bare or in a code fence."""
    text = text or ""
    if not text.strip():
        return InvalidAction(
            "empty reply: call one of the tools, or answer with one JSON object with an "
            "'action_type' field"
        )
    try:
        data = _decode_object(text)
    except json.JSONDecodeError as exc:
        return InvalidAction(
            f"the reply is not a JSON action ({exc.msg}): call one of the tools, or answer with "
            "one JSON object with an 'action_type' field",
            text,
        )
    return validate_action(data, text)


def parse_fix(text: str | None) -> Any:
    """No-tools mode: the reply must hold the fixed script, in a code fence or as a JSON
    ``submit_fix`` object; it becomes a ``submit_fix`` action."""
    text = text or ""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text) if lang.lower() != "json"]
    python = [b for lang, b in blocks if lang in ("python", "py", "python3")] or [
        b for _lang, b in blocks
    ]
    if python:
        code = max(python, key=len)
        return SubmitFixAction(fixed_code=code if code.endswith("\n") else code + "\n")
    try:
        data = _decode_object(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        if data.get("action_type", "submit_fix") != "submit_fix":
            return InvalidAction(
                "field 'action_type': only submit_fix is available here; answer with the whole "
                "fixed script",
                text,
                "submit_fix",
            )
        data = {**data, "action_type": "submit_fix"}
        action = validate_action(data, text)
        if isinstance(action, SubmitFixAction) and action.fixed_code:
            return action
        if isinstance(action, InvalidAction):
            return action
        return InvalidAction("field 'fixed_code' is required: the whole fixed script", text)
    stripped = text.strip()
    if stripped and "\n" in stripped:
        try:
            parse(stripped)
            return SubmitFixAction(fixed_code=stripped + "\n")
        except SyntaxError:
            pass
    return InvalidAction(
        "no fixed script found: answer with the whole fixed script in one ```python code block",
        text,
        "submit_fix",
    )
