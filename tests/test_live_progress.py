"""Partial results while a call runs: the kernel streams the losses of a probe or a grading run,
WhipEnv passes them to `on_progress`, and the notebook draws a live loss curve from them."""

from __future__ import annotations

from whipstudio_nb.grading import grade_code

SLOW_TRAINING = (
    "import torch\n"
    "torch.manual_seed(0)\n"
    "model = torch.nn.Linear(3, 1)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.05)\n"
    "x, y = torch.randn(64, 3), torch.randn(64, 1)\n"
    "for step in range(12):\n"
    "    s = 0\n"
    "    for i in range(2_000_000):\n"  # about 0.1 s of pure Python per step
    "        s += i\n"
    "    opt.zero_grad()\n"
    "    loss = ((model(x) - y) ** 2).mean()\n"
    "    loss.backward()\n"
    "    opt.step()\n"
)


def collect():
    got: list[dict] = []
    return got, got.append


def test_probe_streams_its_losses(env):
    got, on_progress = collect()
    res = env.step(
        {"action_type": "run_training_probe", "code": SLOW_TRAINING, "steps": 12},
        on_progress=on_progress,
    )
    final = res.observation.losses
    assert len(final) == 12
    assert len(got) >= 2, "partial results must arrive while the probe runs, not only at the end"
    streamed: list[float] = []
    for msg in got:
        streamed[msg["offset"] :] = msg["losses"]
    assert streamed == final[: len(streamed)]


def test_grading_streams_its_losses(sandbox, task1):
    got, on_progress = collect()
    res = grade_code(task1, task1.solution_code, sandbox, on_progress)
    assert res.score >= 0.9
    assert got and got[0]["offset"] == 0
    assert abs(got[0]["losses"][0] - res.details["losses"][0]) < 1e-5


def test_live_loss_curve_redraws_one_display():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from whipstudio_nb.notebook.widgets import LiveLossCurve

    InteractiveShell.instance()
    live = LiveLossCurve("Probe", interval_s=0.0, enabled=True)
    with capture_output() as cap, live as on_progress:
        on_progress({"losses": [1.0, 0.9], "offset": 0})
        on_progress({"losses": [0.8, float("nan")], "offset": 2})
    assert live.losses[:3] == [1.0, 0.9, 0.8] and live.redraws == 2
    assert len(cap.outputs) >= 1
    assert "Probe (live)" in cap.outputs[0].data["text/plain"]
