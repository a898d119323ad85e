#!/usr/bin/env bash
# Set up (first run only), then play a short debugging episode on task1 that ends in a graded fix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/whip demo "$@"
