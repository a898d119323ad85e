"""Helpers that run *inside* a sandbox kernel (imported there during warm-up).

Only the standard library, IPython, numpy and torch are used here. User code runs with
``run_user_code`` in a fresh namespace, so it never sees these helpers or IPython's own
namespace; results go back to the host as ``display_data`` with ``RESULT_MIME``.
"""

from __future__ import annotations

import builtins
import importlib
import json
import math
import os
import sys
import traceback
from typing import Any

RESULT_MIME = "application/vnd.whipstudio.result+json"
ATTACHMENT_KEY = "whip_dispatch"  # where AttachedCell's data is (the host's kernel.py)
PROGRESS_MIME = "application/vnd.whipstudio.progress+json"
PROGRESS_INTERVAL_S = 0.25
REPR_LIMIT = 500


def warm_up(preload: list[str] | tuple[str, ...] = ()) -> None:
    """Import what every call needs, so the first call pays nothing: numpy, torch, and the
    modules the host names in ``preload`` (its tools' in-kernel halves). A preloaded module's
    ``kernel_setup()``, if it has one, runs once here."""
    import numpy  # noqa: F401
    import torch  # noqa: F401

    for name in preload:
        module = importlib.import_module(name)
        setup = getattr(module, "kernel_setup", None)
        if callable(setup):
            setup()
    # One tiny training step: torch imports (and patches) some modules lazily on first use,
    # for example torch._dynamo rewrapping torch.manual_seed when an optimizer is created.
    # fork_rng: the user's code must find the random state untouched.
    with torch.random.fork_rng(devices=[]):
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
        for opt_cls in (torch.optim.SGD, torch.optim.Adam):
            opt = opt_cls(model.parameters(), lr=0.01)
            target = torch.tensor([0, 1, 0, 1])
            loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 2)), target)
            opt.zero_grad()
            loss.backward()
            opt.step()


def emit(payload: dict[str, Any]) -> None:
    from IPython.display import publish_display_data

    publish_display_data({RESULT_MIME: json_safe(payload)})


def emit_progress(payload: dict[str, Any]) -> None:
    """A partial result while a call runs (for live views); the final result still follows."""
    from IPython.display import publish_display_data

    publish_display_data({PROGRESS_MIME: json_safe(payload)})


def resolve(entry: str) -> Any:
    """The function an entry point ``"package.module:function"`` names."""
    module, _, func = entry.partition(":")
    if not module or not func.isidentifier():
        raise ValueError(f"bad entry point {entry!r}: expected 'module:function'")
    return getattr(importlib.import_module(module), func)


def dispatch_attached() -> None:
    """``dispatch`` with its arguments from the execute request's metadata, where the host
    puts them when they are large (``AttachedCell``)."""
    try:
        from IPython import get_ipython

        parent = get_ipython().kernel.get_parent("shell")  # type: ignore[attr-defined]
        entry, args_json, setup_json = json.loads(parent["metadata"][ATTACHMENT_KEY])
    except BaseException as exc:
        emit({"internal_error": f"the call's arguments did not arrive: {exc!r}"})
        return
    dispatch(entry, args_json, setup_json)


def dispatch(entry: str, args_json: str, setup_json: str = "null") -> None:
    """Entry point of every call: run ``setup`` (``[entry, payload]``, e.g. installing the
    episode's training data) then ``entry(args)``, and emit the result. The host names both
    entry points; this module knows no tool."""
    try:
        setup = json.loads(setup_json)
        if setup is not None:
            resolve(setup[0])(setup[1])
        result = resolve(entry)(json.loads(args_json))
    except BaseException as exc:  # a tool's own failure must still produce a result
        emit({"internal_error": "".join(traceback.format_exception(exc))[-4000:]})
        return
    flush_streams()
    emit(result)


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def fresh_namespace() -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": builtins}


def run_user_code(
    code: str, ns: dict[str, Any], filename: str, stop: type[BaseException] | None = None
) -> tuple[int, str | None]:
    """Exec ``code`` in ``ns`` as a script. Returns (exit_code, one-line error or None); a
    traceback limited to the user's own frames goes to stderr, as ``python script.py`` would.
    An exception of class ``stop`` ends the run normally."""
    try:
        compiled = compile(code, filename, "exec")
        exec(compiled, ns)
    except SystemExit as exc:
        code_ = exc.code
        if code_ is None or code_ == 0:
            return 0, None
        if not isinstance(code_, int):
            print(code_, file=sys.stderr)
            code_ = 1
        return code_, f"SystemExit: {exc.code}"
    except BaseException as exc:
        if stop is not None and isinstance(exc, stop):
            return 0, None
        print_user_traceback(exc)
        return 1, format_exception_only(exc)
    return 0, None


def float_out(x: float) -> float | str:
    """A float for JSON: NaN and Inf travel as strings ('nan', 'inf'); float() restores them."""
    return x if math.isfinite(x) else repr(x)


def print_user_traceback(exc: BaseException) -> None:
    tb = exc.__traceback__
    # Drop the frames of this module; keep the user's.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    sys.stderr.write(text)
    flush_streams()


def format_exception_only(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def eval_user_expr(expr: str, ns: dict[str, Any]) -> Any:
    return eval(compile(expr, "<expression>", "eval"), ns)


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<repr failed: {format_exception_only(exc)}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more characters]"
    return text


def type_name(value: Any) -> str:
    t = type(value)
    mod = t.__module__
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


def finite_or_none(x: Any) -> float | None:
    try:
        f = float(x)
    except Exception:
        return None
    return f if math.isfinite(f) else None


def json_safe(value: Any) -> Any:
    """Make a payload JSON-safe: NaN/Inf become None, tuples lists, unknowns their repr."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return short_repr(value)


def find_modules(ns: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, module) for every torch.nn.Module in a namespace, 'model' first."""
    import torch

    found = [(k, v) for k, v in ns.items() if isinstance(v, torch.nn.Module)]
    found.sort(key=lambda kv: (kv[0] != "model", kv[0]))
    return found


def find_optimizers(ns: dict[str, Any]) -> list[tuple[str, Any]]:
    import torch

    found = [(k, v) for k, v in ns.items() if isinstance(v, torch.optim.Optimizer)]
    found.sort(key=lambda kv: (kv[0] != "optimizer", kv[0]))
    return found


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MiB (this one's by default; Linux; 0.0 elsewhere, or
    for a process that has ended)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def row_keys(t: Any) -> set[bytes]:
    """One hashable key per row (first dimension) of a tensor or array, by exact value."""
    import numpy as np

    a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    if a.ndim == 0 or a.shape[0] == 0:
        return set()
    a = np.ascontiguousarray(a.reshape(a.shape[0], -1).astype(np.float32, copy=False))
    return {row.tobytes() for row in a}


class StopRun(BaseException):
    """Raised inside backward() to end a probe after its step budget; not a user error."""


class TrainingRecorder:
    """Records what a training script really does: every loss that reaches backward(), the
    gradient norms right after it, optimizer steps, and the models and optimizers it used.

    Installed by patching ``torch.autograd.backward`` (``Tensor.backward`` goes through it) and
    ``torch.autograd.grad``, ``Optimizer.__init__`` and torch's global module/optimizer hooks.
    """

    def __init__(
        self,
        ns: dict[str, Any],
        max_backward: int | None = None,
        *,
        record_memory: bool = False,
        record_inputs: bool = False,
        progress: bool = False,
    ) -> None:
        self.ns = ns
        self.progress = progress  # send the new losses to the host every PROGRESS_INTERVAL_S
        # Where partial results go (default: published from this process; the grading harness
        # runs submissions in a forked child that hands them to the kernel's main process).
        self.progress_sink: Any = emit_progress
        self._sent = 0
        self._last_sent = 0.0
        self.max_backward = max_backward
        self.learn = True
        self.record_memory = record_memory
        self.record_inputs = record_inputs
        self.rss_mb: list[float] = []  # resident memory after each backward()
        self.training_rows: set[bytes] = set()  # rows of every input the model trained on
        self.losses: list[float] = []
        self.grad_norm_history: list[dict[str, float]] = []
        self.optimizer_steps = 0
        self.optimizers: list[Any] = []
        self.called_modules: list[Any] = []  # outermost modules, in first-call order
        self.initial_params: dict[int, Any] = {}  # id(param) -> its value at first forward
        self.last_without_grad: list[str] | None = None  # as of the last backward()
        self._depth = 0
        self._handles: list[Any] = []
        self._saved: list[tuple[Any, str, Any]] = []

    # -- installation
    def install(self) -> None:
        import torch
        from torch.nn.modules import module as module_mod
        from torch.optim import optimizer as optim_mod

        original_backward, original_grad = torch.autograd.backward, torch.autograd.grad
        recorder = self

        def loss_reached(tensors: Any) -> None:
            if recorder.max_backward is not None and len(recorder.losses) >= recorder.max_backward:
                raise StopRun()
            first = tensors[0] if isinstance(tensors, (list, tuple)) else tensors
            try:
                recorder.losses.append(float(first.detach().float().mean()))
            except Exception:
                recorder.losses.append(float("nan"))
            recorder.before_backward(first)  # the graph is still whole here

        def recording_backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            loss_reached(tensors)
            # learn=False (the grader's reference run): no gradient is computed.
            out = original_backward(tensors, *args, **kwargs) if recorder.learn else None
            recorder.after_backward()
            return out

        def recording_grad(outputs: Any, *args: Any, **kwargs: Any) -> Any:
            # Gradients taken without backward() (p.grad set from them by hand) train too.
            loss_reached(outputs)
            out = original_grad(outputs, *args, **kwargs)
            recorder.after_backward()
            return out

        original_opt_init = torch.optim.Optimizer.__init__

        def recording_opt_init(opt: Any, *args: Any, **kwargs: Any) -> None:
            original_opt_init(opt, *args, **kwargs)
            recorder.optimizers.append(opt)

        self._patch(torch.autograd, "backward", recording_backward)
        self._patch(torch.autograd, "grad", recording_grad)
        self._patch(torch.optim.Optimizer, "__init__", recording_opt_init)
        self._handles.append(optim_mod.register_optimizer_step_post_hook(self._on_step))
        self._handles.append(module_mod.register_module_forward_pre_hook(self._pre_forward))
        self._handles.append(module_mod.register_module_forward_hook(self._post_forward))

    def before_backward(self, loss: Any) -> None:
        """Called with the loss before backward() runs (subclasses look at its graph)."""

    def after_backward(self) -> None:
        if self.record_memory:
            self.rss_mb.append(rss_mb())
        if self.progress:
            self.send_progress()
        self.grad_norm_history.append(self.grad_norms())
        self.last_without_grad = self.params_without_grad()

    def uninstall(self) -> None:
        for h in self._handles:
            h.remove()
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._handles.clear()
        self._saved.clear()

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def send_progress(self, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if len(self.losses) > self._sent and (
            force or now - self._last_sent >= PROGRESS_INTERVAL_S
        ):
            new = [float_out(x) for x in self.losses[self._sent :]]
            self.progress_sink({"losses": new, "offset": self._sent})
            self._sent = len(self.losses)
            self._last_sent = now

    # -- hooks
    def _on_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        self.optimizer_steps += 1
        if all(o is not opt for o in self.optimizers):
            self.optimizers.append(opt)

    def _pre_forward(self, module: Any, args: Any) -> None:
        if self._depth == 0:
            if all(m is not module for m in self.called_modules):
                self.called_modules.append(module)
            # Every parameter's value when it first takes part in a forward pass: also a head
            # swapped in after the model's first call.
            for p in module.parameters():
                if id(p) not in self.initial_params:
                    self.initial_params[id(p)] = p.detach().clone()
            if self.record_inputs and args:
                import torch

                if torch.is_grad_enabled() and isinstance(args[0], torch.Tensor):
                    self.training_rows |= row_keys(args[0])
        self._depth += 1

    def _post_forward(self, module: Any, args: Any, output: Any) -> None:
        self._depth = max(0, self._depth - 1)

    # -- what was found
    def model(self) -> tuple[str, Any] | None:
        """The model under training: a module-level nn.Module ('model' preferred), else the
        first outermost module the script called."""
        found = find_modules(self.ns)
        if found:
            return found[0]
        if self.called_modules:
            m = self.called_modules[0]
            return type(m).__name__, m
        return None

    def optimizer(self) -> Any | None:
        found = find_optimizers(self.ns)
        if found:
            return found[0][1]
        return self.optimizers[0] if self.optimizers else None

    def grad_norms(self) -> dict[str, float]:
        found = self.model()
        if found is None:
            return {}
        norms = {}
        for name, p in found[1].named_parameters():
            if p.grad is not None:
                norms[name] = float(p.grad.detach().float().norm())
        return norms

    def params_without_grad(self) -> list[str]:
        found = self.model()
        if found is None:
            return []
        return [n for n, p in found[1].named_parameters() if p.grad is None]

    def optimizer_param_count(self) -> int:
        opt = self.optimizer()
        if opt is None:
            return 0
        return sum(int(p.numel()) for g in opt.param_groups for p in g["params"])

    def param_changes(self, module: Any) -> dict[str, float]:
        """Max absolute change of each parameter since the module's first forward call."""
        changes = {}
        for name, p in module.named_parameters():
            before = self.initial_params.get(id(p))
            if before is not None and before.shape == p.shape:
                changes[name] = float((p.detach() - before).abs().max()) if p.numel() else 0.0
        return changes
