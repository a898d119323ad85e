#!/usr/bin/env bash
# Create .venv and install whipstudio_nb (editable) with its dependencies. Idempotent: when
# nothing that affects the install has changed, it returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"

# bubblewrap gives sandbox kernels strict isolation (no network, read-only disk, hidden
# solutions). Installed when we can (root with apt); otherwise the sandbox says it runs 'basic'.
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing bubblewrap for sandbox isolation..." >&2
        (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
            || echo "setup: could not install bubblewrap; sandbox isolation will be 'basic'" >&2
    else
        echo "setup: bubblewrap (bwrap) not found; install it for strict sandbox isolation" >&2
    fi
fi

# Debian's chromium runs the real-browser test (tests/test_browser.py, JupyterLab driven by
# Playwright); without it scripts/test.sh skips that test (outside CI). Installed when we can
# (root with apt).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing chromium for the browser test..." >&2
        (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
            || echo "setup: could not install chromium; the browser test will be skipped" >&2
    else
        echo "setup: /usr/bin/chromium not found; install it to run the browser test" >&2
    fi
fi

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
