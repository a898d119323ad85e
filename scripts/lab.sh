#!/usr/bin/env bash
# Set up (first run only), add JupyterLab (the optional `lab` extra) and open the quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x .venv/bin/jupyter-lab ]; then
    echo "lab: installing JupyterLab (first run only)..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt -e ".[lab]" 2> >(grep -v "^WARNING: Location" >&2)
fi
exec .venv/bin/jupyter lab notebooks/01_quickstart.ipynb "$@"
