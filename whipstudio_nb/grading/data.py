"""Where a task's data comes from: the pack's generator, fed a seed the sandbox never sees.

Each pack's ``grader.py`` defines ``training_data(seed, params)`` (the arrays the script gets from
``whip_data.load_training_data``) and ``heldout(seed, params)`` (inputs and labels from the same
hidden distribution, drawn from a different random stream). ``seed`` picks the hidden parameters
of the world (weights, rules, noise) as well as the samples. The host draws it:

- ``task.data_seed`` when set (``WhipEnv.reset`` draws one per episode);
- otherwise it is derived from a secret of this host process (``WHIP_DATA_SECRET`` fixes it, for
  reproducible experiments), the task id and the variant seed: the same code gets the same
  score within a process, and nothing in the sandbox can predict it.

The public demo draw (``DEMO_SEED``, default 0) is what a script run outside the environment gets.

A legacy pack (no ``training_data``: its script builds its own data) still grades: its held-out
set comes from ``heldout(HELDOUT_SEED[, params])``, and ``whip validate-task`` warns that a
submission can see the rule its data follows.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import secrets
from typing import Any

import numpy as np

from ..models import TaskSpec

__all__ = [
    "DATA_SETUP",
    "DEMO_SEED",
    "data_payload",
    "demo_training_data",
    "heldout_data",
    "hidden_seed",
    "is_legacy",
    "training_data",
    "swapped_val_seed",
    "training_sample",
    "val_keys",
]

DEMO_SEED = 0
# Run in a kernel before a tool's or the harness's entry point, with ``data_payload``: installs
# the training data that task scripts load with ``whip_data.load_training_data``.
DATA_SETUP = "whipstudio_nb.grading.loader:install"
_cache: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
_SECRET = os.environ.get("WHIP_DATA_SECRET") or secrets.token_hex(16)


def hidden_seed(task: TaskSpec) -> int:
    """The seed of the task's hidden world for this episode or grading run (never sent to a
    sandbox)."""
    explicit = getattr(task, "data_seed", None)
    if explicit is not None:
        return int(explicit)
    key = f"{_SECRET}|{task.info.id}|{task.seed}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 2


def _pack(task: TaskSpec) -> Any:
    from .pack import load_pack_grader

    return load_pack_grader(task)


def _arrays(raw: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(raw, dict) or "X" not in raw or "y" not in raw:
        raise TypeError(f"{where} must return a dict with at least 'X' and 'y' arrays")
    return {str(k): np.ascontiguousarray(np.asarray(v)) for k, v in raw.items()}


def training_data(task: TaskSpec, seed: int) -> dict[str, np.ndarray]:
    """The training arrays for ``seed`` (cached, read-only)."""
    assert task.path is not None
    key = (str(task.path), (task.path / "grader.py").stat().st_mtime, _params_key(task), seed)
    if key not in _cache:
        if len(_cache) >= 64:
            _cache.clear()
        raw = _pack(task).training_data(seed, dict(task.params))
        arrays = _arrays(raw, f"{task.path / 'grader.py'}: training_data()")
        for a in arrays.values():
            a.setflags(write=False)
        _cache[key] = arrays
    return _cache[key]


TRAIN_CHECK_ROWS = 2000


def training_sample(task: TaskSpec, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Up to TRAIN_CHECK_ROWS rows of the training inputs ``X`` and labels ``y`` (a fixed
    choice per seed), for the host's own training-loss check; None for a legacy pack."""
    if is_legacy(task):
        return None
    arrays = training_data(task, seed)
    if "X" not in arrays or "y" not in arrays or len(arrays["X"]) != len(arrays["y"]):
        return None
    x, y = arrays["X"], arrays["y"]
    if len(x) > TRAIN_CHECK_ROWS:
        pick = np.sort(np.random.default_rng([seed, 3]).permutation(len(x))[:TRAIN_CHECK_ROWS])
        x, y = x[pick], y[pick]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def demo_training_data(task: TaskSpec) -> dict[str, np.ndarray]:
    """The public demo draw: what ``load_training_data`` returns outside the environment."""
    return training_data(task, int(getattr(_pack(task), "DEMO_SEED", DEMO_SEED)))


def is_legacy(task: TaskSpec) -> bool:
    """A pack whose script builds its own data (no ``training_data`` in grader.py)."""
    return not hasattr(_pack(task), "training_data")


def heldout_data(task: TaskSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    pack = _pack(task)
    if is_legacy(task):
        seed = int(task.grading.get("heldout_seed", getattr(pack, "HELDOUT_SEED", 0)))
        if len(inspect.signature(pack.heldout).parameters) < 2:
            inputs, labels = pack.heldout(seed)
            return np.asarray(inputs), np.asarray(labels)
    inputs, labels = pack.heldout(seed, dict(task.params))
    return np.asarray(inputs), np.asarray(labels)


def data_payload(
    task: TaskSpec, seed: int | None = None, val_from: int | None = None
) -> dict[str, Any] | None:
    """What the environment hands a kernel (``whip_data._install``): training arrays only
    (None for a legacy pack). ``val_from``: the arrays the pack's ``val_data`` names (its
    validation split) come from that seed's draw instead (``swapped_val_seed``)."""
    from .harness import encode_array

    if is_legacy(task):
        return None
    seed = hidden_seed(task) if seed is None else seed
    arrays = training_data(task, seed)
    if val_from is not None:
        other = training_data(task, val_from)
        arrays = {**arrays, **{k: other[k] for k in val_keys(task) if k in other}}
    return {"task_id": task.info.id, "arrays": {k: encode_array(v) for k, v in arrays.items()}}


def _params_key(task: TaskSpec) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, repr(v)) for k, v in task.params.items()))


def val_keys(task: TaskSpec) -> list[str]:
    """The training data's validation split (``[grading] val_data``): arrays the script may
    evaluate on but never train on."""
    keys = task.grading.get("val_data") or []
    return [str(k) for k in keys] if isinstance(keys, list) else []


def swapped_val_seed(seed: int) -> int:
    """The draw whose validation split replaces the real one in the grader's second run: as
    hidden as ``seed``, and never equal to it."""
    digest = hashlib.blake2b(f"{seed}|val".encode(), digest_size=7).digest()
    other = int.from_bytes(digest, "big") % 2**62
    return other if other != seed else other + 1
