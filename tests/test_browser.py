"""The notebooks as their users see them: JupyterLab (from PyPI) on a loopback port, driven by
Playwright in Debian's headless Chromium (/usr/bin/chromium; no browser download). Run All, then
the live widgets must really be in the page's DOM; screenshots go to test-artifacts/screenshots/.
The executed quickstart, exported by nbconvert, is also opened as a static file (no kernel).

Runs only with `pytest --browser`: scripts/test.sh (the README's test command, which .ci/run calls)
passes it when /usr/bin/chromium exists, and always in CI; then a missing piece is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_TIMEOUT_MS = 420_000  # a whole notebook: sandboxes, probes, grading
RED = "rgb(198, 40, 40)"  # widgets._base.RED

_missing = [
    what
    for what, ok in (
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        ("playwright", importlib.util.find_spec("playwright") is not None),
        ("jupyterlab", importlib.util.find_spec("jupyterlab") is not None),
        ("nbconvert", importlib.util.find_spec("nbconvert") is not None),
    )
    if not ok
]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    def __init__(self, base: str, token: str, root: Path) -> None:
        self.base, self.token, self.root = base, token, root

    def url(self, name: str) -> str:
        return f"{self.base}/lab/tree/{name}?reset&token={self.token}"  # reset: one notebook open


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    assert not _missing, (
        f"the browser test needs {', '.join(_missing)} (scripts/setup.sh installs them)"
    )
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    settings = work / "settings"
    # every cell in the DOM (no virtual scrolling), no news/update pop-ups
    _write_json(
        settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )
    _write_json(
        settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(work / "config"),
        JUPYTER_DATA_DIR=str(work / "data"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
    )
    token, port = secrets.token_hex(16), _free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = work / "jupyterlab.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            req = urllib.request.Request(
                base + "/api/status", headers={"Authorization": f"token {token}"}
            )
            try:
                urllib.request.urlopen(req, timeout=2).read()
                break
            except OSError:
                time.sleep(0.25)
        yield Lab(base, token, root)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _code_cells(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code")


_READY = """n => {
  const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-CodeCell');
  const bar = document.querySelector('#jp-main-statusbar');
  return cells.length >= n && !!bar && /\\|\\s*Idle/.test(bar.textContent);
}"""

_DONE = """() => {
  const ps = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim());
  const bar = document.querySelector('#jp-main-statusbar');
  return ps.length > 0 && !ps.some(p => p.includes('*')) && /\\d/.test(ps[ps.length - 1])
    && !!bar && /\\|\\s*Idle/.test(bar.textContent);
}"""


def _run_all(lab: Lab, browser: Any, name: str) -> Any:
    """Open the notebook, Run All Cells from the Run menu, wait for the last cell and an idle
    kernel; returns the page (1280 px wide, the left sidebar closed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(lab.url(name))
    page.wait_for_function(_READY, arg=_code_cells(lab.root / name), polling=250)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")  # close the file browser: the notebook gets the width
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(_DONE, polling=500, timeout=RUN_TIMEOUT_MS)
    _grow(page)
    return page


def _shot(locator: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    assert path.stat().st_size > 2000, path
    return path


def _grow(page: Any) -> None:
    """Grow the viewport to the whole notebook, so no widget is clipped by JupyterLab's
    scrolling panel (element screenshots then show exactly the widget)."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer,"
        " .jp-NotebookPanel .jp-WindowedPanel-viewport, .jp-NotebookPanel .jp-Notebook')]"
        ".map(e => e.scrollHeight))"
    )
    width = (page.viewport_size or {}).get("width", 1280)
    page.set_viewport_size({"width": width, "height": min(16000, int(height) + 250)})


def _shot_notebook(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _assert_no_errors(page: Any) -> None:
    text = page.locator(".jp-Notebook .jp-OutputArea").all_inner_texts()
    joined = "\n".join(text)
    assert "Failed to load model class" not in joined
    assert "Traceback" not in joined
    assert "Error displaying widget" not in joined
    errors = page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type*='stderr']")
    for i in range(errors.count()):
        assert "Error" not in errors.nth(i).inner_text(), errors.nth(i).inner_text()


def _assert_code_rows_compact(diff: Any) -> None:
    """Unified diff lines read as code: one text line per row (ipywidgets' HTML had a 28 px
    line height that spread them apart) and left-aligned (notebook stylesheets right-align
    cells). The side-by-side view wraps long lines on purpose, so it is not checked here."""
    cells = diff.locator("tr td:last-child")
    heights = cells.evaluate_all("cs => cs.map(c => c.getBoundingClientRect().height)")
    assert heights and max(heights) <= 24, heights
    aligns = set(cells.evaluate_all("cs => cs.map(c => getComputedStyle(c).textAlign)"))
    assert aligns == {"left"}, aligns


def _image_ok(locator: Any) -> bool:
    return bool(locator.evaluate("e => e.complete && e.naturalWidth > 100"))


def _live(page: Any, view: str) -> Any:
    """The views carrying ``whip-<view>`` in the notebook's outputs (static HTML: no widget
    models, so they look the same after a reopen)."""
    # not the copies inside the dashboard's collapsed rows
    inside = ".jp-Notebook .jp-OutputArea-output"
    return page.locator(f"{inside} .whip-view.whip-{view}:not(details .whip-view)")


def test_quickstart_in_jupyterlab(lab: Lab, browser: Any) -> None:
    page = _run_all(lab, browser, "01_quickstart.ipynb")
    try:
        _assert_no_errors(page)
        # the probe: loss curve image rendered
        curves = _live(page, "loss-curve")
        assert curves.count() >= 2
        assert _image_ok(curves.first.locator("img").first)
        _shot(curves.first, "quickstart-loss-curve")
        # the diff viewer: coloured added / removed rows
        diff = _live(page, "diff").first
        rows = diff.locator("tr")
        colours = rows.evaluate_all("rs => rs.map(r => getComputedStyle(r).backgroundColor)")
        assert "rgb(230, 255, 237)" in colours and "rgb(255, 238, 240)" in colours, colours
        _assert_code_rows_compact(diff.locator("table").first)  # the unified view
        _shot(diff, "quickstart-diff")
        # the grade report with its score
        report = _live(page, "grade").first
        assert "Grade report" in report.inner_text()
        gauge = re.search(r"^([01]\.\d{3})$", report.inner_text(), re.M)  # its description
        assert gauge and float(gauge.group(1)) > 0.9, report.inner_text()
        _shot(report, "quickstart-grade-report")
        # the dashboard: one collapsed row per tool call, the submission's score as a badge
        dash = _live(page, "dashboard").first
        steps = dash.locator("details.whip-step")
        assert steps.count() >= 7 and dash.locator("details.whip-step[open]").count() == 0
        last = steps.last.locator("summary").first.inner_text()  # a hidden world per run
        badge = re.search(r"score ([01]\.\d{3})", last)
        assert badge and float(badge.group(1)) > 0.9, last
        assert "turns" in dash.inner_text() and "solved" in dash.inner_text()
        _shot(dash, "quickstart-dashboard")
        steps.last.locator("summary").first.click()  # a row expands to what that call showed
        assert steps.last.locator(".whip-grade").first.is_visible()
        _shot(dash, "quickstart-dashboard-expanded")
        # the working copy marks the lines an edit just put in
        edited = page.locator(".jp-Notebook .whip-code .whip-edited")
        assert edited.count() >= 2  # lines 19-24 (one edit), then line 15 (the next)
        _shot(_live(page, "code").nth(1), "quickstart-working-copy-edited")
        # the plainer views: the task table (static HTML), a code listing, snippet output, a hint
        tasks = page.locator(".jp-Notebook .whip-view.whip-tasks").first
        assert tasks.locator("tr").count() >= 19  # header + 18 tasks
        _shot(tasks, "quickstart-task-table")
        for view in ("code", "snippet", "message"):
            _shot(_live(page, view).first, f"quickstart-{view}")
        _shot_notebook(page, "quickstart-notebook")
        page.keyboard.press("Control+s")
        nb_path = lab.root / "01_quickstart.ipynb"
        page.wait_for_function(
            "() => !document.querySelector('.jp-mod-dirty')", polling=250, timeout=30_000
        )
    finally:
        page.context.close()
    _static_export(browser, nb_path)


def _static_export(browser: Any, nb_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "not saved"
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", (cell.source, out)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path = nb_path.with_suffix(".html")
    html_path.write_text(body)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # nothing from the network: no kernel, no CDN
    page.route("http*://**/*", lambda route: route.abort())
    try:
        page.goto(html_path.as_uri(), wait_until="domcontentloaded")
        tables = page.locator(".whip-view table")
        assert tables.count() >= 3
        images = page.locator(".whip-view img[src^='data:image/png']")
        assert images.count() >= 3
        page.wait_for_function(
            "() => [...document.querySelectorAll('.whip-view img')]"
            ".every(i => i.complete && i.naturalWidth > 100)",
            timeout=30_000,
        )
        assert page.locator(".jupyter-widgets").count() == 0  # static, no widget manager
        _assert_code_rows_compact(page.locator(".whip-diff table").first)
        _shot(page.locator(".whip-grade").first, "static-grade-report")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "static-quickstart.png"), full_page=True)
    finally:
        context.close()


def test_tools_tour_in_jupyterlab(lab: Lab, browser: Any) -> None:
    page = _run_all(lab, browser, "02_tools_tour.ipynb")
    try:
        _assert_no_errors(page)
        # the tensor inspector: its table, with the NaN flag highlighted in red
        tensor = _live(page, "tensor").first
        nan_row = tensor.locator("tr", has_text="NaN").first
        flag = nan_row.locator("b")
        assert flag.inner_text().startswith("True")
        assert flag.evaluate("e => getComputedStyle(e).color") == RED
        _shot(tensor, "tour-tensor-inspector")
        histogram = _live(page, "tensor").last.locator("img").first
        assert _image_ok(histogram)
        _shot(_live(page, "tensor").last, "tour-tensor-histogram")
        curves = _live(page, "loss-curve")
        assert curves.count() >= 3
        assert _image_ok(curves.first.locator("img").first)
        _shot(curves.first, "tour-loss-curve-nan")
        _shot(_live(page, "grad-norms").last, "tour-grad-norms")
        diff = _live(page, "diff").first
        colours = diff.locator("tr").evaluate_all(
            "rs => rs.map(r => getComputedStyle(r).backgroundColor)"
        )
        assert "rgb(230, 255, 237)" in colours and "rgb(255, 238, 240)" in colours, colours
        _shot(diff, "tour-diff")
        report = _live(page, "grade").first
        assert "Grade report" in report.inner_text()
        _shot(report, "tour-grade-report")
        # task5 trains 300 steps; the grader keeps 200 points, drawn at their own steps
        frozen = _live(page, "grade").last
        assert "300 steps (200 points shown)" in frozen.inner_text(), frozen.inner_text()
        _shot(frozen, "tour-grade-report-thinned")
        _shot(_live(page, "variables").first, "tour-variables")
        _shot_notebook(page, "tour-notebook")
    finally:
        page.context.close()


# ------------------------------------------------------------------ a learner's own notebook

LEARNER_CELLS = [
    "%load_ext whipstudio_nb\n%config WhipMagics.max_turns = 4",
    "%whip_submit",  # before any episode: one line saying how to start
    "%whip_reset task2 --sed 1",  # a typo: one line naming the right option
    "%whip_reset task2",
    "%%whip_snippet\nn = 0\nwhile True:\n    n += 1",  # stopped by ■
    "%whip_probe --steps 30",
    "%%whip_code --replace 22 23\n    logits = model(X).squeeze(1)\n"
    "    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)",
    "%%whip_diff\n"
    + "# a very long comment line that must wrap inside the side-by-side view " * 3
    + "\n"
    + "{working}",
    "%whip_submit",
    "%whip_state",
]


def _new_notebook(lab: Lab, name: str, sources: list[str]) -> None:
    """A notebook as a learner would type it: code cells, no outputs, the default kernel."""
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
        for s in sources
    ]
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(nb))


def _api(lab: Lab, method: str, path: str) -> Any:
    req = urllib.request.Request(
        lab.base + path, method=method, headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _open(lab: Lab, browser: Any, name: str, width: int = 1024) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = _console_errors(page)
    page.set_default_timeout(60_000)
    page.goto(lab.url(name))
    page.wait_for_function(_READY, arg=_code_cells(lab.root / name), polling=250)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")
    return page, errors


def _menu(page: Any, top: str, item: str) -> None:
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def _output_text(page: Any, index: int) -> str:
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts()).strip()


def test_learner_flow_interrupt_budget_save_and_reopen(lab: Lab, browser: Any) -> None:
    from whipstudio_nb import load_task

    working = load_task("task2").buggy_code  # the diff cell compares a long-lined version
    sources = [s.replace("{working}", working) for s in LEARNER_CELLS]
    _new_notebook(lab, "learner.ipynb", sources)
    page, errors = _open(lab, browser, "learner.ipynb")
    try:
        _menu(page, "Run", "Run All Cells")
        # the Stop button while the snippet runs: its progress line is on screen first
        progress = page.locator(".jp-Notebook .whip-progress").first
        progress.wait_for(timeout=180_000)
        time.sleep(1.5)
        assert re.match(
            r"execute snippet: running, \d+\.\d s of at most 30 s", progress.inner_text()
        )
        for attempt in range(3):  # the live line is redrawn in place: retry a detached element
            try:
                _shot(page.locator(".jp-Notebook .whip-progress").first, "learner-progress")
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.3)
        stop = page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='interrupt']").first
        stop.locator("button, jp-button").first.click()  # the ■ button
        page.wait_for_function(_DONE, polling=500, timeout=RUN_TIMEOUT_MS)
        _grow(page)
        _assert_no_errors(page)
        assert _output_text(page, 1).startswith("Error: No episode yet: start an episode with")
        assert "did you mean --seed?" in _output_text(page, 2)
        stopped = _output_text(page, 4)
        assert re.fullmatch(r"interrupted after \d+\.\d s \(no turn used\)", stopped), stopped
        _shot(page.locator(".jp-Notebook .jp-CodeCell").nth(4), "learner-interrupted")
        # the budget: turn 2 of 4 is the edit, and the line turns amber with what to do
        budget = page.locator(".jp-Notebook .jp-CodeCell").nth(6).locator(".whip-budget")
        assert budget.inner_text().startswith("turn 2/4 · 5 submissions left · best 0.00 · 2 turns")
        assert budget.evaluate("e => getComputedStyle(e).color") == "rgb(239, 108, 0)"
        _shot(page.locator(".jp-Notebook .jp-CodeCell").nth(6), "learner-budget-warning")
        # the side-by-side diff wraps inside its output at 1024 px
        diff = _live(page, "diff").first
        diff.locator("summary", has_text="Side by side").click()
        side = diff.locator("table.whip-side-by-side")
        area = page.locator(".jp-Notebook .jp-CodeCell").nth(7).locator(".jp-OutputArea-output")
        right = area.first.evaluate("e => e.getBoundingClientRect().right")
        assert side.evaluate("e => e.getBoundingClientRect().right") <= right + 1
        assert side.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        _shot(diff, "learner-diff-side-by-side-1024")
        # the grade report: its colour follows the 0.9 threshold, and it says so
        report = _live(page, "grade").first
        score = float(re.search(r"^([01]\.\d{3})$", report.inner_text(), re.M).group(1))
        verdict = report.locator(".whip-verdict")
        colour = verdict.evaluate("e => getComputedStyle(e).color")
        if score >= 0.9:
            assert verdict.inner_text().startswith("solved") and colour == "rgb(46, 125, 50)"
        else:
            assert verdict.inner_text().startswith("not solved: 0.9 needed; missing:")
            assert colour != "rgb(46, 125, 50)"
        _shot(report, "learner-grade-report")
        _shot_notebook(page, "learner-notebook")
        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.jp-mod-dirty')", polling=250, timeout=30_000
        )
        assert not errors, errors
    finally:
        page.context.close()
    # the kernel goes away (as after a restart of the machine), then the notebook is reopened
    for kernel in _api(lab, "GET", "/api/kernels"):
        _api(lab, "DELETE", f"/api/kernels/{kernel['id']}")
    assert _api(lab, "GET", "/api/kernels") == []
    page, errors = _open(lab, browser, "learner.ipynb")
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-Notebook .whip-view').length >= 6",
            polling=250,
        )
        _grow(page)
        _assert_no_errors(page)
        text = "\n".join(page.locator(".jp-Notebook .jp-OutputArea").all_inner_texts())
        assert "model not found" not in text
        assert re.search(r"interrupted after \d+\.\d s \(no turn used\)", text)
        assert "2 turns left: submit your fix with %whip_submit" in text
        assert _live(page, "grade").count() == 1 and _live(page, "dashboard").count() == 1
        assert _image_ok(_live(page, "loss-curve").first.locator("img").first)
        dash = _live(page, "dashboard").first
        dash.locator("details.whip-step > summary").last.click()  # still expands, no kernel
        assert dash.locator(".whip-grade").first.is_visible()
        _shot_notebook(page, "learner-reopened")
        _shot(dash, "learner-reopened-dashboard")
        assert not errors, errors
    finally:
        page.context.close()
