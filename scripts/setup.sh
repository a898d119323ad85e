#!/usr/bin/env bash
# Create .venv and install whipstudio_nb (editable) with its dependencies. Idempotent: when
# nothing that affects the install has changed, it returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"

# System packages, installed with apt when we can (root): bubblewrap gives sandbox kernels strict
# isolation (no network, read-only disk, hidden solutions; without it the sandbox says it runs
# 'basic'); Debian's chromium runs the real-browser tests (tests/test_browser.py, JupyterLab
# driven by Playwright; without it scripts/test.sh skips them, outside CI).
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
# libseccomp: the strict sandbox's syscall filter (pyseccomp loads it)
{ ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2'; } || missing+=(libseccomp2)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing[*]} with apt (first run only)..." >&2
        apt-get update -qq >/dev/null 2>&1 || true
        for pkg in "${missing[@]}"; do
            if ! apt-get install -y -qq "$pkg" >/dev/null 2>&1; then
                case "$pkg" in
                    bubblewrap|libseccomp2) why="sandbox isolation will be 'basic'" ;;
                    *) why="the browser tests will be skipped (outside CI) or fail (in CI)" ;;
                esac
                echo "setup: could not install $pkg; $why" >&2
            fi
        done
    else
        echo "setup: not found: ${missing[*]}; install them (apt) for strict sandbox isolation" \
            "and the browser tests" >&2
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
