"""The public API is what __all__ says, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import whipstudio_nb


def test_exports_exist():
    for name in whipstudio_nb.__all__:
        assert getattr(whipstudio_nb, name) is not None
    assert {"WhipEnv", "list_tasks", "load_task", "grade"} <= set(whipstudio_nb.__all__)


def test_import_does_not_pull_heavy_modules():
    code = (
        "import sys, whipstudio_nb\n"
        "heavy = [m for m in ('torch', 'jupyter_client', 'zmq') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
