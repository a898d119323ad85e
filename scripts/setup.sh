#!/usr/bin/env bash
# Create .venv and install whipstudio_nb (editable) with its dependencies. Idempotent: when
# nothing that affects the install has changed, it returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
stamp=".venv/.whip-setup-stamp"
want="$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/whip ]; then
    exit 0
fi

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "whipstudio_nb needs Python 3.10 or newer")'
echo "setup: creating .venv and installing whipstudio_nb (first run only; about a minute)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# constraints.txt pins torch to its CPU build, so pip never pulls a multi-GB CUDA release.
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e ".[dev]" 2> >(grep -v "^WARNING: Location" >&2)
echo "$want" > "$stamp"
echo "setup: done." >&2
