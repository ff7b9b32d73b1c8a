"""The command oracle: one simulation job runs the user's command on its designs, once per attempt.

``simulate_batch`` is the body of the ``design_simulate`` rule (one job per generation and batch slot):

1. Its slot file (written by the generation's pick job) names the designs; those the journal already settled
   (an earlier attempt of this job, or an earlier run of the workflow) are not sent again.
2. The rest go to one call of the command: ``{designs}`` (an .npz with x, id, and for kirigami pattern) and
   ``{out}`` (the CSV it must write, header ``id,y``) are replaced by absolute, shell-quoted paths (plain text
   replacement: other braces in the command stay as they are). The command runs in the workflow's working
   directory with the job's environment plus WORKFLOW_DESIGN_GENERATION / _BATCH / _ATTEMPT; its stdout and
   stderr go to the call's log.
3. A design is ``ok`` when the CSV holds one finite y for it, whatever the exit status (a simulator may
   finish some designs and exit 1 for the others); every other design of the call failed on this attempt.
4. The verdicts go to the journal (``table.Journal``). Failures on an attempt before the last raise
   ``SimulationRetry`` (exit status 1), so Snakemake runs the job again (``retries``: design.oracle.retries);
   on the last attempt they are recorded ``failed`` and the job succeeds: the designs stay in the table,
   excluded from picking, their runs' budgets counting them.
5. The job's output (``batch{b}.csv``) lists every design of the slot with its settled value and status.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np

from workflow_lib.design.table import Journal, Outcome, write_table
from workflow_lib.errors import UserError
from workflow_lib.io import savez_atomic

log = logging.getLogger("workflow_lib.design")


class SimulationRetry(Exception):
    """Designs failed on an attempt before the last: the job exits non-zero so that Snakemake retries it."""


class CommandError(UserError, ValueError):
    """The command template is unusable."""


def render(command: str, designs: Path, out: Path) -> str:
    if "{designs}" not in command or "{out}" not in command:
        raise CommandError(f"design.oracle.command must contain {{designs}} and {{out}}: {command!r}")
    return command.replace("{designs}", shlex.quote(str(designs.resolve()))).replace(
        "{out}", shlex.quote(str(out.resolve())))


def read_results(path: Path, asked: set[int]) -> dict[int, float]:
    """id -> finite y from the command's CSV; malformed, duplicated or unknown rows give nothing."""
    if not path.is_file():
        return {}
    values: dict[int, list[float]] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    i, y = int(row["id"]), float(row["y"])
                except (KeyError, TypeError, ValueError):
                    continue
                if i in asked:
                    values.setdefault(i, []).append(y)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        log.warning("design: unreadable results %s: %s", path, err)
        return {}
    return {i: ys[0] for i, ys in values.items() if len(ys) == 1 and math.isfinite(ys[0])}


def load_slot(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def simulate_batch(slot_path: str | Path, journal_dir: str | Path, out_path: str | Path, command: str,
                   generation: int, batch: int, attempt: int, attempts: int) -> dict[int, Outcome]:
    """Simulate one slot's unsettled designs (see the module docstring); returns the slot's outcomes."""
    journal = Journal(journal_dir)
    slot = load_slot(slot_path)
    ids = [int(i) for i in slot["id"]]
    settled = journal.settled()
    pending = [i for i in ids if i not in settled]
    final = attempt >= attempts
    if pending:
        _call(journal, slot, ids, pending, command, generation, batch, attempt, final)
        settled = journal.settled()
        unsettled = [i for i in ids if i not in settled]
        if unsettled:
            raise SimulationRetry(f"design: {len(unsettled)} of {len(pending)} designs failed on attempt {attempt} "
                                  f"of {attempts} (generation {generation}, batch {batch}): {unsettled[:10]}; "
                                  "the retry simulates only these")
    else:
        log.info("design: generation %d batch %d: all %d designs already simulated", generation, batch, len(ids))
    outcomes = {i: settled[i] for i in ids}
    write_table(out_path, [{**vars(o), "runs": ""} for o in outcomes.values()])
    return outcomes


def _call(journal: Journal, slot: dict[str, np.ndarray], ids: list[int], pending: list[int], command: str,
          generation: int, batch: int, attempt: int, final: bool) -> None:
    stem = journal.stem(generation, batch, attempt)
    rows = np.searchsorted(np.asarray(ids), pending) if ids == sorted(ids) else [ids.index(i) for i in pending]
    designs = savez_atomic(journal.calls / f"{stem}.npz",
                           **{key: value[rows] for key, value in slot.items() if key != "digest"})
    out, log_path = journal.calls / f"{stem}.out.csv", journal.calls / f"{stem}.log"
    env = dict(os.environ, WORKFLOW_DESIGN_GENERATION=str(generation), WORKFLOW_DESIGN_BATCH=str(batch),
               WORKFLOW_DESIGN_ATTEMPT=str(attempt))
    line = render(command, designs, out)
    log.info("design: generation %d batch %d attempt %d: %d designs -> %s", generation, batch, attempt,
             len(pending), line)
    t0 = time.perf_counter()
    with open(log_path, "w") as handle:
        code = subprocess.run(line, shell=True, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - t0
    values = read_results(out, set(pending))
    failed = "failed" if final else "error"
    journal.record(stem, [{"id": i, "y": values.get(i), "status": "ok" if i in values else failed,
                           "attempt": attempt, "seconds": seconds, "designs": len(pending), "log": str(log_path),
                           "generation": generation, "batch": batch} for i in pending])
    log.info("design: the command exited with %d after %.1f s: %d of %d designs ok (log %s)", code, seconds,
             len(values), len(pending), log_path)
