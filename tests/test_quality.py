"""Lint and type checks run with the suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff():
    out = run(str(BIN / "ruff"), "check", "whipstudio_nb", "tests", "benchmarks")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy():
    out = run(str(BIN / "mypy"), "whipstudio_nb")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format():
    """The formatter's output is the house style (no hand-formatted exceptions)."""
    out = run(str(BIN / "ruff"), "format", "--check", "whipstudio_nb", "tests", "benchmarks")
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_module_over_500_lines():
    """Small modules with one job: past 500 lines, split by what the parts do."""
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / "whipstudio_nb").rglob("*.py")
    }
    assert sizes and not {p: n for p, n in sizes.items() if n > 500}
