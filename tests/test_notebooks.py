"""Every notebook in notebooks/ runs headlessly against a real kernel (this venv's interpreter,
through a kernelspec written to a temporary directory: nothing is registered globally), and an
executed notebook exported to HTML by nbconvert shows the widgets' static renderings."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "whipstudio-test"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "WhipStudio test kernel",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return str(root)


def execute(path: Path, kernel_dirs: str, workdir: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernel_dirs])
    )
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=600,
        allow_errors=False,  # any error in any cell fails the test
        store_widget_state=False,  # like a notebook saved without widget state (GitHub)
        resources={"metadata": {"path": str(workdir)}},
    )
    payloads: list[dict] = []
    client.on_cell_executed = lambda cell, execute_reply, **_: payloads.extend(
        execute_reply["content"].get("payload", [])
    )
    client.execute()
    nb.metadata["test_payloads"] = payloads  # what a frontend would have acted on
    return nb


@pytest.fixture(scope="module")
def executed(kernel_dirs: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Each notebook executed once; tests look at the results."""
    out = {}
    for path in NOTEBOOKS:
        out[path.name] = execute(path, kernel_dirs, tmp_path_factory.mktemp(path.stem))
    return out


def test_there_are_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_tools_tour.ipynb",
        "03_agent_prototyping.ipynb",
        "04_instructor.ipynb",
    ]


def test_notebooks_are_stored_without_outputs() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        prose = sum(len(c.source) for c in nb.cells if c.cell_type == "markdown")
        assert prose > 1500, f"{path.name} needs real prose"


def test_no_notebook_carries_a_stray_submit_cell() -> None:
    """A cell that submits a task's buggy code would use up a submission on Run All."""
    from whipstudio_nb import list_tasks, load_task

    buggy = {load_task(t.id).buggy_code.strip() for t in list_tasks()}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.startswith("%%whip_submit"):
                body = cell.source.split("\n", 1)[1].strip() if "\n" in cell.source else ""
                assert body not in buggy, f"{path.name}: a %%whip_submit cell with buggy code"


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_rerunning_inserts_nothing_and_leaves_no_widget_models(executed: dict, name: str) -> None:
    """Run All twice is the same as once: no cell is inserted (no set_next_input), and every
    output is static, so the saved notebook reopens intact without its kernel."""
    nb = executed[name]
    assert [p.get("source") for p in nb.metadata["test_payloads"]] == []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert WIDGET_MIME not in output.get("data", {}), (cell.source, output)


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(executed: dict, name: str) -> None:
    nb = executed[name]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error", (cell.source, output)
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            assert not text.startswith("Error:"), (cell.source, text)  # a friendly error
            assert "Traceback" not in text, (cell.source, text)


def _outputs_of(nb, source_start: str, kind: str | None = None) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert cells, source_start
    return [o for c in cells for o in c.outputs if kind is None or o.output_type == kind]


@pytest.mark.slow
def test_quickstart_solves_task1(executed: dict) -> None:
    nb = executed["01_quickstart.ipynb"]
    (result,) = _outputs_of(nb, "%whip_submit", "execute_result")
    # static outputs only: they show the same in JupyterLab, VS Code, an export and on reopen
    assert {"text/plain", "text/html", "image/png"} <= set(result.data)
    assert result.data["text/plain"].splitlines()[-1].startswith("turn ")  # the budget line
    score = float(re.match(r"Score: ([0-9.]+)", result.data["text/plain"]).group(1))
    assert score > 0.9
    (printed,) = _outputs_of(nb, "report = _")
    assert printed.text.startswith(f"reward: {score:.3f}")


@pytest.mark.slow
def test_tools_tour_uses_every_tool(executed: dict) -> None:
    nb = executed["02_tools_tour.ipynb"]
    state = _outputs_of(nb, "%whip_state", "execute_result")[0].data["text/plain"]
    for tool in ("run_training_probe", "get_variable_state", "replace_lines", "submit_fix"):
        assert tool in state
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for magic in (
        "whip_snippet",
        "whip_inspect",
        "whip_probe",
        "whip_vars",
        "whip_diff",
        "whip_code",
        "whip_submit",
        "whip_state",
        "whip_hint",
    ):
        assert f"%{magic}" in sources, magic
    inspect = _outputs_of(nb, "%whip_inspect model(X)", "execute_result")[0].data["text/plain"]
    assert "NaN!" in inspect
    frozen = _outputs_of(nb, "%whip_probe --steps 140", "execute_result")[0].data["text/plain"]
    assert "backbone.0.weight" in frozen and "<- no gradient" in frozen


@pytest.mark.slow
def test_agent_notebook_solves_task1_and_exports_the_trajectory(executed: dict) -> None:
    nb = executed["03_agent_prototyping.ipynb"]
    dash = _outputs_of(nb, "EpisodeDashboard(env.state(), timeline(steps)", "execute_result")
    assert "Task task1 (Broken Training Loop)" in dash[0].data["text/plain"]
    # the grade comes from a hidden world drawn per run: the simple policy (lr 10 -> 0.1) lands
    # around 0.9, not always exactly 1
    best = re.search(r"best reward ([01]\.\d{3})", dash[0].data["text/plain"])
    assert best and float(best.group(1)) > 0.8, dash[0].data["text/plain"]
    assert dash[0].data["text/html"].count('<details class="whip-step"') >= 5  # one per step
    (printed,) = _outputs_of(nb, "def export_trajectory", "stream")
    assert printed.text.splitlines()[0].startswith("1 run_training_probe reward=0.000")


@pytest.mark.slow
def test_instructor_notebook_validates_a_pack_and_grades_a_class(executed: dict) -> None:
    nb = executed["04_instructor.ipynb"]
    text = "".join(o.text for o in _outputs_of(nb, "from whipstudio_nb.grading.calibration"))
    assert "PASS  buggy code scores low: 0.000" in text and "FAIL" not in text, text
    passed = re.search(r"(\d+)/(\d+) checks passed", text)
    assert passed and passed[1] == passed[2] and int(passed[2]) >= 15, text
    (listed,) = _outputs_of(nb, "import os", "execute_result")
    assert "('course1', 'Gradients Wiped', 'easy')" in listed.data["text/plain"]
    # the course: release, three students' episodes, `whip course grade`, gradebook, feedback
    released = "".join(o.text for o in _outputs_of(nb, "def whip(", "stream"))
    assert "task1.ipynb" in released and "task12.ipynb" in released
    graded = "".join(o.text for o in _outputs_of(nb, 'whip("course", "grade"', "stream"))
    # the cheating student is caught (which of cy's two files depends on the hidden world)
    assert "tampered: cy/" in graded and "graded 6 submissions" in graded
    (table,) = _outputs_of(nb, "import csv", "display_data")
    html = table.data["text/html"]
    assert "recorded score 0.990, but its recorded components give" in html
    assert "<submission>" not in html and "N_FEATURE" in html, html  # escaped, not swallowed
    (page,) = _outputs_of(nb, "page = (course", "display_data")
    feedback = page.data["text/html"]
    assert "feedback for ben" in feedback and "data:image/png;base64," in feedback


@pytest.mark.slow
def test_html_export_shows_static_renderings(executed: dict, tmp_path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(executed["01_quickstart.ipynb"])
    (tmp_path / "quickstart.html").write_text(body)
    # the static views, as HTML (not merely inside a widget-state JSON string)
    for view in (
        "whip-tasks",
        "whip-code",
        "whip-snippet",
        "whip-stack",
        "whip-diff",
        "whip-grade",
        "whip-dashboard",
    ):
        assert f'class="whip-view {view}"' in body, view
    assert "<b>Grade report</b>" in body
    assert body.count('src="data:image/png;base64,') >= 3  # loss curves, gradient norms
    assert "<details><summary>Run output</summary>" in body
