"""`whip validate-task` on a good pack and on broken ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from whipstudio_nb.tasks import builtin_tasks_dir

WHIP = Path(sys.executable).parent / "whip"


def pack(tmp_path: Path) -> Path:
    dst = tmp_path / "mypack"
    shutil.copytree(builtin_tasks_dir() / "task1", dst)
    toml = dst / "task.toml"
    toml.write_text(toml.read_text().replace('id = "task1"', 'id = "mypack"'))
    for script in ("buggy.py", "solution.py", "partial.py"):  # a pack loads its own data
        path = dst / script
        path.write_text(path.read_text().replace('"task1"', '"mypack"'))
    return dst


def validate(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WHIP), "validate-task", str(path), *args], capture_output=True, text=True, timeout=300
    )


def test_good_pack_passes(tmp_path):
    out = validate(pack(tmp_path), "--seeds", "5")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS  solution scores high" in out.stdout
    assert "PASS  cheat 'prints metrics only'" in out.stdout
    assert "PASS  variant seed=5" in out.stdout
    assert "checks passed" in out.stdout.splitlines()[-1]


def test_schema_error_is_reported(tmp_path):
    p = pack(tmp_path)
    (p / "grader.py").unlink()
    out = validate(p)
    assert out.returncode == 1
    assert "FAIL  schema:" in out.stdout and "missing required file 'grader.py'" in out.stdout


def test_unknown_component_is_a_schema_error(tmp_path):
    p = pack(tmp_path)
    toml = p / "task.toml"
    toml.write_text(toml.read_text().replace("trained = 0.15", "trained = 0.15\nvibes = 0.5"))
    out = validate(p)
    assert out.returncode == 1 and "grading.weights.vibes" in out.stdout


def test_solution_that_fixes_nothing_fails(tmp_path):
    p = pack(tmp_path)
    shutil.copy(p / "buggy.py", p / "solution.py")
    out = validate(p, "--seeds")
    assert out.returncode == 1
    assert "FAIL  solution scores high" in out.stdout
    assert "FAIL  partial fix scores in between" in out.stdout


def test_buggy_code_that_works_fails(tmp_path):
    p = pack(tmp_path)
    shutil.copy(p / "solution.py", p / "buggy.py")
    out = validate(p, "--seeds")
    assert out.returncode == 1 and "FAIL  buggy code scores low" in out.stdout


def test_crashing_solution_fails(tmp_path):
    p = pack(tmp_path)
    (p / "solution.py").write_text((p / "solution.py").read_text() + "\nraise SystemExit('oops')\n")
    out = validate(p, "--seeds")
    assert out.returncode == 1 and "FAIL  solution runs" in out.stdout


def test_grader_may_import_a_sibling_module(tmp_path):
    p = pack(tmp_path)
    grader = (p / "grader.py").read_text()
    (p / "world.py").write_text(grader)  # the generator moves into a helper module
    (p / "grader.py").write_text("from world import heldout, training_data  # noqa: F401\n")
    out = validate(p, "--seeds")
    assert "PASS  grader.py data" in out.stdout, out.stdout + out.stderr
    assert "PASS  solution scores high" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_broken_generator_is_a_fail_line_not_a_traceback(tmp_path):
    p = pack(tmp_path)
    grader = (p / "grader.py").read_text()
    (p / "grader.py").write_text(grader.replace('params["scale"]', 'params["no_such_param"]'))
    out = validate(p, "--seeds")
    assert out.returncode == 1
    assert "FAIL  grader.py data: KeyError: 'no_such_param'" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_wrong_label_shape_is_reported(tmp_path):
    p = pack(tmp_path)
    grader = (p / "grader.py").read_text()
    (p / "grader.py").write_text(
        grader.replace(
            "return _draw(seed, 2, 2000, params)",
            "x, y = _draw(seed, 2, 2000, params)\n    return x, y[:, None]",
        )
    )
    out = validate(p, "--seeds")
    assert out.returncode == 1
    assert "accuracy needs labels of shape (N,) of class indices, got (2000, 1)" in out.stdout


def test_unearnable_weight_is_a_warning(tmp_path):
    p = pack(tmp_path)
    sol = (p / "solution.py").read_text()
    (p / "solution.py").write_text(
        sol + "\n_model = model\ndef predict(x):\n    return _model(x).argmax(dim=1)\n"
    )
    toml = p / "task.toml"
    text = toml.read_text().replace('model = "model"', 'model = "model"\npredict = "predict"')
    # a held-out loss weight that a class-index predict() can never earn
    text = text.replace("heldout_metric = 0.7\n", "heldout_metric = 0.6\nheldout_loss = 0.1\n")
    toml.write_text(text)
    out = validate(p, "--seeds")
    assert "WARN  weight 'heldout_loss' can be earned" in out.stdout
    assert "class indices" in out.stdout


def test_missing_heldout_is_a_schema_error(tmp_path):
    p = pack(tmp_path)
    (p / "grader.py").write_text(
        (p / "grader.py").read_text().replace("def heldout(", "def held_out(")
    )
    out = validate(p)
    assert out.returncode == 1 and "FAIL  schema:" in out.stdout and "heldout" in out.stdout
