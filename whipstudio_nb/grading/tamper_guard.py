"""What grading relies on, watched for replacement while the submission runs (``TamperGuard``).

Runs inside the sandbox kernel, in the grading harness's process (``sandboxed.py``)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["TamperGuard"]


class TamperGuard:
    """Notices when code replaces or deletes what grading relies on: torch functions, the
    functions the harness itself calls (os, json, base64, builtins), every name in the modules
    of whipstudio_nb and whip_data (a function, a module it calls through, a builtin shadowed by
    a new global), and the callables of the objects in ``watch`` (the recorder: its channel to
    the kernel's main process). A function counts as replaced when its body, its defaults or
    what its closure holds change as well."""

    _STDLIB = ("os", "json", "base64", "select", "signal", "builtins")

    def __init__(self, *watch: Any) -> None:
        import torch
        import torch.nn.functional as F

        self._spaces: dict[str, Any] = {
            "torch": torch,
            "torch.Tensor": torch.Tensor,
            "torch.nn.Module": torch.nn.Module,
            "torch.nn.functional": F,
            "torch.autograd": torch.autograd,
            "torch.optim.Optimizer": torch.optim.Optimizer,
        }
        for name in self._STDLIB:
            if name in sys.modules:
                self._spaces[name] = sys.modules[name]
        self._whole: set[str] = set()  # spaces where every name counts, not only callables
        for name, mod in list(sys.modules.items()):
            if mod is not None and (name.startswith("whipstudio_nb") or name == "whip_data"):
                self._spaces[name] = mod
                self._whole.add(name)
                for attr, value in list(vars(mod).items()):
                    if isinstance(value, type) and value.__module__ == name:
                        self._spaces[f"{name}.{attr}"] = value
        for obj in watch:
            self._spaces[f"the {type(obj).__name__}"] = obj
        self._before = {name: self._ids(name) for name in self._spaces}

    def _ids(self, name: str) -> dict[str, Any]:
        """name -> the object bound there (held, so that no new object can take its id)."""
        whole = name in self._whole
        out: dict[str, Any] = {}
        for k, v in list(vars(self._spaces[name]).items()):
            if whole and k.startswith("__") and k != "__builtins__":
                continue  # module bookkeeping (__warningregistry__, __loader__...)
            if not (whole or callable(v) or isinstance(v, (staticmethod, classmethod))):
                continue
            out[k] = v
            code = getattr(v, "__code__", None) if callable(v) else None
            if code is not None:  # a function's body, defaults or closure swapped in place
                out[k + ".__code__"] = code
                out[k + ".__defaults__"] = getattr(v, "__defaults__", None)
                for i, cell in enumerate(getattr(v, "__closure__", None) or ()):
                    try:
                        out[f"{k}.__closure__[{i}]"] = cell.cell_contents
                    except ValueError:  # an empty cell
                        pass
        return out

    def changes(self) -> list[str]:
        changed = []
        for name, before in self._before.items():
            now = self._ids(name)
            names = {k for k, v in before.items() if k not in now or now[k] is not v}
            if name in self._whole:
                # New names: a global that shadows a builtin the module's functions call. A
                # submodule imported meanwhile is the import system's doing.
                for k in now.keys() - before.keys():
                    value = vars(self._spaces[name]).get(k)
                    if getattr(value, "__name__", None) != f"{name}.{k}":
                        names.add(k)
            # A replaced function also has a new __code__: name the function only.
            names = {k for k in names if k.rsplit(".", 1)[0] not in names or "." not in k}
            changed += [f"{name}.{k}" for k in names]
        return sorted(changed)
