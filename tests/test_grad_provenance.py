"""Which optimizer steps count as training: the recorder's graph checks on real autograd graphs,
and the kernel main process's ledger on the events they send (no kernels here)."""

from __future__ import annotations

import pytest
import torch

from whipstudio_nb.grading.grad_provenance import bypasses_forward, mark_outputs
from whipstudio_nb.grading.ledger import Ledger

UNEARNED = "an optimizer step changed it with gradients no training loss computed"


def _ledger_after(*events: dict) -> Ledger:
    ledger = Ledger()
    ledger.add({"p0": {"w": "w0"}})
    for ev in events:
        ledger.add(ev)
    return ledger


def _step(grad: str, new: str = "w1", before: str = "w0") -> list[dict]:
    return [{"pre": {"w": before}, "pre_g": {"w": grad}}, {"post": {"w": new}, "torch": True}]


def test_a_step_on_what_backward_left_trains() -> None:
    ledger = _ledger_after({"g0": {"w": "none"}}, {"g1": {"w": "g"}}, *_step("g"))
    assert ledger.carry("w", "w1")[0] == "trained"


def test_a_step_on_a_gradient_set_by_hand_does_not() -> None:
    ledger = _ledger_after({"g0": {"w": "none"}}, {"g1": {"w": "g"}}, *_step("other"))
    assert ledger.carry("w", "w1") == ("none", UNEARNED)
    ledger = _ledger_after(*_step("other"))  # no backward() at all
    assert ledger.carry("w", "w1") == ("none", UNEARNED)


def test_clipping_what_backward_left_keeps_it_training_and_nothing_else() -> None:
    ok = _ledger_after({"g0": {"w": "none"}}, {"g1": {"w": "g"}}, {"clip": {"w": ["g", "c"]}})
    for ev in _step("c"):
        ok.add(ev)
    assert ok.carry("w", "w1")[0] == "trained"
    # clipping a gradient set by hand does not make it training's
    bad = _ledger_after({"g0": {"w": "none"}}, {"g1": {"w": "g"}}, {"clip": {"w": ["x", "c"]}})
    for ev in _step("c"):
        bad.add(ev)
    assert bad.carry("w", "w1") == ("none", UNEARNED)


def test_accumulating_onto_a_gradient_set_by_hand_does_not_launder_it() -> None:
    ledger = _ledger_after(
        {"g0": {"w": "none"}},
        {"g1": {"w": "g"}},
        {"g0": {"w": "hand"}},  # p.grad was rewritten between two backward() calls
        {"g1": {"w": "hand+g"}},
        *_step("hand+g"),
    )
    assert ledger.carry("w", "w1") == ("none", UNEARNED)
    # two backward() calls on what the first one left: accumulation is training
    ledger = _ledger_after(
        {"g0": {"w": "none"}}, {"g1": {"w": "g"}}, {"g0": {"w": "g"}}, {"g1": {"w": "2g"}}
    )
    for ev in _step("2g"):
        ledger.add(ev)
    assert ledger.carry("w", "w1")[0] == "trained"


def test_zero_gradients_move_nothing_of_their_own() -> None:
    # momentum from earlier training steps with the gradient zeroed is still training
    ledger = _ledger_after({"g0": {"w": "none"}}, {"g1": {"w": "g"}}, *_step("g"))
    for ev in _step("zero", new="w2", before="w1"):
        ledger.add(ev)
    assert ledger.carry("w", "w2")[0] == "trained"


@pytest.fixture
def linear() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    mark_outputs(model, out)  # what the recorder's hook does for a call from outside any module
    return out


def test_losses_through_the_forward_pass_are_training(linear) -> None:
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    tracked = {id(p): p for p in linear.parameters()}
    ce = torch.nn.functional.cross_entropy(_forward(linear, x), y)
    assert not bypasses_forward(ce, tracked)
    l2 = sum(p.pow(2).sum() for p in linear.parameters())
    assert not bypasses_forward(ce + 1e-4 * l2, tracked)  # a penalty on the weights alone
    # one model's output through another (a head on a backbone): each owns its parameters
    head = torch.nn.Linear(2, 2)
    tracked.update({id(p): p for p in head.parameters()})
    out = _forward(head, torch.relu(_forward(linear, x)))
    assert not bypasses_forward(torch.nn.functional.cross_entropy(out, y), tracked)


def test_losses_on_the_parameters_that_carry_other_data_are_not(linear) -> None:
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    tracked = {id(p): p for p in linear.parameters()}
    target = torch.randn(2, 3)
    out = _forward(linear, x)
    for loss in (
        ((linear.weight - target) ** 2).sum(),
        (linear.weight * target).sum(),
        torch.nn.functional.mse_loss(linear.weight, target),
        ((linear.weight - target) ** 2).sum() + 0.0 * torch.nn.functional.cross_entropy(out, y),
    ):
        assert bypasses_forward(loss, tracked)
    # wrapped in a call of another module: its forward pass is not the one that owns them
    wrap = torch.nn.Linear(3, 3)
    tracked.update({id(p): p for p in wrap.parameters()})
    assert bypasses_forward(_forward(wrap, (linear.weight - target) ** 2).sum(), tracked)
    assert bypasses_forward(
        _forward(torch.nn.Identity(), (linear.weight - target) ** 2).sum(), tracked
    )
    # no forward pass at all: a functional call on the weights and the data
    logits = x @ linear.weight.T + linear.bias
    assert bypasses_forward(torch.nn.functional.cross_entropy(logits, y), tracked)
