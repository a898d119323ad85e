"""The grading recorder: a TrainingRecorder whose every observation leaves the submission's
process the moment it is made.

The submission runs in the interpreter the recorder runs in, so whatever the recorder keeps
can be rewritten afterwards (its lists are reachable through torch's hook registries). So each
loss, batch of input rows trained on (and every version of the validation inputs) and parameter
digest goes to the kernel's main process (P) as an event, and P's ledger (``ledger.py``) is the
record; P reads memory itself, from outside. Parameter digests are taken when a parameter first
takes part in a forward pass and around every optimizer step: P can then tell which parameters
training changed, and which changed some other way.

Code in the same interpreter can still call the channel with made-up events (README, "What
grading does not promise"); the held-out credit does not rest on them (``reference.py``).

``learn=False`` (the grader's reference run of the task's solution): losses are recorded but
backward() computes no gradients, so nothing trains.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from whipstudio_nb.sandbox import kernel_lib as kl

from . import wire
from .grad_provenance import Graph, mark_outputs, rewritten_by

__all__ = ["GradingRecorder", "MirrorRecorder", "digest", "is_torch_step", "unique_rows"]

_sha256 = hashlib.sha256  # SHA-NI: about twice blake2b's speed on what a step hashes


_headers: dict[tuple[Any, Any], bytes] = {}


def digest(t: Any) -> str:
    """A tensor's exact value (dtype, shape and bytes) as a short hash."""
    key = (t.dtype, t.shape)
    head = _headers.get(key)
    if head is None:
        head = _headers[key] = f"{t.dtype}{tuple(t.shape)}".encode()
    h = _sha256(head)
    try:  # a CPU tensor in memory order, hashed where it lies (a step hashes dozens)
        h.update(t.detach().numpy())
    except (TypeError, ValueError, RuntimeError, BufferError):
        import torch  # another device, layout or memory order, or a dtype numpy lacks

        a = t.detach().cpu().contiguous().reshape(-1)
        if a.numel():  # h holds the header only: the failure came before any bytes
            h.update(memoryview(a.view(torch.uint8).numpy()))
    return h.hexdigest()[:24]


def grad_state(p: Any) -> str:
    """``"none"``, ``"zero"`` or the digest of ``p.grad`` (what P compares, ``ledger.py``)."""
    return tensor_state(p.grad)


_zero_digests: dict[tuple[Any, tuple[int, ...]], str] = {}


def tensor_state(g: Any) -> str:
    if g is None:
        return "none"
    d = digest(g)
    key = (g.dtype, tuple(g.shape))
    if key not in _zero_digests:  # one hash of zeros per shape, not an any() per gradient
        import torch

        _zero_digests[key] = digest(torch.zeros(key[1], dtype=key[0]))
    return "zero" if d == _zero_digests[key] else d


ROW_DIMS = 64  # wider rows travel as a fixed random projection (distances kept, roughly)
_projections: dict[int, Any] = {}


def unique_rows(t: Any) -> Any:
    """The distinct rows (first dimension, flattened, float32) of a tensor or array; rows wider
    than ROW_DIMS projected onto ROW_DIMS fixed random directions, so that the kernel's main
    process gets a bounded amount and can still tell a copy (or a nearly equal row) from
    another sample."""
    import numpy as np

    a = _rows(t)
    return _projected(np.unique(a, axis=0)) if a.size else np.zeros((0, 0), dtype=np.float32)


def _rows(t: Any) -> Any:
    """A tensor's or array's rows (first dimension), flattened, as a C-ordered float32 array
    (empty for a scalar or an empty one)."""
    import numpy as np

    a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    if a.ndim == 0 or a.shape[0] == 0 or a.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(a.reshape(a.shape[0], -1).astype(np.float32, copy=False))


def _keys_of(a: Any) -> list[bytes]:
    """Each row's bytes (``a`` from ``_rows``): one C loop, not one call per row."""
    import numpy as np

    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel().tolist()


def _projected(a: Any) -> Any:
    import numpy as np

    width = a.shape[1]
    if width > ROW_DIMS:
        if width not in _projections:
            rng = np.random.default_rng(width)
            r = rng.standard_normal((width, ROW_DIMS)) / np.sqrt(ROW_DIMS)
            _projections[width] = r.astype(np.float32)
        a = np.ascontiguousarray(a @ _projections[width])
    return a


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
        val_name: str | None = None,
    ) -> None:
        super().__init__(ns)
        self.learn = learn
        self._send = send
        self._val_name = val_name  # the script's validation inputs: rows and their versions go to P
        self._row_keys: set[bytes] = set()  # rows already sent
        self._vals: list[Any] = []  # every object bound to the name (held: ids stay their own)
        self._tracked: dict[int, Any] = {}  # id -> parameter (held, so its id stays its own)
        self._trains = False  # whether the loss going through backward() now trains the model
        self._reached: list[str] = []  # the tracked parameters that loss reaches

    def install(self) -> None:
        if not self.learn:
            self._install_reference()
            return
        from torch.optim import optimizer as optim_mod

        super().install()
        self._handles.append(optim_mod.register_optimizer_step_pre_hook(self._on_pre_step))
        from torch.nn import utils
        from torch.nn.utils import clip_grad

        for owner in (utils, clip_grad):
            for name in ("clip_grad_norm_", "clip_grad_value_"):
                self._patch(owner, name, self._clipping(getattr(owner, name)))
        import torch

        self._patch(torch.autograd, "grad", self._grads_returned(torch.autograd.grad))

    def _install_reference(self) -> None:
        """The reference run (``learn=False``) only builds the solution's model: backward()
        computes nothing (the run leaves the model as it started) and nothing is watched,
        since nothing of this run is measured."""
        import torch

        def no_backward(*args: Any, **kwargs: Any) -> None:
            return None

        self._patch(torch.autograd, "backward", no_backward)

    def _grads_returned(self, grad: Any) -> Any:
        """torch.autograd.grad, telling P the gradients it returned for the tracked
        parameters: a script that sets ``p.grad`` from them trains as with backward()."""
        recorder = self

        def grads_returned(outputs: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            ins = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            out = grad(outputs, ins, *args, **kwargs)
            if recorder._trains and recorder.learn:
                got = {
                    str(id(p)): tensor_state(g)
                    for p, g in zip(ins, out, strict=False)
                    if id(p) in recorder._tracked
                }
                recorder._send({"g1": got})
            return out

        return grads_returned

    def _clipping(self, clip: Any) -> Any:
        """torch's gradient clipping, telling P each gradient before and after (it scales or
        clamps what backward() computed; P accepts the result only if it started from that)."""
        recorder = self

        def clipping(parameters: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            mine = [(str(id(p)), p) for p in params if id(p) in recorder._tracked]
            before = {k: grad_state(p) for k, p in mine}
            out = clip(params, *args, **kwargs)
            recorder._send({"clip": {k: [before[k], grad_state(p)] for k, p in mine}})
            return out

        return clipping

    def _post_forward(self, module: Any, args: Any, output: Any) -> None:
        # A call from outside any module: the model's forward pass (also when a forward that
        # raised left the depth count behind).
        if self._depth == 1 or any(m is module for m in self.called_modules):
            mark_outputs(module, output)
        super()._post_forward(module, args, output)

    def after_backward(self) -> None:
        if self._trains:  # P adds memory, read from outside
            self._send({"loss": kl.float_out(self.losses[-1])})
            if self.learn:
                g1 = {k: grad_state(self._tracked[int(k)]) for k in self._reached}
                self._send({"g1": g1})

    def _pre_forward(self, module: Any, args: Any) -> None:
        if self._depth == 0:
            new = {}
            for p in module.parameters():
                if id(p) not in self._tracked:
                    self._tracked[id(p)] = p
                    new[str(id(p))] = digest(p)
            if new:
                self._send({"p0": new})
        super()._pre_forward(module, args)

    def before_backward(self, loss: Any) -> None:
        """Whether this loss trains the model (its graph reaches a parameter of a module that
        took part in a forward pass: a constant sent through backward() is no training loss;
        and its gradients are training's own, ``grad_provenance.py``), and the input rows
        it was computed from: the tensors its graph saved (for the first layer's weight
        gradient) that are data, not parameters or activations. Hooks on modules
        can be removed by the script; the graph of a loss that trains cannot avoid holding its
        inputs."""
        graph = Graph(loss, self._tracked, inputs=bool(self._val_name))
        reached = [k for k in graph.leaves if k in self._tracked]
        self._trains = bool(reached)
        self._reached = [str(k) for k in reached]
        if reached:
            why = rewritten_by(graph.custom, [self._tracked[k] for k in reached])
            if why is None and graph.bypasses_forward():
                why = "its loss reaches the parameters other than through the model's forward pass"
            if why is not None:
                self._trains = False  # its gradients are not training's (P names it)
                self._send({"unearned": why})
            else:
                self._send({"g0": {k: grad_state(self._tracked[int(k)]) for k in self._reached}})
        for t in graph.inputs:
            self._send_rows("rows", t)
        if self._val_name:
            self.note_val()

    def note_val(self) -> None:
        """Send the rows of what the validation name holds now, if it is a new object: a
        script that rebinds it after training (or perturbs a copy) still had the rows it
        trained on bound there, or close to them."""
        val = self.ns.get(self._val_name) if self._val_name else None
        if val is None or not hasattr(val, "shape") or any(v is val for v in self._vals):
            return
        self._vals.append(val)
        self._send({"val": wire.encode_array(unique_rows(val))})

    def _send_rows(self, kind: str, t: Any) -> None:
        """The rows of ``t`` not sent before (most steps of a later epoch: none)."""
        rows = _rows(t)
        if not rows.size:
            return
        known, new = self._row_keys, []
        for i, key in enumerate(_keys_of(rows)):
            if key not in known:
                known.add(key)
                new.append(i)
        if new:
            self._send({kind: wire.encode_array(_projected(rows[new]))})

    def _digests(self) -> dict[str, str]:
        return {str(k): digest(p) for k, p in self._tracked.items()}

    def _on_pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        grads = {str(k): grad_state(p) for k, p in self._tracked.items()}
        self._send({"pre": self._digests(), "pre_g": grads})

    def _on_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        super()._on_step(opt, args, kwargs)
        self._send({"post": self._digests(), "torch": is_torch_step(opt)})


class MirrorRecorder(kl.TrainingRecorder):
    """The recorder of a second run whose trained weights are all that is looked at (the
    validation-split check, ``influence.py``): installed like the grading recorder (the script
    meets the same patched torch) but it measures nothing, so the run costs what the script
    costs."""

    def after_backward(self) -> None:
        pass
