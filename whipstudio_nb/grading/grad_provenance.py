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

__all__ = ["FORWARD_MARK", "Graph", "bypasses_forward", "mark_outputs", "rewritten_by"]

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


_NONE: frozenset[int] = frozenset()  # the region before the first forward output


class Graph:
    """One walk over a loss's autograd graph: the leaf tensors it sends gradients to
    (``leaves``, ids), the autograd Functions in it that are not torch's own (``custom``), if
    asked the saved float tensors of 2+ dimensions that need no gradient (``inputs``: the data
    the loss was computed from, and constants), and what ``bypasses_forward`` needs.

    Each node is looked at within a region: the parameters owned by the module whose forward
    output was crossed last on the way from the loss (none before the first)."""

    def __init__(self, loss: Any, tracked: dict[int, Any], inputs: bool = False) -> None:
        self.leaves: set[int] = set()
        self.inputs: list[Any] = []
        self.custom: list[str] = []
        self._tracked = tracked
        self._nodes: dict[tuple[int, int], tuple[Any, frozenset[int]]] = {}
        self._below: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._outside = False  # a tracked parameter reached in a region that does not own it
        self._too_big = False
        self._walk(getattr(loss, "grad_fn", None), inputs)

    def _walk(self, root: Any, inputs: bool) -> None:
        import torch
        from torch.autograd.function import BackwardCFunction

        nodes, below, tracked = self._nodes, self._below, self._tracked
        marks: dict[int, frozenset[int] | None] = {}  # id(node) -> the region it starts

        def mark(node: Any) -> frozenset[int] | None:
            key = id(node)
            if key not in marks:
                owned = (getattr(node, "metadata", None) or {}).get(FORWARD_MARK)
                marks[key] = owned if isinstance(owned, frozenset) else None
            return marks[key]

        variables: dict[int, int | None] = {}  # id(node) -> id of its leaf tensor, if one
        stack: list[tuple[Any, frozenset[int]]] = [(root, _NONE)]
        while stack:
            fn, region = stack.pop()
            if fn is None:
                continue
            fid = id(fn)
            if fid not in variables:  # first visit of this node: what it is
                variable = getattr(fn, "variable", None)  # AccumulateGrad: a leaf
                variables[fid] = None if variable is None else id(variable)
                if variable is not None:
                    self.leaves.add(id(variable))
                if isinstance(fn, BackwardCFunction):
                    forward_cls = getattr(fn, "_forward_cls", None)
                    if not getattr(forward_cls, "__module__", "").startswith("torch."):
                        self.custom.append(getattr(forward_cls, "__qualname__", type(fn).__name__))
                if inputs:
                    self.inputs += _data_saved(fn, torch.Tensor)
            owned = mark(fn)
            if owned is not None:
                region = owned  # the module's forward pass from here
            key = (fid, id(region))
            if key in nodes:
                continue
            if len(nodes) >= MAX_NODES:
                self._too_big = True
                return
            nodes[key] = (fn, region)
            vid = variables[fid]
            if vid is not None and vid in tracked and vid not in region:
                self._outside = True
            kids = [n for n, _ in getattr(fn, "next_functions", ()) if n is not None]
            edges = below[key] = []
            for kid in kids:
                if mark(kid) is None:  # a forward output (a boundary) passes nothing up
                    edges.append((id(kid), id(region)))
                stack.append((kid, region))

    def bypasses_forward(self) -> bool:
        """Whether part of the loss's gradient reaches a tracked parameter other than through
        the forward pass of a module that owns it, by way of an operation that saved a tensor
        other than a parameter or a scalar (a distance to weights fitted elsewhere, a made-up
        direction, wrapped in a call of some other module or not). A graph too large to walk
        counts as one that does."""
        if self._too_big:
            return True
        if not self._outside:  # every tracked leaf is reached inside its own forward pass
            return False
        nodes, below, tracked = self._nodes, self._below, self._tracked
        # Which nodes lead, within their region, to a tracked parameter the region does not
        # own (children before parents: a post-order walk).
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


def bypasses_forward(loss: Any, tracked: dict[int, Any]) -> bool:
    """``Graph.bypasses_forward`` of ``loss``'s graph."""
    return Graph(loss, tracked).bypasses_forward()


_saved_names: dict[type, tuple[str, ...]] = {}


def _saved(fn: Any) -> list[Any]:
    """What ``fn`` saved for backward (freed values, or ones the graph cannot give back, left
    out)."""
    kind = type(fn)
    if kind not in _saved_names:
        _saved_names[kind] = tuple(a for a in dir(fn) if a.startswith("_saved_"))
    out = []
    for name in _saved_names[kind]:
        try:
            out.append(getattr(fn, name))
        except Exception:
            continue
    return out


def _data_saved(fn: Any, tensor: Any) -> list[Any]:
    """The tensors ``fn`` saved for backward that are data: float, 2+ dimensions, no
    gradient."""
    return [
        t
        for t in _saved(fn)
        if isinstance(t, tensor) and not t.requires_grad and t.dim() >= 2 and t.is_floating_point()
    ]


def _saves_data(fn: Any, tracked: dict[int, Any]) -> bool:
    import torch

    for value in _saved(fn):
        for t in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(t, torch.Tensor) and t.numel() > 1 and id(t) not in tracked:
                return True
    return False
