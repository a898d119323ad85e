"""One episode as a file: what ``WhipEnv.export()`` and ``%whip_save`` write, ``load_episode``
reads back.

The file is strict JSON (no NaN or Infinity: non-finite numbers are written as null) holding
the task, the variant seed, the student id, the final submitted code, the working copy, the
score with its components, and the turn-by-turn trail. Everything in it was recorded on the
student's side, so a grader treats it as a claim: ``whip course grade`` regrades the code and
only compares the recorded score with its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import WhipError

__all__ = [
    "EPISODE_FORMAT",
    "NON_FINITE_KEY",
    "EpisodeFileError",
    "EpisodeRecord",
    "TrailEntry",
    "append_trail",
    "code_digest",
    "dump_strict_json",
    "load_episode",
    "student_id_from_env",
    "trail_entry",
]

EPISODE_FORMAT = "whipstudio-episode"
STUDENT_ID_VARS = ("WHIP_STUDENT_ID", "JUPYTERHUB_USER")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TRAIL_TEXT = 20_000  # characters per string in the trail (the final code is never cut)
MAX_TRAIL_ENTRIES = 1000  # steps that cost no turn (rejected code) could otherwise pile up
MAX_TRAIL_ITEMS = 200  # per list or object in a trail entry
MAX_TRAIL_DEPTH = 10
# observation fields too bulky for a trail (the curves and listings are in the grade itself)
_BULKY = {"losses", "grad_norm_history", "histogram", "numbered_code", "code", "grader_details"}


class EpisodeFileError(WhipError, ValueError):
    """An episode file is missing, is not strict JSON, or does not hold an episode."""


def student_id_from_env() -> str:
    """``$WHIP_STUDENT_ID``, else ``$JUPYTERHUB_USER`` (set by JupyterHub), else ``""``."""
    for var in STUDENT_ID_VARS:
        if value := os.environ.get(var, "").strip():
            return value
    return ""


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def json_safe(value: Any) -> Any:
    """Non-finite floats become None, tuples lists, anything else JSON cannot hold its repr:
    the value is then strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return repr(value)[:200]


NON_FINITE_KEY = "non_finite"  # the project's strict JSON convention (see the server's)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _marked(value: Any, path: list[str], found: dict[str, str]) -> Any:
    """``value`` as strict JSON: each non-finite float becomes null and its JSON Pointer goes
    into ``found`` with which of NaN, Infinity and -Infinity it was."""
    if isinstance(value, float) and not math.isfinite(value):
        found[_pointer(path)] = (
            "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        )
        return None
    if isinstance(value, dict):
        return {str(k): _marked(v, [*path, str(k)], found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(v, [*path, str(i)], found) for i, v in enumerate(value)]
    if isinstance(value, datetime):
        return value.isoformat()
    return json_safe(value)


def _restore(data: dict[str, Any]) -> dict[str, Any]:
    """Put NaN/Infinity back where the root's ``non_finite`` map says (and drop the map)."""
    marks = data.pop(NON_FINITE_KEY, None)
    for pointer, kind in marks.items() if isinstance(marks, dict) else ():
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(pointer).split("/")[1:]]
        node: Any = data
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            key: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
            if node[key] is None:  # only a null can stand for a non-finite number
                node[key] = _NON_FINITE.get(str(kind), math.nan)
        except (KeyError, IndexError, ValueError, TypeError):
            continue  # a pointer that names nothing: the value stays null
    return data


def dump_strict_json(value: Any, *, indent: int | None = 1) -> str:
    """JSON that any parser accepts: NaN/Infinity are never written (they become null)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False, ensure_ascii=False)


def _cap(value: Any, depth: int = 0) -> Any:
    """A bounded, strict-JSON copy for the trail: long strings cut, at most MAX_TRAIL_ITEMS per
    list or object and MAX_TRAIL_DEPTH levels (whatever an agent sends, the trail stays small)."""
    if depth > MAX_TRAIL_DEPTH:
        return "[nested too deeply]"
    if isinstance(value, str) and len(value) > MAX_TRAIL_TEXT:
        return value[:MAX_TRAIL_TEXT] + f"... [{len(value) - MAX_TRAIL_TEXT} characters cut]"
    if isinstance(value, dict):
        items = list(value.items())[:MAX_TRAIL_ITEMS]
        return {str(k): _cap(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [_cap(v, depth + 1) for v in list(value[:MAX_TRAIL_ITEMS])]
    return json_safe(value)


class TrailEntry(BaseModel):
    """One call of ``step``: the action as given, and what came back."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    action_type: str
    action: dict[str, Any] = Field(default_factory=dict)
    reward: float | None = 0.0
    done: bool = False
    error: str | None = None
    observation: dict[str, Any] = Field(default_factory=dict)
    code_sha256: str | None = Field(default=None, description="submit_fix: the code graded.")


def trail_entry(action: Any, result: Any, submitted_code: str | None) -> TrailEntry:
    """The trail's record of one step (``result`` is the StepResult it returned)."""
    obs = result.observation
    if isinstance(action, BaseModel):
        given: Any = action.model_dump(exclude_none=True)
    else:
        given = action if isinstance(action, dict) else {"value": repr(action)[:200]}
    seen = obs.model_dump(mode="json", exclude_none=True)
    seen = {k: v for k, v in seen.items() if k not in _BULKY}
    if obs.action_type == "submit_fix" and not obs.error:
        details = getattr(obs, "grader_details", {}) or {}
        seen["components"] = details.get("components", {})
    return TrailEntry(
        turn=obs.turn,
        action_type=obs.action_type,
        action=_cap(given),
        reward=result.reward if math.isfinite(result.reward) else 0.0,
        done=result.done,
        error=obs.error,
        observation=_cap(seen),
        code_sha256=code_digest(submitted_code) if submitted_code is not None else None,
    )


def append_trail(trail: list[TrailEntry], entry: TrailEntry) -> None:
    """Append, keeping at most MAX_TRAIL_ENTRIES: the oldest entries that are not submissions
    go first (every submission stays, so the trail can still vouch for the final code)."""
    trail.append(entry)
    if len(trail) > MAX_TRAIL_ENTRIES:
        drop = next((i for i, t in enumerate(trail) if t.action_type != "submit_fix"), 0)
        del trail[drop]


class EpisodeRecord(BaseModel):
    """An exported episode. Unknown fields are refused, so a mangled file is noticed."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["whipstudio-episode"] = "whipstudio-episode"
    version: Literal[1] = 1
    saved_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    whipstudio_version: str = ""
    student_id: str = ""
    assignment: str | None = None
    task_id: str
    seed: int | None = None
    variant: dict[str, Any] = Field(default_factory=dict)
    episode_id: str | None = None
    turns: int = 0
    max_turns: int | None = None
    submissions: int = 0
    max_submissions: int = 1
    episode_done: bool = False
    final_code: str | None = Field(default=None, description="The code of the last submission.")
    working_code: str = ""
    score: float | None = Field(default=None, description="The last submission's score.")
    best_score: float | None = 0.0
    components: dict[str, float | None] = Field(default_factory=dict)
    isolation: str | None = None
    trail: list[TrailEntry] = Field(default_factory=list)

    def to_json(self) -> str:
        """Strict JSON: a non-finite number is written as null, and the root's ``non_finite``
        map says which NaN or Infinity each was (``load_episode`` puts them back)."""
        found: dict[str, str] = {}
        data = _marked(self.model_dump(mode="python"), [], found)
        if found:
            data[NON_FINITE_KEY] = found
        return json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the strict JSON file (its directory is created); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json() + "\n", encoding="utf-8")
        return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid in strict JSON")


def load_episode(path: str | os.PathLike[str]) -> EpisodeRecord:
    """Read an episode file written by ``WhipEnv.export()`` / ``%whip_save``.

    Raises EpisodeFileError (a ValueError) naming the file and the problem.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise EpisodeFileError(f"{p}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EpisodeFileError(f"{p}: cannot read: {exc}") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise EpisodeFileError(f"{p}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != EPISODE_FORMAT:
        raise EpisodeFileError(f'{p}: not a WhipStudio episode (no "format": "{EPISODE_FORMAT}")')
    try:
        return EpisodeRecord.model_validate(_restore(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(x) for x in e['loc'])}': {e['msg']}" for e in exc.errors()[:5]
        )
        raise EpisodeFileError(f"{p}: {problems}") from exc
