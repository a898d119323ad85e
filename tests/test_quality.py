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
