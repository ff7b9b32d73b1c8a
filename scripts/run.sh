#!/usr/bin/env bash
# One command: set up, then run the whole workflow on the embedded offline default (config/config.yaml)
# and render results/report.html. Extra arguments go to snakemake (e.g. a target or --configfile).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-env.sh
export PATH="$ROOT/.venv/bin:$PATH"
snakemake --profile profiles/local "$@"
echo "[run] done: open $ROOT/results/report.html"
