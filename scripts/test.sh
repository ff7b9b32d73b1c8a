#!/usr/bin/env bash
# One command: set up, then run the whole test suite (tests/system_tools.py installs Debian's
# slurm-wlm, munge and chromium for the Slurm and browser tests when missing and running as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-env.sh
export PATH="$ROOT/.venv/bin:$PATH"
python tests/system_tools.py  # chromium, slurm-wlm and munge, before the workers start
# One pytest worker per core (at most 2: the workflow tests run Snakemake with --cores 2 themselves); a test
# file stays on one worker (--dist loadfile), so its module-scoped runs are made once. TEST_WORKERS=0: serial.
WORKERS="${TEST_WORKERS:-$(python -c 'import os; print(min(2, len(os.sched_getaffinity(0))))')}"
if [ "$WORKERS" -gt 1 ]; then set -- -n "$WORKERS" --dist loadfile "$@"; fi
exec python -m pytest "$@"
