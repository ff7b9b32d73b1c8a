"""Coarse 3x5 cut pattern -> fine 30x80 material map (the published conversion, Hanakata et al. 2018).

The sheet's patterned region is 30 x 80 graphene lattice cells (rows along the loading direction x,
columns along the width y). Coarse cell (r, c) covers fine rows 10r..10r+9 and columns 16c..16c+15.
A cut (0) removes fine rows 10r+4, 10r+5, 10r+6 across those 16 columns: a slit 3 cells long in x and
16 cells wide in y, perpendicular to the load. Everything else is material (1).
"""

from __future__ import annotations

import numpy as np

from workflow_lib.kirigami.patterns import N_COLS, N_ROWS, as_coarse_grid

BLOCK_ROWS = 10
BLOCK_COLS = 16
FINE_ROWS = N_ROWS * BLOCK_ROWS  # 30
FINE_COLS = N_COLS * BLOCK_COLS  # 80
CUT_ROWS_IN_BLOCK = slice(4, 7)  # rows 4, 5, 6 of each 10-row block


def _checked_coarse(patterns: np.ndarray) -> np.ndarray:
    grid = as_coarse_grid(patterns)
    if grid.size and not np.all((grid == 0) | (grid == 1)):
        bad = np.argwhere((grid != 0) & (grid != 1))[0]
        raise ValueError(
            f"kirigami patterns must be 0/1; pattern {bad[0]} has {grid[tuple(bad)]!r} "
            f"at coarse cell (row {bad[1]}, column {bad[2]})"
        )
    return grid.astype(np.uint8, copy=False)


def _row_bands() -> np.ndarray:
    """(32, 10, 80): the fine band of one coarse row for each of its 2^5 cut settings (code = the five
    0/1 values read as a binary number, column 0 most significant)."""
    bits = (np.arange(2**N_COLS)[:, None] >> np.arange(N_COLS - 1, -1, -1)[None, :]) & 1
    bands = np.ones((2**N_COLS, BLOCK_ROWS, FINE_COLS), dtype=np.uint8)
    # A cut clears rows 4-6 of the band across the 16 fine columns of its coarse cell.
    bands[:, CUT_ROWS_IN_BLOCK, :] = np.repeat(bits, BLOCK_COLS, axis=1)[:, None, :]
    return bands


def tile(patterns: np.ndarray) -> np.ndarray:
    """(N,15) or (N,3,5) 0/1 patterns -> (N,30,80) uint8 fine material maps (1 = material)."""
    grid = _checked_coarse(patterns)
    codes = grid.astype(np.intp) @ (1 << np.arange(N_COLS - 1, -1, -1))
    # Each coarse row only selects one of 32 ready-made bands: a single gather writes the images,
    # about twice as fast as filling ones and then clearing the slits.
    return _row_bands()[codes].reshape(grid.shape[0], FINE_ROWS, FINE_COLS)


def pad(images: np.ndarray, rows: int = 1) -> np.ndarray:
    """Add ``rows`` zero rows above and below each image ((N,30,80) -> (N,30+2*rows,80)).

    ``rows=0`` returns ``images`` itself, unchanged.
    """
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
        raise ValueError(f"pad rows must be a non-negative integer; got {rows!r}")
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W); got {arr.shape}")
    if rows == 0:
        return images
    return np.pad(arr, ((0, 0), (rows, rows), (0, 0)), mode="constant", constant_values=0)
