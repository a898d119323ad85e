"""Task packs: discovery, validation and loading.

A pack is a directory ``<task_id>/`` holding ``task.toml``, ``buggy.py``, ``solution.py``,
``hints.md`` and ``grader.py`` (the host-side data generator with hidden parameters: the
training data the script loads with ``whip_data.load_training_data``, and the held-out set).
Packs come from the packs shipped with whipstudio_nb, then from every directory in
``WHIP_TASKS_PATH`` (os.pathsep separated) and from ``extra_paths``; a later pack with the same id
replaces an earlier one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import TaskPackError, UnknownTaskError
from .models import TaskInfo, TaskSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "builtin_tasks_dir",
    "find_task_dirs",
    "list_tasks",
    "load_task",
    "load_task_dir",
    "render_variant",
]

_REQUIRED_FILES = ("task.toml", "buggy.py", "solution.py", "grader.py")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DIFFICULTIES = ("easy", "medium", "hard")


# The pack format's grading vocabulary (grading.metrics computes them).
METRICS = ("accuracy", "multilabel_f1", "r2")
BUILTIN_COMPONENTS = (
    "heldout_metric",
    "heldout_loss",
    "loss_decrease",
    "trained",
    "memory",
    "no_leakage",
)


def builtin_tasks_dir() -> Path:
    """The packs shipped with the package: inside the wheel, or the repo root when editable."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "tasks", here.parent / "tasks"):
        if candidate.is_dir():
            return candidate
    return here / "tasks"


def _search_dirs(extra_paths: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    dirs = [builtin_tasks_dir()]
    env = os.environ.get("WHIP_TASKS_PATH", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra_paths]
    return dirs


def find_task_dirs(extra_paths: Iterable[str | os.PathLike[str]] = ()) -> dict[str, Path]:
    """Map task id -> pack directory, in natural order (task2 before task10)."""
    found: dict[str, Path] = {}
    for root in _search_dirs(extra_paths):
        if (root / "task.toml").is_file():  # a path may name a single pack
            found[root.name] = root
            continue
        if not root.is_dir():
            continue
        for child in root.iterdir():
            if (child / "task.toml").is_file():
                found[child.name] = child
    return dict(sorted(found.items(), key=lambda kv: _natural_key(kv[0])))


def _natural_key(s: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def _require(cond: bool, path: Path, field: str, expected: str) -> None:
    if not cond:
        raise TaskPackError(f"{path}: field '{field}' {expected}")


def load_task_dir(pack: str | os.PathLike[str]) -> TaskSpec:
    """Load and validate one pack directory, naming the file and field of any problem."""
    pack = Path(pack)
    for name in _REQUIRED_FILES:
        if not (pack / name).is_file():
            raise TaskPackError(f"{pack}: missing required file '{name}'")
    toml_path = pack / "task.toml"
    try:
        meta = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskPackError(f"{toml_path}: invalid TOML: {exc}") from exc

    for field in ("id", "name", "difficulty", "description"):
        _require(
            isinstance(meta.get(field), str) and meta[field].strip() != "",
            toml_path,
            field,
            "is required and must be a non-empty string",
        )
    _require(
        meta["id"] == pack.name,
        toml_path,
        "id",
        f"must match the directory name '{pack.name}' (got '{meta['id']}')",
    )
    _require(
        meta["difficulty"] in _DIFFICULTIES,
        toml_path,
        "difficulty",
        f"must be one of {', '.join(_DIFFICULTIES)} (got '{meta['difficulty']}')",
    )
    max_turns = meta.get("max_turns", 10)
    _require(
        isinstance(max_turns, int) and max_turns >= 1,
        toml_path,
        "max_turns",
        "must be an integer >= 1",
    )
    budget = meta.get("time_budget_s", 20)
    _require(
        isinstance(budget, (int, float)) and budget > 0,
        toml_path,
        "time_budget_s",
        "must be a positive number",
    )
    grading = meta.get("grading", {})
    _require(isinstance(grading, dict), toml_path, "grading", "must be a table")
    _check_grading(grading, toml_path, (pack / "grader.py").read_text(encoding="utf-8"))
    variants = meta.get("variants", {})
    _require(isinstance(variants, dict), toml_path, "variants", "must be a table")
    for name, values in variants.items():
        _require(
            isinstance(values, list) and len(values) > 0,
            toml_path,
            f"variants.{name}",
            "must be a non-empty list of values",
        )

    hints_path = pack / "hints.md"
    hints = _parse_hints(hints_path.read_text(encoding="utf-8")) if hints_path.is_file() else []
    info = TaskInfo(
        id=meta["id"],
        name=meta["name"],
        difficulty=meta["difficulty"],
        category=str(meta.get("category", "")),
        description=meta["description"].strip(),
        max_turns=max_turns,
    )
    sources = {
        name: (pack / f"{name}.py").read_text(encoding="utf-8") for name in ("buggy", "solution")
    }
    if (pack / "partial.py").is_file():
        sources["partial"] = (pack / "partial.py").read_text(encoding="utf-8")
    for name, text in sources.items():
        for used in _PLACEHOLDER.findall(text):
            _require(
                used in variants,
                pack / f"{name}.py",
                f"{{{{{used}}}}}",
                f"is used but not declared under [variants] in {toml_path.name}",
            )
    spec = TaskSpec(
        info=info,
        buggy_code=sources["buggy"],
        solution_code=sources["solution"],
        partial_code=sources.get("partial"),
        hints=hints,
        grading=grading,
        time_budget_s=float(budget),
        path=pack,
        variants=variants,
        templates={
            "buggy_code": sources["buggy"],
            "solution_code": sources["solution"],
            "partial_code": sources.get("partial"),
        },
    )
    return render_variant(spec, None)


def _check_grading(grading: dict[str, Any], toml_path: Path, grader_source: str) -> None:
    metric = grading.get("metric", "accuracy")
    _require(
        metric in METRICS,
        toml_path,
        "grading.metric",
        f"must be one of {', '.join(METRICS)} (got '{metric}')",
    )
    weights = grading.get("weights", {})
    _require(isinstance(weights, dict), toml_path, "grading.weights", "must be a table")
    custom = _defines(grader_source, "score")
    _require(
        _defines(grader_source, "heldout"),
        toml_path.with_name("grader.py"),
        "heldout",
        "must be defined: def heldout(seed, params) (README: task packs)",
    )
    for name, w in weights.items():
        _require(
            isinstance(w, (int, float)) and w >= 0,
            toml_path,
            f"grading.weights.{name}",
            "must be a number >= 0",
        )
        _require(
            name in BUILTIN_COMPONENTS or custom,
            toml_path,
            f"grading.weights.{name}",
            f"is not a built-in component ({', '.join(BUILTIN_COMPONENTS)}) and grader.py "
            "defines no score() to provide it",
        )
    if "no_leakage" in weights:
        _require(
            isinstance(grading.get("val_inputs"), str),
            toml_path,
            "grading.val_inputs",
            "must name the validation inputs when no_leakage is weighted",
        )
    val_data = grading.get("val_data", [])
    _require(
        isinstance(val_data, list) and all(isinstance(k, str) for k in val_data),
        toml_path,
        "grading.val_data",
        "must be a list of training_data() keys (the validation split)",
    )


def _defines(source: str, name: str) -> bool:
    """Whether grader.py defines ``name`` or imports it (from a module next to it)."""
    pattern = rf"^(def {name}\(|from \S+ import .*\b{name}\b|{name} = )"
    return re.search(pattern, source, flags=re.MULTILINE) is not None


def render_variant(spec: TaskSpec, seed: int | None) -> TaskSpec:
    """The task with its ``{{placeholders}}`` filled in: the first value of each variant for
    ``seed=None``, a choice drawn from ``seed`` otherwise (the same seed, the same variant)."""
    import random

    rng = random.Random(seed)
    params = {
        name: (values[0] if seed is None else rng.choice(values))
        for name, values in sorted(spec.variants.items())
    }

    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        return _PLACEHOLDER.sub(lambda m: repr(params[m.group(1)]), text)

    sources = spec.templates or {
        "buggy_code": spec.buggy_code,
        "solution_code": spec.solution_code,
        "partial_code": spec.partial_code,
    }
    return spec.model_copy(
        update={**{k: fill(v) for k, v in sources.items()}, "params": params, "seed": seed}
    )


def _parse_hints(text: str) -> list[str]:
    """Hints are the sections of hints.md under '## ' headings, vaguest first."""
    parts = re.split(r"^## .*$", text, flags=re.MULTILINE)
    return [p.strip() for p in parts[1:] if p.strip()]


def load_task(
    task_id: str, seed: int | None = None, extra_paths: Iterable[str | os.PathLike[str]] = ()
) -> TaskSpec:
    """Load a task pack by id (the variant drawn from ``seed``, if the task has variants);
    raises UnknownTaskError (a ValueError) for an unknown id."""
    dirs = find_task_dirs(extra_paths)
    if task_id not in dirs:
        raise UnknownTaskError(task_id, list(dirs))
    spec = load_task_dir(dirs[task_id])
    return spec if seed is None else render_variant(spec, seed)


def list_tasks(extra_paths: Iterable[str | os.PathLike[str]] = ()) -> list[TaskInfo]:
    """Every available task's public info, in natural id order."""
    return [load_task_dir(d).info for d in find_task_dirs(extra_paths).values()]
