"""The authors' raw kirigami table (mddata/15grid_shuffled.dat of phanakata/ML_for_kirigami_design).

One pattern per line, 18 whitespace-separated numbers:
columns 0-14 the 3x5 cut pattern, row-major (1 = no cut, 0 = cut); column 15 yield strain;
column 16 toughness (stress-strain integral up to yield); column 17 yield stress.
Blank lines are ignored. Lines and columns in error messages: lines 1-based, columns 0-based.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_lib.io import write_text_atomic
from workflow_lib.kirigami.patterns import N_CELLS, N_COLS, N_ROWS
from workflow_lib.errors import UserError

TARGET_NAMES = ("yield_strain", "toughness", "yield_stress")
N_COLUMNS = N_CELLS + len(TARGET_NAMES)  # 18


class KirigamiFormatError(UserError, ValueError):
    """A raw kirigami file that breaks the 18-column format; the message names file, line and column."""


@dataclass(frozen=True)
class RawKirigami:
    patterns: np.ndarray  # (N, 15) uint8, 1 = no cut
    targets: np.ndarray  # (N, 3) float64, columns in TARGET_NAMES order
    path: Path


def _error(path: Path, line: int, problem: str, column: int | None = None) -> KirigamiFormatError:
    where = f"{path}:{line}" + ("" if column is None else f": column {column} (0-based)")
    return KirigamiFormatError(f"{where}: {problem}")


def _parse_line(path: Path, line_no: int, fields: list[str]) -> tuple[tuple[int, ...], list[float]]:
    if len(fields) != N_COLUMNS:
        raise _error(path, line_no, f"expected {N_COLUMNS} columns, found {len(fields)}")
    values = []
    for column, text in enumerate(fields):
        try:
            values.append(float(text))
        except ValueError:
            raise _error(path, line_no, f"not a number: {text!r}", column) from None
    pattern = []
    for column, value in enumerate(values[:N_CELLS]):
        if value not in (0.0, 1.0):
            raise _error(path, line_no, f"pattern value must be 0 or 1, found {fields[column]!r}", column)
        pattern.append(int(value))
    for column, value in enumerate(values[N_CELLS:], start=N_CELLS):
        name = TARGET_NAMES[column - N_CELLS]
        if not math.isfinite(value):
            raise _error(path, line_no, f"{name} is not finite: {fields[column]!r}", column)
        if value < 0:  # strain and stress at yield under tension, and the energy up to it, are all >= 0
            raise _error(path, line_no, f"{name} must be >= 0 under tension, found {fields[column]!r}", column)
    for row in range(N_ROWS):
        if not any(pattern[N_COLS * row : N_COLS * (row + 1)]):
            raise _error(
                path, line_no, f"coarse row {row} (columns {N_COLS * row}-{N_COLS * row + 4}) is entirely cut"
            )
    return tuple(pattern), values[N_CELLS:]


def read_raw(path: str | Path) -> RawKirigami:
    """Read and validate a raw kirigami file; KirigamiFormatError on the first problem found."""
    path = Path(path)
    patterns: list[tuple[int, ...]] = []
    targets: list[list[float]] = []
    first_line_of: dict[tuple[int, ...], int] = {}
    with open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            pattern, target = _parse_line(path, line_no, fields)
            if pattern in first_line_of:
                raise _error(path, line_no, f"duplicate pattern: same as line {first_line_of[pattern]}")
            first_line_of[pattern] = line_no
            patterns.append(pattern)
            targets.append(target)
    if not patterns:
        raise KirigamiFormatError(f"{path}: empty file (no data lines)")
    return RawKirigami(
        patterns=np.array(patterns, dtype=np.uint8),
        targets=np.array(targets, dtype=np.float64),
        path=path,
    )


def _check_writable(patterns: np.ndarray, targets: np.ndarray) -> None:
    """Refuse anything read_raw would reject, so every written file reads back."""
    if patterns.ndim != 2 or patterns.shape[1] != N_CELLS:
        raise ValueError(f"patterns must have shape (N, {N_CELLS}); got {patterns.shape}")
    if targets.shape != (patterns.shape[0], len(TARGET_NAMES)):
        raise ValueError(f"targets must have shape ({patterns.shape[0]}, {len(TARGET_NAMES)}); got {targets.shape}")
    if patterns.shape[0] == 0:
        raise ValueError("nothing to write: no patterns")
    if not np.all((patterns == 0) | (patterns == 1)):
        raise ValueError("patterns must be 0/1")
    if not np.all(np.isfinite(targets)) or np.any(targets < 0):
        raise ValueError("targets must be finite and >= 0")
    if not np.all(patterns.reshape(-1, N_ROWS, N_COLS).any(axis=2)):
        raise ValueError("a pattern has an entirely cut coarse row")
    if np.unique(patterns, axis=0).shape[0] != patterns.shape[0]:
        raise ValueError("patterns contain duplicates")


def format_raw(patterns: np.ndarray, targets: np.ndarray) -> str:
    """The 18-column text; targets as repr() so they read back bit for bit."""
    lines = []
    for pattern, target in zip(patterns.tolist(), targets.tolist()):
        lines.append(" ".join([*(str(int(v)) for v in pattern), *(repr(float(v)) for v in target)]))
    return "\n".join(lines) + "\n"


def write_raw(path: str | Path, patterns: np.ndarray, targets: np.ndarray) -> Path:
    """Write the 18-column format atomically (temporary file beside ``path``, then os.replace)."""
    patterns = np.asarray(patterns)
    targets = np.asarray(targets, dtype=np.float64)
    _check_writable(patterns, targets)
    return write_text_atomic(path, format_raw(patterns, targets))
