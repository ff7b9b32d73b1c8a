"""The coarse 3x5 cut patterns of the graphene-kirigami dataset (Hanakata et al., PRL 121, 255304, 2018).

A pattern is 15 values over the 3x5 coarse grid, row-major (row r, column c at index 5r+c):
1 = no cut, 0 = cut. A coarse row whose five cells are all cut would sever the sheet, so those patterns
are excluded; each row then has 2^5 - 1 = 31 choices and 31^3 = 29,791 valid patterns remain.
"""

from __future__ import annotations

import numpy as np

N_ROWS = 3
N_COLS = 5
N_CELLS = N_ROWS * N_COLS
N_VALID = 31**3  # 29,791: 31 non-empty material sets per coarse row


def enumerate_valid_patterns() -> np.ndarray:
    """All 29,791 valid patterns as a (29791, 15) uint8 array.

    Order: ascending lexicographic order of the 15 values read as a binary number with index 0 the
    most significant digit (i.e. ``itertools.product((0, 1), repeat=15)`` order), invalid ones skipped.
    The first row is therefore the pattern with cuts everywhere except the last cell of each row.
    """
    codes = np.arange(2**N_CELLS, dtype=np.int64)
    shifts = np.arange(N_CELLS - 1, -1, -1, dtype=np.int64)
    bits = ((codes[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return np.ascontiguousarray(bits[is_valid(bits)])


def as_coarse_grid(patterns: np.ndarray) -> np.ndarray:
    """View (N,15) or (N,3,5) patterns as (N,3,5); ValueError on any other shape."""
    arr = np.asarray(patterns)
    if arr.ndim == 2 and arr.shape[1] == N_CELLS:
        return arr.reshape(arr.shape[0], N_ROWS, N_COLS)
    if arr.ndim == 3 and arr.shape[1:] == (N_ROWS, N_COLS):
        return arr
    raise ValueError(
        f"kirigami patterns must have shape (N, {N_CELLS}) or (N, {N_ROWS}, {N_COLS}); got {arr.shape}"
    )


def is_valid(patterns: np.ndarray) -> np.ndarray:
    """(N,) bool: True where a pattern is all 0/1 and no coarse row is entirely cut."""
    grid = as_coarse_grid(patterns)
    binary = np.all((grid == 0) | (grid == 1), axis=(1, 2))
    every_row_has_material = np.all(np.any(grid == 1, axis=2), axis=1)
    return binary & every_row_has_material


def sample_valid_patterns(n: int, seed: int) -> np.ndarray:
    """A deterministic subset of ``n`` distinct valid patterns, kept in enumeration order."""
    if not 0 <= n <= N_VALID:
        raise ValueError(f"n must be between 0 and {N_VALID}; got {n}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(N_VALID, size=n, replace=False))
    return enumerate_valid_patterns()[chosen]
