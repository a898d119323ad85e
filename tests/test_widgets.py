"""Static and live renderings of every view, outside a kernel (what nbconvert, GitHub and a
terminal IPython see) and as core ipywidgets."""

from __future__ import annotations

import base64
import math
import subprocess
import sys

import pytest

from whipstudio_nb.models import (
    InspectTensorObservation,
    State,
    TensorHistogram,
    ToolCallRecord,
    VariableState,
)
from whipstudio_nb.notebook.widgets import (
    CodeView,
    DiffViewer,
    EpisodeDashboard,
    GradeReport,
    GradNorms,
    LossCurve,
    Message,
    SnippetOutput,
    Stack,
    TaskTable,
    TensorInspector,
    TimelineEntry,
    VariableTable,
    sparkline,
    summary_line,
)
from whipstudio_nb.notebook.widgets._base import AMBER, RED, styled

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(bundle: dict) -> bytes:
    return base64.b64decode(bundle["image/png"])


def nan_tensor_obs() -> InspectTensorObservation:
    return InspectTensorObservation(
        shape=[400, 4],
        dtype="torch.float32",
        requires_grad=True,
        grad_is_none=True,
        min_val=-58.2,
        max_val=61.0,
        mean_val=0.12,
        std_val=19.9,
        numel=1600,
        is_nan=True,
        is_inf=False,
        nan_count=3,
        inf_count=0,
        histogram=TensorHistogram(edges=[-60.0, -20.0, 20.0, 60.0], counts=[300, 1000, 297]),
    )


def test_importing_widgets_does_not_import_ipywidgets_or_matplotlib() -> None:
    code = (
        "import sys, whipstudio_nb.notebook.widgets\n"
        "print([m for m in ('ipywidgets', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tensor_inspector_flags_nan_in_red_with_histogram() -> None:
    view = TensorInspector(nan_tensor_obs(), "X")
    bundle = view._repr_mimebundle_()
    assert set(bundle) >= {"text/plain", "text/html", "image/png"}
    assert _png(bundle).startswith(PNG_MAGIC)
    # the lovely-tensors style line
    line = summary_line(view.obs)
    assert line.startswith("tensor[400, 4] n=1600")
    assert "NaN! ×3" in line and "μ=0.12" in line and "σ=19.9" in line
    assert "requires_grad (no .grad)" in line
    assert "<-- !" in bundle["text/plain"].splitlines()[10]  # the NaN row is flagged
    html = bundle["text/html"]
    assert f'color: {RED}">True (3)' in html
    assert "False (0)" in html and f'color: {RED}">False' not in html  # Inf is not flagged


def test_tensor_inspector_finite_has_no_red_flags() -> None:
    obs = nan_tensor_obs().model_copy(update={"is_nan": False, "nan_count": 0})
    html = TensorInspector(obs).html()
    assert f"color: {RED}" not in html.split("</table>")[0].split("<table")[1]
    assert "finite" in html


def test_loss_curve_marks_nan_steps_and_overlays_attempts() -> None:
    losses = [1.0, 0.8, 0.5, float("nan"), float("nan")]
    curve = LossCurve(losses, attempts={"submission 1": [1.0, 1.0, 1.0]})
    assert curve.bad_steps == [3, 4]
    text = curve.text()
    assert "NaN/Inf from step 3 (2 steps)" in text
    assert "submission 1:" in text
    assert sparkline(losses).endswith("!!")
    bundle = curve._repr_mimebundle_()
    assert _png(bundle).startswith(PNG_MAGIC)
    assert "NaN/Inf" in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]


def test_loss_curve_log_toggle_redraws_the_live_image() -> None:
    curve = LossCurve([10.0, 1.0, 0.1, 0.01], log_scale=False)
    box = curve.widget()
    header, image = box.children
    toggle = header.children[1]
    linear = bytes(image.value)
    assert linear.startswith(PNG_MAGIC)
    toggle.value = True
    assert bytes(image.value).startswith(PNG_MAGIC) and bytes(image.value) != linear
    assert curve.png(log_scale=True) == bytes(image.value)


def test_loss_curve_picks_a_log_axis_when_losses_span_decades() -> None:
    # a diverged earlier attempt (hundreds) beside a good run (~0.05): linear would flatten it
    diverged = {"probe, turn 1": [1.2, 560.0, 150.0, 130.0]}
    good = [1.19, 0.5, 0.1, 0.049]
    assert LossCurve(good, attempts=diverged).log_scale is True
    assert LossCurve([1.2, 1.0, 0.8]).log_scale is False  # one decade: linear
    assert LossCurve([1.0, 0.0, -0.5]).log_scale is False  # not all positive: linear
    assert LossCurve([float("nan")] * 3).log_scale is False
    assert LossCurve(good, attempts=diverged, log_scale=False).log_scale is False
    assert "flat: the loss never changed" in LossCurve([1.191] * 30).text()
    assert "flat" not in LossCurve(good).text()
    toggle = LossCurve(good, attempts=diverged).widget().children[0].children[1]
    assert toggle.value is True  # the live toggle starts where the static image is


def test_grad_norms_make_frozen_layers_stand_out() -> None:
    view = GradNorms({"backbone.0.weight": 0.0, "fc.weight": 1.5}, ["backbone.0.bias"])
    assert view.is_dead("backbone.0.weight") and view.is_dead("backbone.0.bias")
    assert not view.is_dead("fc.weight")
    text = view.text()
    assert "backbone.0.bias" in text and "<- no gradient" in text and "<- zero" in text
    bundle = view._repr_mimebundle_()
    assert _png(bundle).startswith(PNG_MAGIC)
    assert bundle["text/html"].count(f"background: {RED}") == 2


def test_grad_norms_all_non_finite_are_labelled_not_blank() -> None:
    nan = float("nan")
    view = GradNorms({"0.weight": nan, "0.bias": float("inf")})
    assert not view.is_dead("0.weight")  # non-finite is its own case, not "zero"
    assert view._note("0.weight") == ("non-finite (NaN/Inf)", AMBER)
    assert view.text().count("<- non-finite") == 2
    assert view.html().count("non-finite") >= 2
    # no empty 0..1 chart: the table and one line say it
    assert view.png() is None and "Every gradient norm is NaN/Inf" in view.html()
    mixed = GradNorms({"0.weight": nan, "0.bias": 0.5})
    assert (mixed.png() or b"").startswith(PNG_MAGIC)


def test_diff_viewer_counts_and_numbers_lines() -> None:
    a = "a = 1\nb = 2\nc = 3\n"
    b = "a = 1\nb = 20\nc = 3\nd = 4\n"
    view = DiffViewer(a, b)
    assert (view.additions, view.deletions) == (2, 1)
    text = view.text()
    assert "   2      - b = 2" in text and "        2 + b = 20" in text and "4 + d = 4" in text
    html = view.html()
    assert "#ffeef0" in html and "#e6ffed" in html  # deleted and added rows coloured
    side = view.side_by_side_html()
    assert "original" in side and "proposed" in side and "b = 20" in side
    assert DiffViewer(a, a).text() == "No changes."
    box = view.widget()
    mode, body = box.children[0].children[1], box.children[1]
    mode.value = "side by side"
    assert side in body.value and "line-height: 1.4" in body.value  # compact rows in the widget


def test_variable_table_one_row_per_expression() -> None:
    view = VariableTable(
        {
            "X.shape": VariableState(repr="torch.Size([3, 2])", type="torch.Size", shape=[3, 2]),
            "foo": VariableState(error="NameError: name 'foo' is not defined"),
        }
    )
    lines = view.text().splitlines()
    assert lines[0].split() == ["expression", "value", "type", "shape", "error"]
    assert lines[2].startswith("X.shape") and "(3, 2)" in lines[2]
    assert "NameError" in lines[3]
    assert view.html().count("<tr>") == 3
    # columns nobody filled are left out
    plain = VariableTable({"lr": VariableState(repr="0.01", type="float")})
    assert plain.text().splitlines()[0].split() == ["expression", "value", "type"]
    assert "error" not in plain.html() and "shape" not in plain.html()


def test_grade_report_gauge_components_and_collapsed_output() -> None:
    details = {
        "components": {"heldout_metric": 0.95, "heldout_loss": 0.5, "trained": 0.0},
        "weights": {"heldout_metric": 0.5, "heldout_loss": 0.3, "trained": 0.2},
        "val_acc": 0.951,
        "heldout_loss": 0.41,
        "optimizer_steps": 0,
        "losses": [1.0, 0.7, 0.4],
    }
    report = GradeReport(0.625, details, "LOSSES:[1.0]\nTRAIN_ACC:0.9")
    rows = {r[0]: r for r in report._rows()}
    assert rows["heldout_metric"][4] == "pass" and rows["heldout_loss"][4] == "partial"
    assert rows["trained"][4] == "fail" and rows["trained"][3] == "optimizer_steps=0"
    assert rows["heldout_metric"][3] == "val_acc=0.951"
    bundle = report._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Score: 0.625")
    html = bundle["text/html"]
    assert "width: 62.5%" in html  # the gauge
    assert "<details><summary>Run output</summary>" in html and "TRAIN_ACC:0.9" in html
    assert _png(bundle).startswith(PNG_MAGIC)
    acc = report.widget().children[-1]
    assert acc.selected_index is None  # the run's output starts collapsed


def test_grade_report_shows_errors() -> None:
    report = GradeReport(0.0, {"error": "Security violation: import 'requests' is not allowed."})
    assert "Security violation" in report.text()
    assert "Security violation" in report.html()


def test_dashboard_timeline_expands_to_observations() -> None:
    state = State(
        turn=2,
        task_id="task1",
        max_turns=10,
        best_reward=0.9,
        submissions=1,
        tool_call_history=[
            ToolCallRecord(turn=1, action_type="execute_snippet"),
            ToolCallRecord(turn=2, action_type="submit_fix", reward=0.9),
        ],
    )
    entries = [
        TimelineEntry(1, "execute_snippet", "print(1)", SnippetOutput("1\n", "")),
        TimelineEntry(2, "submit_fix", "score 0.900", Message("graded", "info"), reward=0.9),
    ]
    view = EpisodeDashboard(state, entries, "Broken Training Loop")
    text = view.text()
    assert text.startswith("Task task1 (Broken Training Loop): turn 2 of 10, best reward 0.900")
    assert "submit_fix" in text and "reward 0.900" in text
    assert "1 submission, solved (you may still submit)" in text
    html = view.html()
    assert (
        html.count('<details class="whip-step"') == 2
        and "width: 20%" in html
        and "2 / 10 turns" in html
    )
    assert "score 0.900" in html and "<details open" not in html  # collapsed, scored badge
    assert view.widget().value == styled(html)  # the live view is the same timeline
    unsolved = state.model_copy(update={"best_reward": 0.4, "submissions": 2})
    assert EpisodeDashboard(unsolved).text().splitlines()[0].endswith("2 submissions, in progress")
    done = state.model_copy(update={"episode_done": True})
    assert EpisodeDashboard(done).text().splitlines()[0].endswith(", done")
    # without entries (e.g. a State from env.state()), the history table is used
    assert "submit_fix" in EpisodeDashboard(state).html()


def test_small_views_render_statically() -> None:
    from whipstudio_nb.models import TaskInfo

    tasks = TaskTable([TaskInfo(id="task1", name="X", difficulty="easy")], {"task1": 0.5})
    assert isinstance(tasks, list) and tasks[0].id == "task1"
    assert "0.50" in tasks.text() and "0.50" in tasks.html()
    code = CodeView("a = 1\nb = 2\n", "heading", "desc")
    assert "2 | b = 2" in code.text() and "heading" in code.html()
    edited = CodeView("a = 1\nb = 2\nc = 3\n", "Working copy", highlight=[2])
    assert "2 > b = 2" in edited.text() and "1 | a = 1" in edited.text()
    assert edited.html().count('class="whip-edited"') == 1
    assert 'class="whip-edited"' not in code.html()
    snippet = SnippetOutput("out\n", "Traceback...\n", 1)
    assert "[exit code 1]" in snippet.text() and RED in snippet.html()
    msg = Message("No episode in progress")
    assert repr(msg) == "Error: No episode in progress"
    stack = Stack([msg, LossCurve([1.0, 0.5])])
    assert stack._repr_mimebundle_()["image/png"]


@pytest.mark.parametrize("value", [float("inf"), -1.0])
def test_sparkline_handles_odd_values(value: float) -> None:
    s = sparkline([1.0, value, 2.0])
    assert len(s) == 3
    assert (s[1] == "!") == (not math.isfinite(value))


def test_thinned_grading_losses_are_drawn_at_their_steps() -> None:
    # 300 backward() calls with a jump at step 100 (a pretraining phase, then a new head),
    # thinned by the grader to 200 points: the jump must still be at step 100, not point 100
    from whipstudio_nb.grading.grader import MAX_LOSSES_IN_DETAILS, _thin
    from whipstudio_nb.series import loss_series

    raw = [0.1 if i < 100 else 1.7 for i in range(300)]
    raw[250] = float("nan")
    details = {"losses": _thin(raw), "loss_steps": 300}
    assert len(details["losses"]) == MAX_LOSSES_IN_DETAILS
    series = loss_series(details)
    assert series.steps[0] == 0 and series.steps[-1] == 299
    assert all(
        raw[s] == v or (v is None and math.isnan(raw[s]))
        for s, v in zip(series.steps, series.values, strict=True)
    )
    first_high = next(s for s, v in zip(series.steps, series.values, strict=True) if v == 1.7)
    assert first_high in (100, 101)  # the jump stays where it happened
    report = GradeReport(0.5, details)
    assert report.curve is not None and report.curve.bad_steps == [250]
    text = report.text()
    assert "300 steps (200 points shown)" in text and "NaN/Inf from step 250" in text
    assert _png(report._repr_mimebundle_()).startswith(PNG_MAGIC)
    # an unthinned run keeps one point per step
    assert loss_series({"losses": [1.0, 0.5], "loss_steps": 2}).steps == [0, 1]
    with pytest.raises(ValueError):
        LossCurve([1.0, 0.5], steps=[0])


def test_a_fix_that_hides_the_symptom_is_amber_and_says_what_is_missing() -> None:
    from whipstudio_nb import load_task
    from whipstudio_nb.notebook.widgets._base import GREEN
    from whipstudio_nb.notebook.widgets.report import component_targets

    details = {  # task2 with a lower learning rate: no NaN, but a weak model
        "components": {
            "heldout_metric": 0.9,
            "heldout_loss": 0.62,
            "loss_decrease": 1.0,
            "trained": 1.0,
        },
        "weights": {
            "heldout_metric": 0.4,
            "heldout_loss": 0.3,
            "loss_decrease": 0.15,
            "trained": 0.15,
        },
        "val_f1": 0.9194,
        "heldout_loss": 0.2108,
    }
    targets = component_targets(load_task("task2").grading, details)
    report = GradeReport(0.851, details, targets=targets)
    assert report.verdict() == (
        "not solved: 0.9 needed; missing: heldout_loss 0.62 (heldout_loss=0.2108, target "
        "heldout_loss ≤ 0.12); heldout_metric 0.90 (val_f1=0.9194, target val_f1 ≥ 0.955)"
    )
    assert report.text().splitlines()[1] == report.verdict()
    html = report.html()
    assert f"color: {AMBER}" in html and f"color: {GREEN}" not in html.split("<table")[0]
    solved = GradeReport(0.93, {**details, "components": dict.fromkeys(details["components"], 1.0)})
    assert solved.verdict().startswith("solved") and f"color: {GREEN}" in solved.html()


def test_budget_line_counts_down_and_warns() -> None:
    from whipstudio_nb.models import State
    from whipstudio_nb.notebook.widgets import BudgetStatus

    def line(**kw: object) -> BudgetStatus:
        return BudgetStatus(State(task_id="task2", max_turns=10, **kw), max_submissions=2)

    assert line(turn=4).text() == "turn 4/10 · 2 submissions left · best 0.00"
    assert not line(turn=7).warning and line(turn=8).warning
    assert line(turn=9, submissions=1, best_reward=0.5).text() == (
        "turn 9/10 · 1 submission left · best 0.50 · 1 turn left: submit your fix with %whip_submit"
    )
    assert AMBER in line(turn=8).html() and AMBER not in line(turn=3).html()
    assert line(turn=3, submissions=1, best_reward=0.95).text().endswith("· solved")
    assert line(turn=10, episode_done=True).advice() == (
        "episode over: %whip_reset task2 starts a new one"
    )


def test_progress_line_shows_time_and_the_latest_loss() -> None:
    from whipstudio_nb.notebook.widgets.progress import progress_line

    assert progress_line("submit fix", 3.24, 50).startswith(
        "submit fix: running, 3.2 s of at most 50 s · interrupt"
    )
    assert "· step 3, loss 0.25 ·" in progress_line("probe", 1.0, 30, [1.0, 0.5, 0.25])
    assert "loss NaN/Inf" in progress_line("probe", 1.0, 30, [1.0, math.nan])


def test_views_carry_no_widget_model_even_in_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reopened notebook has no kernel to ask for a widget model: outputs must be static."""
    import whipstudio_nb.notebook.widgets._base as base

    monkeypatch.setattr(base, "in_kernel", lambda: True)
    bundle = LossCurve([1.0, 0.5])._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png"}


def test_side_by_side_diff_wraps_in_half_the_width() -> None:
    long = "x = 1  # " + "a long comment " * 12
    html = DiffViewer("x = 1\n", long + "\n").side_by_side_html()
    assert "table-layout: fixed" in html and "width: 100%" in html
    assert html.count("white-space: pre-wrap; overflow-wrap: anywhere") >= 2
