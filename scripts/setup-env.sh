#!/usr/bin/env bash
# Set up everything the workflow needs on a fresh Debian machine with Python 3.11:
#   - system tools (graphviz's `dot`) with apt-get when missing and running as root,
#     otherwise stop with a message that says exactly what to install;
#   - a virtual environment in .venv with the pinned packages (requirements.txt) and workflow_lib.
# Re-running is cheap: pip is skipped while requirements.txt and pyproject.toml are unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

need_apt() {  # need_apt <command> <debian package>
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian package $2 (for '$1')"
    if [ ! -f /tmp/.workflow_apt_updated ]; then apt-get update -qq && touch /tmp/.workflow_apt_updated; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "[setup] ERROR: '$1' is missing. Install the Debian package '$2' (as root: apt-get install $2) and rerun." >&2
    exit 1
  fi
}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || {
  echo "[setup] ERROR: Python 3.11 or newer is needed (found $($PYTHON --version 2>&1))." >&2; exit 1; }
need_apt dot graphviz

STAMP=".venv/.requirements.sha256"
WANT="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing pinned packages into .venv (torch 2.14.1 takes a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$WANT" > "$STAMP"
fi
# Snakemake reports a YAML syntax error in --configfile without file or line: workflow_lib.yaml_errors adds
# them (and names a target written after --configfile, which Snakemake reads as a config file); this
# one-line .pth imports it at interpreter start in this venv only (see the module's docstring).
SITE="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import workflow_lib.yaml_errors" > "$SITE/workflow_lib_yaml_errors.pth"
echo "[setup] environment ready: $ROOT/.venv"
