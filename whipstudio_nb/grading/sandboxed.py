"""The submission's side of the grading harness, in the processes forked from the kernel.

A runs the submission. When it returns, A's main thread forks B and A exits: B is a snapshot of
the interpreter with the trained model in it and exactly one thread. B checks for tampering,
measures the record, sends it to the kernel's main process (P), then waits for held-out inputs.

Everything B relies on was captured when this module was imported, in the kernel's warm-up,
before any submitted code ran anywhere.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, NamedTuple

from whipstudio_nb.sandbox import kernel_lib as kl

from . import wire
from .memory_watch import descendant_pids
from .recorder import GradingRecorder, MirrorRecorder, digest, unique_rows
from .tamper_guard import TamperGuard

__all__ = ["A_FORKED_B", "run_then_fork"]

A_FORKED_B = 83  # A's exit status once B exists
EVAL_WAIT_S = 3600.0  # B waits for P's command; P kills it long before
A_EXIT_WAIT_S = 5.0  # B waits this long at most for A, which exits right after forking it
STOP_PASSES = 50  # without a PID namespace: passes over the processes below P


class _Orig(NamedTuple):
    """What B calls after the submission ran, captured at import (a tuple: it cannot be
    rebound item by item)."""

    fork: Any
    exit: Any
    getpid: Any
    getppid: Any
    kill: Any
    descendant_pids: Any
    setpgid: Any
    send: Any
    recv: Any
    run_user_code: Any
    changes: Any
    param_changes: Any
    uninstall: Any
    flush: Any
    digest: Any


_ORIG = _Orig(
    fork=os.fork,
    exit=os._exit,
    getpid=os.getpid,
    getppid=os.getppid,
    kill=os.kill,
    descendant_pids=descendant_pids,
    setpgid=os.setpgid,
    send=wire.send,
    recv=wire.recv,
    run_user_code=kl.run_user_code,
    changes=TamperGuard.changes,
    param_changes=kl.TrainingRecorder.param_changes,
    uninstall=kl.TrainingRecorder.uninstall,
    flush=kl.flush_streams,
    digest=digest,
)


def run_then_fork(args: dict[str, Any], rec_w: int, cmd_r: int, _o: _Orig = _ORIG) -> None:
    p_pid = _o.getppid()  # P, read before any submitted code runs
    ns = kl.fresh_namespace()
    send = _o.send
    rec = (
        MirrorRecorder(ns)
        if args.get("mirror")
        else GradingRecorder(
            ns,
            lambda event: send(rec_w, {"ev": event}),
            learn=args.get("learn", True) is not False,
            val_name=args.get("val_inputs") or None,
        )
    )
    if isinstance(args.get("rng_seed"), int):
        _seed_all(args["rng_seed"])  # the graded run and the reference run start the same way
    rec.install()
    guard = TamperGuard(rec)  # after install: the recorder's own patches are the baseline
    me = _o.getpid()
    exit_code, err = _o.run_user_code(args["code"], ns, "<submission>")
    if _o.getpid() != me:  # a process the submission forked returned into the harness
        _o.exit(0)
    _o.flush()
    _stop_the_others(p_pid, _o)
    if _o.fork() != 0:
        _o.exit(A_FORKED_B)  # every thread the submission started ends with A
    # B: the only thread of this process, in a process group of its own (P kills A's).
    _o.setpgid(0, 0)
    # A's threads ran until A exited: what they forked meanwhile stops now.
    gone_by = time.monotonic() + A_EXIT_WAIT_S
    while _o.getppid() == me and time.monotonic() < gone_by:  # me: A's pid
        time.sleep(0.001)
    _stop_the_others(p_pid, _o)
    model = ns.get(args.get("model", "model"))
    if _is_module(model):
        _privatize(model)  # memory shared with the submission's other processes stops here
    # B says nothing until P, which found it as its newest child when A exited, has killed
    # everything else the submission started and says "go".
    if _o.recv(cmd_r, time.monotonic() + EVAL_WAIT_S) is None:
        _o.exit(0)
    try:
        tampered = _o.changes(guard)
        _o.uninstall(rec)
        record = _record(args, ns, rec, exit_code, err, tampered, _o)
    except BaseException as exc:
        record = {"internal_error": f"measuring the run failed: {kl.format_exception_only(exc)}"}
    _o.send(rec_w, {"record": kl.json_safe(record)})
    cmd = _o.recv(cmd_r, time.monotonic() + EVAL_WAIT_S)
    if cmd is not None:
        try:
            reply = _evaluate(cmd, ns, rec)
        except BaseException as exc:
            reply = {"error": f"evaluation failed: {kl.format_exception_only(exc)}"}
        _o.send(rec_w, reply)
    _o.flush()
    _o.exit(0)


def _stop_the_others(p_pid: int, _o: _Orig) -> None:
    """Stop (SIGSTOP) every process the submission started, wherever it went (new sessions,
    double forks): the script's end is the run's end, and nothing may act between it and P's
    sweep (train a shared model further, write a file the model reads, unblock its forward).
    Under strict isolation P is PID 1 of the kernel's own PID namespace, and kill(-1) reaches
    every process in it but P and the caller, atomically with respect to fork."""
    if p_pid == 1:
        try:
            _o.kill(-1, signal.SIGSTOP)
        except OSError:
            pass
        return
    # No PID namespace of our own: the processes below P, until a pass finds no new one
    # (a stopped process forks no more).
    me, stopped = _o.getpid(), set()
    for _ in range(STOP_PASSES):
        fresh = [pid for pid in _o.descendant_pids(p_pid) if pid != me and pid not in stopped]
        if not fresh:
            return
        for pid in fresh:
            try:
                _o.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
            stopped.add(pid)


def _seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _record(
    args: dict[str, Any],
    ns: dict[str, Any],
    rec: Any,
    exit_code: int,
    err: str | None,
    tampered: list[str],
    _o: _Orig,
) -> dict[str, Any]:
    """What B measures. Losses, steps, memory and the rows trained on are P's (the ledger);
    B adds what only the end state shows: the model, each parameter's final digest, the
    starting values the recorder kept (P checks them against the digests it was sent), the
    trained state for the reference model, and the validation rows."""
    import torch

    model = ns.get(args.get("model", "model"))
    found = isinstance(model, torch.nn.Module)
    out: dict[str, Any] = {
        "exit_code": exit_code,
        "error": err,
        "tampered": tampered,
        "model_found": found,
        "model_type": kl.type_name(model) if model is not None else None,
        "param_changes": {},
        "trainable_params": [],
        "frozen_params": [],
    }
    if isinstance(model, torch.nn.Module):
        changes = _o.param_changes(rec, model)
        out["param_changes"] = {k: kl.float_out(v) for k, v in changes.items()}
        named = list(model.named_parameters())
        out["trainable_params"] = [n for n, p in named if p.requires_grad]
        out["frozen_params"] = [n for n, p in named if not p.requires_grad]
        out["final"] = {n: [str(id(p)), _o.digest(p)] for n, p in named}
        out["initial_used"] = {
            str(id(p)): _o.digest(rec.initial_params[id(p)])
            for _, p in named
            if id(p) in rec.initial_params
        }
        out["state"] = _state(model)
    val_name = args.get("val_inputs")
    if val_name:
        val = ns.get(val_name)
        if val is None or not hasattr(val, "shape"):
            out["leakage"] = {"error": f"no validation inputs named '{val_name}' after the run"}
        else:
            out["val_rows"] = wire.encode_array(unique_rows(val))
    return out


def _state(model: Any) -> dict[str, Any]:
    """The model's parameters, and the buffers of its normalization layers (running statistics
    that training's forward passes computed), as arrays for the reference model."""
    return {
        "params": {n: _array(p) for n, p in model.named_parameters()},
        "buffers": {n: _array(b) for n, b in _norm_buffers(model)},
        "modes": [[_kind(m), bool(m.training)] for m in model.modules()],
    }


def _kind(module: Any) -> str:
    """The torch.nn class a module is (or derives from): how train/eval modes are matched
    between the submission's model and the reference model."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules."):
            return cls.__name__
    return "Module"


def _set_modes(model: Any, modes: list[Any]) -> list[tuple[Any, bool]]:
    """Give the reference model's modules the train/eval modes the submission left its own
    in: the k-th module of each torch.nn kind gets the mode of the k-th of that kind there (a
    kind the submission's model lacks keeps the reference model's). Returns what to restore."""
    theirs: dict[str, list[bool]] = {}
    for kind, training in modes:
        theirs.setdefault(str(kind), []).append(bool(training))
    seen: dict[str, int] = {}
    before = []
    for m in model.modules():
        kind = _kind(m)
        k = seen.get(kind, 0)
        seen[kind] = k + 1
        if k < len(theirs.get(kind, [])):
            before.append((m, m.training))
            m.training = theirs[kind][k]
    return before


def _norm_buffers(model: Any) -> list[tuple[str, Any]]:
    """(name, tensor) of the floating-point buffers of the model's normalization layers."""
    from torch.nn.modules.batchnorm import _NormBase

    return [
        (f"{prefix}.{name}" if prefix else name, b)
        for prefix, module in model.named_modules()
        if isinstance(module, _NormBase)
        for name, b in module.named_buffers(recurse=False)
        if b is not None and b.dtype.is_floating_point
    ]


def _array(t: Any) -> dict[str, Any]:
    return wire.encode_array(t.detach().cpu().float().numpy())


def _load_state(model: Any, state: dict[str, Any]) -> None:
    """Put the graded run's trained weights into this run's model (the task's reference model).
    They go where the same name is; when the names differ (layers renumbered), by order, if every
    parameter's shape matches in order. Anything else does not fit: ValueError says what."""
    import torch

    layout = state.get("layout") or {}
    params = _placed(
        "parameter", layout.get("params") or [], list(model.named_parameters()), state["params"]
    )
    buffers = _placed(
        "normalization buffer",
        layout.get("buffers") or [],
        _norm_buffers(model),
        state.get("buffers"),
    )
    with torch.no_grad():
        for target, enc in params + buffers:
            target.copy_(torch.from_numpy(wire.decode_array(enc)).to(target.dtype))


def _placed(
    what: str, theirs: list[Any], ours: list[tuple[str, Any]], values: dict[str, Any] | None
) -> list[tuple[Any, dict[str, Any]]]:
    """(tensor of this model, value to put there) for each of ``values`` (name -> array), whose
    model had ``theirs`` ([name, shape] in order)."""
    values = values or {}
    by_name = {n: t for n, t in ours}
    shape_of = {str(n): tuple(shape) for n, shape in theirs}
    if all(n in by_name and tuple(by_name[n].shape) == shape_of.get(n) for n in values):
        return [(by_name[n], v) for n, v in values.items()]
    if [tuple(s) for _, s in theirs] == [tuple(t.shape) for _, t in ours]:
        at = {str(n): ours[i][1] for i, (n, _) in enumerate(theirs)}
        return [(at[n], v) for n, v in values.items() if n in at]
    odd = next(
        (n for n in values if n not in by_name or tuple(by_name[n].shape) != shape_of.get(n)),
        "",
    )
    shape = shape_of.get(odd, ())
    raise ValueError(
        f"the model's {what} '{odd}' of shape {tuple(shape)} has no counterpart in the task's "
        f"reference model (matched by name, or by order and shape). The held-out check runs the "
        f"task's reference model with your trained weights, so a fix must keep the model's "
        f"layers and their sizes as the task's own fix does"
    )


def _run_checks(check_code: str, ns: dict[str, Any], model: Any, modes: Any) -> dict[str, Any]:
    """A task's own checks, ``check(ns, record) -> dict`` defined by ``check_code``, run in the
    reference kernel on the reference model holding the trained weights, in the train/eval
    modes the submission left its model in (``record`` is empty: nothing the submission's
    process says is checked here)."""
    scope: dict[str, Any] = {}
    before = _set_modes(model, modes if isinstance(modes, list) else [])
    try:
        exec(compile(check_code, "<task checks>", "exec"), scope)
        return dict(kl.json_safe(scope["check"](ns, {})))
    except BaseException as exc:
        return {"error": f"task check failed: {kl.format_exception_only(exc)}"}
    finally:
        for m, training in before:
            m.training = training


def _is_module(value: Any) -> bool:
    import torch

    return isinstance(value, torch.nn.Module)


def _privatize(model: Any) -> None:
    """Give B its own copy of every parameter and buffer: memory shared with a process the
    submission started (``share_memory()``) cannot change what is evaluated."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            for p in list(m._parameters.values()):
                if p is not None:
                    p.data = p.data.clone()
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = b.clone()


def _call(target: Any, inputs: Any) -> Any:
    import numpy as np
    import torch

    with torch.no_grad():
        out = target(inputs)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def _try_call(target: Any, inputs: Any) -> Any:
    try:
        return _call(target, inputs.clone())
    except BaseException:
        return None


def _evaluate(cmd: dict[str, Any], ns: dict[str, Any], rec: Any) -> dict[str, Any]:
    import torch

    model_name = cmd.get("model") or "model"
    fn_name = cmd.get("predict")
    model = ns.get(model_name)
    target = ns.get(fn_name) if fn_name else model
    if target is None or not callable(target):
        return {"error": f"'{fn_name or model_name}' is not defined or not callable"}
    train = cmd.get("train_inputs")
    if train is not None:
        train = torch.from_numpy(wire.decode_array(train))
    train_init = None
    if cmd.get("load_state") is not None:
        if not isinstance(model, torch.nn.Module):
            return {"error": f"the reference run left no nn.Module named '{model_name}'"}
        if train is not None:  # the reference model as it starts: the training loss's start
            train_init = _try_call(target, train)
        start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        try:
            _load_state(model, cmd["load_state"])
        except ValueError as exc:
            return {"error": str(exc)}
        now = dict(model.named_parameters())
        moved = [n for n, p in start.items() if not torch.equal(p, now[n].detach())]
    inputs = torch.from_numpy(wire.decode_array(cmd["inputs"]))
    try:
        outputs = _call(target, inputs.clone())
    except BaseException as exc:
        return {
            "error": f"calling the model on held-out inputs failed: {kl.format_exception_only(exc)}"
        }
    reply: dict[str, Any] = {"outputs": wire.encode_array(outputs)}
    if cmd.get("load_state") is not None:
        reply["reference_trained"] = {"trainable": sorted(start), "moved": moved}
        if cmd.get("check_code"):
            reply["checks"] = _run_checks(
                cmd["check_code"], ns, model, cmd["load_state"].get("modes")
            )
        # The reference model: only its outputs with the trained weights count, and how far
        # those weights brought the training loss down from where the model starts.
        trained = _try_call(target, train) if train is not None and train_init is not None else None
        if train_init is not None and trained is not None:
            reply["train_outputs_init"] = wire.encode_array(train_init)
            reply["train_outputs"] = wire.encode_array(trained)
        return reply
    # The same call with every parameter training changed put back where it started.
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            for p in model.parameters():
                before = rec.initial_params.get(id(p))
                if before is not None and before.shape == p.shape:
                    p.copy_(before)
        try:
            reply["outputs_init"] = wire.encode_array(_call(target, inputs.clone()))
        except BaseException:
            pass  # the untrained model cannot even run: nothing to attribute to it
    return reply
