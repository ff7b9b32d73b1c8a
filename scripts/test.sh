#!/usr/bin/env bash
# One command: set up, then run the whole test suite (the Slurm and browser tests install
# Debian's slurm-wlm, munge and chromium themselves when missing and running as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-env.sh
export PATH="$ROOT/.venv/bin:$PATH"
exec python -m pytest "$@"
