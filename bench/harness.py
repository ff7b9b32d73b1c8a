"""What the step benchmarks share: timing a step, and running one case in its own process.

A case runs in a fresh subprocess (``<script> --_child <case JSON>``, printing its result as the last line
of JSON), so its peak-RSS number and a crash (a segfault is exit -11) stay in that case.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


def time_steps(step: Callable[[], object], steps: int, warmup: int = 0,
               sync: Callable[[], None] = lambda: None) -> list[float]:
    """Seconds of each of ``steps`` calls after ``warmup`` untimed ones; ``sync`` waits for the device."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        sync()
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return times


def spawn(script: str, case: dict, stderr_tail: int = 600) -> dict:
    """Run ``case`` with ``script`` in a fresh process; a failure comes back as the case plus its error."""
    cmd = [sys.executable, str(Path(script).resolve()), "--_child", json.dumps(case)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {**case, "error": f"exit {proc.returncode}", "stderr": proc.stderr[-stderr_tail:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spawn_call(module_file: str, function: str, *args) -> dict:
    """``function(*args)`` of the module at ``module_file`` in a fresh process (its JSON result)."""
    path = Path(module_file).resolve()
    code = (f"import json, sys; sys.path.insert(0, {str(path.parent)!r}); import {path.stem} as m; "
            f"print(json.dumps(m.{function}(*json.loads(sys.argv[1]))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])
