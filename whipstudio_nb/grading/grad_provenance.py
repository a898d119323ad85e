"""Whether an optimizer step's gradients are ones training computed.

A loss trains the model when backward() carries it through the model's forward pass on data.
Three ways to hand an optimizer a precomputed answer (weights fitted by another estimator) look
like training to a step-by-step record, and each is named here instead:

- gradients set by hand (``p.grad = w - w_fit``): P compares each step's gradients with what the
  last training backward() left (``Ledger``, events ``g0``/``g1``/``pre_g``);
- a loss on the parameters themselves that carries data from elsewhere (``((w - w_fit) ** 2)``,
  ``(w * G).sum()``), whatever else is added to it: ``bypasses_forward``;
- a hook on a parameter, or an autograd Function of the submission's, that rewrites a gradient:
  ``rewritten_by``.

The outputs of a call of a module from outside any module (the model's forward pass) are marked
in their autograd node's ``metadata`` with the module's parameters. Past that mark the gradient
of those parameters is backpropagation through the model; a parameter reached any other way
must be reached through operations that saved nothing but parameters and scalars (a penalty
like ``sum(p ** 2)`` is fine).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORWARD_MARK", "bypasses_forward", "mark_outputs", "rewritten_by"]

FORWARD_MARK = "whip_forward_output"
MAX_NODES = 20000  # a graph larger than this (node, region pairs): not training


def _tensors(output: Any) -> list[Any]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for t in output if isinstance(t, torch.Tensor)]
    return []


def mark_outputs(module: Any, output: Any) -> None:
    """Mark the autograd nodes of a module call's outputs (a tensor, or a tuple, list or dict
    of them) with the ids of the module's parameters: backpropagation from there is the
    module's own forward pass, for those parameters."""
    owned = frozenset(id(p) for p in module.parameters())
    if not owned:
        return  # a module without parameters (an Identity) carries no forward pass of a model
    for t in _tensors(output):
        fn = t.grad_fn
        if fn is not None:
            try:
                fn.metadata[FORWARD_MARK] = owned
            except (AttributeError, TypeError):
                pass


def rewritten_by(custom: list[str], params: list[Any]) -> str | None:
    """Why a loss's gradients are not training's own: an autograd Function the submission
    defined in its graph, or a gradient hook on a parameter it reaches."""
    if custom:
        return f"an autograd Function of the submission's ({custom[0]}) computes its gradients"
    for p in params:
        if getattr(p, "_backward_hooks", None) or getattr(p, "_post_accumulate_grad_hooks", None):
            return "a hook on a parameter rewrites its gradient"
    return None


def bypasses_forward(loss: Any, tracked: dict[int, Any]) -> bool:
    """Whether part of ``loss``'s gradient reaches a tracked parameter other than through the
    forward pass of a module that owns it, by way of an operation that saved a tensor other
    than a parameter or a scalar (a distance to weights fitted elsewhere, a made-up direction,
    wrapped in a call of some other module or not).

    Each node is looked at within a region: the parameters owned by the module whose forward
    output was crossed last on the way from the loss (none before the first)."""
    none: frozenset[int] = frozenset()
    nodes: dict[tuple[int, int], tuple[Any, frozenset[int]]] = {}
    below: dict[tuple[int, int], list[tuple[int, int]]] = {}
    stack: list[tuple[Any, frozenset[int]]] = [(getattr(loss, "grad_fn", None), none)]
    while stack:
        fn, region = stack.pop()
        if fn is None:
            continue
        owned = (getattr(fn, "metadata", None) or {}).get(FORWARD_MARK)
        if isinstance(owned, frozenset):
            region = owned  # the module's forward pass from here
        key = (id(fn), id(region))
        if key in nodes:
            continue
        if len(nodes) >= MAX_NODES:
            return True
        nodes[key] = (fn, region)
        kids = [n for n, _ in getattr(fn, "next_functions", ()) if n is not None]
        below[key] = []
        for kid in kids:
            kid_owned = (getattr(kid, "metadata", None) or {}).get(FORWARD_MARK)
            if not isinstance(kid_owned, frozenset):  # a region's boundary passes nothing up
                below[key].append((id(kid), id(region)))
            stack.append((kid, region))
    # Which nodes lead, within their region, to a tracked parameter the region does not own
    # (children before parents: a post-order walk).
    reaches: dict[tuple[int, int], bool] = {}
    for start in nodes:
        todo = [(start, False)]
        while todo:
            key, ready = todo.pop()
            if ready:
                fn, region = nodes[key]
                v = getattr(fn, "variable", None)
                own = v is not None and id(v) in tracked and id(v) not in region
                reaches[key] = own or any(reaches.get(k, False) for k in below[key])
            elif key not in reaches:
                reaches[key] = False  # on the way (a DAG: no cycle comes back here)
                todo.append((key, True))
                todo.extend((k, False) for k in below[key] if k not in reaches)
    return any(reaches[key] and _saves_data(fn, tracked) for key, (fn, _) in nodes.items())


_saved_names: dict[type, tuple[str, ...]] = {}


def _saves_data(fn: Any, tracked: dict[int, Any]) -> bool:
    import torch

    kind = type(fn)
    if kind not in _saved_names:
        _saved_names[kind] = tuple(a for a in dir(fn) if a.startswith("_saved_"))
    for name in _saved_names[kind]:
        try:
            value = getattr(fn, name)
        except Exception:
            continue
        for t in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(t, torch.Tensor) and t.numel() > 1 and id(t) not in tracked:
                return True
    return False
