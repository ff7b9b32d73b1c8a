"""The kirigami surrogate as a design-loop simulator (``python -m workflow_lib simulate-kirigami``).

Reads the designs file the command oracle writes (``id`` (k,) and ``pattern`` (k, 3, 5); or, for an npz
design space of coarse patterns, ``x`` (k, 1, 3, 5)), runs ``surrogate.simulate`` and writes ``id,y`` for the
chosen target. A pattern that is not a valid cut pattern gets no row (the oracle records it as failed). The
values are rounded to float32 like the prepared data and the lookup table, so the command and the lookup
oracle answer alike.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from workflow_lib.errors import UserError
from workflow_lib.io import write_text_atomic
from workflow_lib.kirigami.patterns import is_valid
from workflow_lib.kirigami.rawdata import TARGET_NAMES


class DesignsFileError(UserError, ValueError):
    """The designs file holds no kirigami patterns."""


def read_patterns(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids (k,), patterns (k, 3, 5) uint8) of a designs file."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    if "id" not in arrays:
        raise DesignsFileError(f"{path}: no key 'id'")
    if "pattern" in arrays:
        patterns = arrays["pattern"]
    elif "x" in arrays and arrays["x"].shape[1:] == (1, 3, 5):
        patterns = arrays["x"][:, 0]
    else:
        raise DesignsFileError(f"{path}: needs 'pattern' (k, 3, 5) or 'x' (k, 1, 3, 5) of cut patterns")
    ids = np.asarray(arrays["id"], dtype=np.int64).reshape(-1)
    patterns = np.asarray(patterns).reshape(len(patterns), 3, 5)
    if len(ids) != len(patterns) or not np.isin(patterns, (0, 1)).all():
        raise DesignsFileError(f"{path}: 'id' and the patterns must have one row per design, values 0 or 1")
    return ids, patterns.astype(np.uint8)


def simulate_designs(designs: str | Path, out: str | Path, target: str, workers: int = 1) -> int:
    """Write ``out`` (id,y) for every valid pattern of ``designs``; returns the rows written."""
    from workflow_lib.kirigami.surrogate import simulate

    if target not in TARGET_NAMES:
        raise DesignsFileError(f"--target must be one of {TARGET_NAMES}, got {target!r}")
    ids, patterns = read_patterns(designs)
    valid = np.asarray(is_valid(patterns), dtype=bool)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "y"])
    if valid.any():
        values = simulate(patterns[valid], workers=max(1, workers)).targets[:, TARGET_NAMES.index(target)]
        for i, y in zip(ids[valid], values.astype(np.float32).astype(np.float64)):
            writer.writerow([int(i), repr(float(y))])
    write_text_atomic(out, buffer.getvalue())
    return int(valid.sum())
