"""The grading recorder: a TrainingRecorder whose every observation leaves the submission's
process the moment it is made.

The submission runs in the interpreter the recorder runs in, so whatever the recorder keeps
can be rewritten afterwards (its lists are reachable through torch's hook registries). So each
loss, memory reading, batch of rows trained on and parameter digest goes to the kernel's main
process (P) as an event, and P's ledger (``ledger.py``) is the record. Parameter digests are
taken when a parameter first takes part in a forward pass and around every optimizer step:
P can then tell which parameters training changed, and which changed some other way.

``learn=False`` (the grader's re-run in another hidden world, ``grader.py``): losses are
recorded but backward() computes no gradients, so nothing trains.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from whipstudio_nb.sandbox import kernel_lib as kl

__all__ = ["GradingRecorder", "digest", "is_torch_step", "row_hashes"]

_blake2b = hashlib.blake2b


def digest(t: Any) -> str:
    """A tensor's exact value (dtype, shape and bytes) as a short hash."""
    import torch

    a = t.detach().cpu().contiguous().reshape(-1)
    raw = a.view(torch.uint8).numpy().tobytes() if a.numel() else b""
    head = f"{a.dtype}{tuple(t.shape)}".encode()
    return _blake2b(head + raw, digest_size=12).hexdigest()


def row_hashes(t: Any) -> list[str]:
    """One hash per row (first dimension), of the row's exact float32 value (``kl.row_keys``)."""
    return sorted(_blake2b(k, digest_size=8).hexdigest() for k in kl.row_keys(t))


def _torch_dir() -> str:
    import torch

    return os.path.dirname(torch.__file__) + os.sep


def is_torch_step(opt: Any) -> bool:
    """Whether ``opt.step`` is torch's own code all the way down: torch's optimizers, and the
    wrappers torch puts around them (profiling hooks, learning-rate schedulers). A subclass's
    own ``step``, or one set on the instance, is the submission's code and may do anything."""
    fn = vars(opt).get("step") or getattr(type(opt), "step", None)
    torch_dir = _torch_dir()
    for _ in range(12):
        code = getattr(fn, "__code__", None)
        if code is None or not code.co_filename.startswith(torch_dir):
            return False
        inner = getattr(fn, "__wrapped__", None)
        if inner is None:
            return True
        fn = inner
    return False


class GradingRecorder(kl.TrainingRecorder):
    def __init__(
        self,
        ns: dict[str, Any],
        send: Any,
        *,
        learn: bool = True,
        record_memory: bool = False,
        record_inputs: bool = False,
    ) -> None:
        super().__init__(ns, record_memory=record_memory)
        self.learn = learn
        self._send = send
        self._rows = record_inputs
        self._tracked: dict[int, Any] = {}  # id -> parameter (held, so its id stays its own)

    def install(self) -> None:
        from torch.optim import optimizer as optim_mod

        super().install()
        self._handles.append(optim_mod.register_optimizer_step_pre_hook(self._on_pre_step))

    def after_backward(self) -> None:
        event: dict[str, Any] = {"loss": kl.float_out(self.losses[-1])}
        if self.record_memory:
            event["rss"] = kl.rss_mb()
            self.rss_mb.append(event["rss"])
        self._send(event)

    def _pre_forward(self, module: Any, args: Any) -> None:
        if self._depth == 0:
            new = {}
            for p in module.parameters():
                if id(p) not in self._tracked:
                    self._tracked[id(p)] = p
                    new[str(id(p))] = digest(p)
            if new:
                self._send({"p0": new})
            if self._rows and args:
                import torch

                if torch.is_grad_enabled() and isinstance(args[0], torch.Tensor):
                    self._send({"rows": row_hashes(args[0])})
        super()._pre_forward(module, args)

    def _digests(self) -> dict[str, str]:
        return {str(k): digest(p) for k, p in self._tracked.items()}

    def _on_pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        self._send({"pre": self._digests()})

    def _on_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        super()._on_step(opt, args, kwargs)
        self._send({"post": self._digests(), "torch": is_torch_step(opt)})
