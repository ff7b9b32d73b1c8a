"""The simulations of a design space: a journal of simulator calls, and the table folded from it.

``results/{ds}/design/simulations/`` (the journal; never a Snakemake output, so neither a rerun nor a
changed config deletes it):

- ``oracle.json``: the command and the digest of the candidates the results belong to; a journal of another
  command or another design file is refused (move it away to simulate afresh), never mixed in.
- ``calls/<stem>.npz``: the designs one call of the command received ({designs}: x, id, ...);
  ``calls/<stem>.out.csv``: what the command wrote ({out}); ``calls/<stem>.log``: its stdout and stderr;
  ``calls/<stem>.csv``: the call's verdict, one row per design: id, y, status, attempt, seconds, designs, log,
  generation, batch. ``<stem>`` = ``g{generation}-b{batch}-a{attempt}-{UTC time}-{pid}``, unique per call.
- status: ``ok`` (a finite y), ``error`` (no finite y, or the call failed, on an attempt that will be
  retried), ``failed`` (the same on the last attempt: settled, excluded from picking).

A design is *settled* once a call recorded it ``ok`` or ``failed``; a settled design is never sent to the
command again (by a later generation, another picker or seed, a rerun, a retry of the same job). Only
``error`` designs are sent again, by the retry of their job. ``simulations.csv`` (``write_table``) has one
row per settled design.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from workflow_lib.design.config import DesignError
from workflow_lib.io import write_json_atomic, write_text_atomic

CALL_COLUMNS = ("id", "y", "status", "attempt", "seconds", "designs", "log", "generation", "batch")
TABLE_COLUMNS = ("id", "y", "status", "generation", "runs", "attempts", "seconds", "designs", "log")
SETTLED = ("ok", "failed")


@dataclass(frozen=True)
class Outcome:
    """The settled answer for one design (or the last error, while it is not settled)."""

    id: int
    y: float | None
    status: str  # ok | failed | error
    attempts: int  # calls that saw the design
    seconds: float  # wall time of the call that settled it
    designs: int  # designs in that call
    log: str
    generation: int


class Journal:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.calls = self.root / "calls"

    # ---- identity ---------------------------------------------------------------------------------
    def bind(self, command: str, digest: str, n_candidates: int) -> None:
        """Write oracle.json, or check that the journal holds results of this command on these candidates."""
        path = self.root / "oracle.json"
        identity = {"command": command, "candidates_digest": digest, "n_candidates": int(n_candidates)}
        if path.exists():
            try:
                held = json.loads(path.read_text())
            except ValueError as err:
                raise DesignError(f"design: {path} is unreadable ({err}); move it away to simulate afresh") from err
            if held != identity:
                what = "command" if held.get("command") != command else "design candidates"
                raise DesignError(f"design: the simulations in {self.root} come from another {what} "
                                  f"({held.get('command')!r}); move the folder away to simulate afresh")
            return
        write_json_atomic(path, identity)

    # ---- writing one call -------------------------------------------------------------------------
    def stem(self, generation: int, batch: int, attempt: int) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return f"g{generation:03d}-b{batch:04d}-a{attempt}-{stamp}-{os.getpid()}"

    def record(self, stem: str, rows: Iterable[dict[str, Any]]) -> Path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CALL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in CALL_COLUMNS})
        return write_text_atomic(self.calls / f"{stem}.csv", buffer.getvalue())

    # ---- reading ----------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, str]]:
        """Every recorded verdict, calls in time order."""
        if not self.calls.is_dir():
            return []
        rows = []
        for path in sorted(self.calls.glob("*.csv"), key=lambda p: (p.name.split("-")[3], p.name)):
            if path.name.endswith(".out.csv"):
                continue
            with open(path, newline="") as handle:
                rows += list(csv.DictReader(handle))
        return rows

    def outcomes(self) -> dict[int, Outcome]:
        """id -> its settled outcome (the first ok, else the failure), or its last error while unsettled."""
        result: dict[int, Outcome] = {}
        attempts: dict[int, int] = {}
        for row in self.rows():
            i = int(row["id"])
            attempts[i] = attempts.get(i, 0) + 1
            if i in result and result[i].status in SETTLED:
                continue
            y = float(row["y"]) if row["y"] not in ("", None) else None
            result[i] = Outcome(id=i, y=y if y is not None and math.isfinite(y) else None, status=row["status"],
                                attempts=0, seconds=float(row["seconds"] or 0), designs=int(row["designs"] or 0),
                                log=row["log"], generation=int(row["generation"]))
        return {i: Outcome(**{**vars(o), "attempts": attempts[i]}) for i, o in result.items()}

    def settled(self) -> dict[int, Outcome]:
        return {i: o for i, o in self.outcomes().items() if o.status in SETTLED}

    def sends(self) -> tuple[int, int]:
        """(designs sent to the command over all calls, distinct designs among them)."""
        ids = [int(row["id"]) for row in self.rows()]
        return len(ids), len(set(ids))


def write_table(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """simulations.csv: one row per settled design (TABLE_COLUMNS), by id."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: int(r["id"])):
        writer.writerow({k: _cell(row.get(k)) for k in TABLE_COLUMNS})
    return write_text_atomic(path, buffer.getvalue())


def read_table(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value
