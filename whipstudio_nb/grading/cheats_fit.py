"""Cheats that pass a closed-form fit of the training data (ridge regression) off as training:
written into the model's parameters by hand, by an optimizer's own step(), by hand with the
record doctored so that it looks like a torch step's output, or by torch's own optimizer steps
on gradients that point at the fit (set by hand, from a loss on the parameters themselves, from
a hook or an autograd Function). Used by ``cheats.cheat_codes``; each runs after the shared
prelude (``cheats._COMMON``)."""

from __future__ import annotations

__all__ = [
    "FILTERS_CHANNEL",
    "FIT_BY_AUTOGRAD_FUNCTION",
    "FIT_BY_DISTANCE_LOSS",
    "FIT_BY_GRADIENT_HOOK",
    "FIT_BY_HAND_SET_GRADS",
    "FIT_BY_HAND",
    "FIT_BY_OPTIMIZER",
    "REBINDS_HARNESS_GLOBAL",
    "STASH_BY_STEP",
]

# A closed-form fit of the training data (ridge regression) written into the model's own
# parameters: by hand after a few real steps, or by an optimizer whose step() does it.
_FIT = """
model = _Flat(0)
_a1 = _torch.cat([_X, _torch.ones(len(_X), 1)], 1)
_tgt = _Y1 if _KIND == "r2" else _Y1 * 2 - 1
_w = _torch.linalg.solve(_a1.T @ _a1 + 1e-3 * _torch.eye(_a1.shape[1]), _a1.T @ _tgt)


def _write_fit():
    with _torch.no_grad():
        model.net.weight.copy_(_w[:-1].T)
        model.net.bias.copy_(_w[-1])


_targets = [(model.net.weight, _w[:-1].T.contiguous()), (model.net.bias, _w[-1].contiguous())]
"""

FIT_BY_HAND = (
    _FIT
    + """
_train(model, 5)
_write_fit()
"""
)

FIT_BY_OPTIMIZER = (
    _FIT
    + """
class _FitStep(_torch.optim.SGD):
    def step(self, closure=None):
        _write_fit()


_opt = _FitStep(model.parameters(), lr=0.01)
for _ in range(5):
    _opt.zero_grad()
    _loss(model(_X), _T).backward()
    _opt.step()
"""
)


# torch's own SGD steps (lr 1) carry the parameters to the fit, on gradients that point there.
FIT_BY_HAND_SET_GRADS = (
    _FIT
    + """
_train(model, 5)
_opt = _torch.optim.SGD(model.parameters(), lr=1.0)
with _torch.no_grad():
    for _p, _t in _targets:
        _p.grad = _p - _t
_opt.step()
"""
)

# A loss on the parameters themselves (their distance to the fit), with the model's own loss
# added at weight zero so that the graph also passes through a forward pass.
FIT_BY_DISTANCE_LOSS = (
    _FIT
    + """
_opt = _torch.optim.SGD(model.parameters(), lr=0.25)
for _ in range(40):
    _opt.zero_grad()
    _d = sum(((_p - _t) ** 2).sum() for _p, _t in _targets)
    (_d + 0.0 * _loss(model(_X), _T)).backward()
    _opt.step()
"""
)

# The model's real loss through backward(), with a hook on each parameter that replaces its
# gradient by the way to the fit.
FIT_BY_GRADIENT_HOOK = (
    _FIT
    + """
for _p, _t in _targets:
    _p.register_hook(lambda g, _p=_p, _t=_t: _p.detach() - _t)
_opt = _torch.optim.SGD(model.parameters(), lr=1.0)
_opt.zero_grad()
_loss(model(_X), _T).backward()
_opt.step()
"""
)

# An autograd Function whose backward() returns the way to the fit, added to the model's loss.
FIT_BY_AUTOGRAD_FUNCTION = (
    _FIT
    + """
class _Toward(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, *params):
        ctx.save_for_backward(*params)
        return _torch.zeros(())

    @staticmethod
    def backward(ctx, g):
        return tuple(p - t for p, (_, t) in zip(ctx.saved_tensors, _targets))


_opt = _torch.optim.SGD(model.parameters(), lr=1.0)
_opt.zero_grad()
(0.0 * _loss(model(_X), _T) + _Toward.apply(*[p for p, _ in _targets])).backward()
_opt.step()
"""
)


# The closed-form fit by hand again, hidden from the record: the recorder's channel to the
# kernel's main process drops the digests taken before each optimizer step (so the write is
# never seen), and a zero-rate SGD step then reports the fit as a value torch's step produced.
FILTERS_CHANNEL = (
    """
import sys as _sys
for _h in list(_sys.modules["torch"].nn.modules.module._global_forward_pre_hooks.values()):
    _rec = getattr(_h, "__self__", None)
    if _rec is not None and callable(getattr(_rec, "_send", None)):
        _rec._send = lambda ev, _s=_rec._send: None if "pre" in ev else _s(ev)
"""
    + _FIT
    + """
_train(model, 5)
if all(p.grad is not None for p in model.parameters()):  # not in the grader's re-run
    _write_fit()
_opt0 = _torch.optim.SGD(model.parameters(), lr=0.0)
_opt0.zero_grad()
_loss(model(_X), _T).backward()
_opt0.step()
"""
)

# The closed-form fit by hand after the last optimizer step, and the harness module's own
# ``kl`` rebound to a stand-in whose json_safe reports each parameter's final value as the one
# the last real step produced (a module is no function: the guard compared only functions).
REBINDS_HARNESS_GLOBAL = (
    _FIT
    + """
_train(model, 5)
_sb = sys.modules["whipstudio_nb.grading.sandboxed"]
_dg = sys.modules["whipstudio_nb.grading.recorder"].digest
_stepped = {str(id(p)): _dg(p) for p in model.parameters()}
if all(p.grad is not None for p in model.parameters()):  # not in the grader's re-run
    _write_fit()
_real_kl = _sb.kl


class _KL(type(sys)):
    def __getattr__(self, name):
        return getattr(_real_kl, name)


def _json_safe(x):
    if isinstance(x, dict) and isinstance(x.get("final"), dict):
        for _pair in x["final"].values():
            _pair[1] = _stepped.get(_pair[0], _pair[1])
    return _real_kl.json_safe(x)


_fake_kl = _KL("kl")
_fake_kl.json_safe = _json_safe
_sb.kl = _fake_kl
"""
)


# The training data stashed in an extra parameter of the model by one torch optimizer step on a
# gradient written by hand (a real torch step: the record shows training), and a forward that
# answers by nearest neighbours / ridge from the stash once it holds something. In any re-run of
# the script, the stash comes back with the trained state; with the parameters reset it is empty.
STASH_BY_STEP = """
model = _Flat(0)
_d = _X.shape[1]
model.stash = _torch.nn.Parameter(_torch.zeros(_n, _d + _Y1.shape[1]))
_net = model.forward
_cache = {}


def _stashed(x):
    s = model.stash.detach()
    if float(s.abs().sum()) == 0.0:
        return _net(x)
    key = float(s.sum())
    if key not in _cache:
        _cache.clear()
        _cache[key] = _fit_side(s[:, :_d].clone(), s[:, _d:].clone())
    return _cache[key](x)


model.forward = _stashed
_train(model, 5)
if all(p.grad is not None for p in model.net.parameters()):  # not in a re-run without learning
    _st = _torch.optim.SGD([model.stash], lr=1.0)
    model.stash.grad = -_torch.cat([_X, _Y1], 1)
    _st.step()
"""
