#!/usr/bin/env bash
# quickstart.sh: set this machine up (scripts/setup.sh) and run the main job
# on the bundled default model (scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/demo.py
