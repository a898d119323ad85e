"""A task pack's host-side ``grader.py``, loaded as a module (never mounted into a sandbox)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from ..models import TaskSpec

__all__ = ["load_pack_grader"]

_pack_cache: dict[tuple[str, float], ModuleType] = {}


def load_pack_grader(task: TaskSpec) -> ModuleType:
    """The pack's grader.py (host-side code: data generator, optional checks), cached. Modules
    next to it can be imported from it (``import helpers``)."""
    assert task.path is not None
    path = task.path / "grader.py"
    key = (str(path), path.stat().st_mtime)
    if key not in _pack_cache:
        spec = importlib.util.spec_from_file_location(f"whip_pack_grader_{task.info.id}", path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(path)
        mod = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(task.path))
        try:
            spec.loader.exec_module(mod)
        finally:
            try:
                sys.path.remove(str(task.path))
            except ValueError:
                pass
        _pack_cache[key] = mod
    return _pack_cache[key]
