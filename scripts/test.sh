#!/usr/bin/env bash
# Set up (first run only), then run the whole test suite. Extra arguments go to pytest.
# The real-browser tests (JupyterLab in headless Chromium) are included when /usr/bin/chromium
# exists, and always in CI (setup installs Chromium there; a missing browser then fails).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
browser=()
if [ -x /usr/bin/chromium ] || [ -n "${CI:-}" ]; then
    browser=(--browser)
else
    echo "test: /usr/bin/chromium not found; the browser tests will be skipped" >&2
fi
exec .venv/bin/python -m pytest "${browser[@]}" "$@"
