"""A physical surrogate for the kirigami MD: linear lattice-spring tension test, first bond failure.

THIS IS NOT MOLECULAR DYNAMICS. It is the offline default's stand-in for the MD table of Hanakata et
al. (PRL 121, 255304, 2018), which we cannot ship.

Model. The 30 x 80 patterned cells (tile() of the coarse pattern) sit between two pristine grips of 2
rows each, as in the MD setup (34 x 80 cells of 4.118 A x 2.3775 A). Every material cell is a node;
central-force springs of one stiffness join x, y and diagonal neighbours (lattice.py). The grips are
rigid along the load x (bottom held, top displaced by Delta) and free to contract along y (one node
holds the y translation), so away from the grips a pristine sheet strains uniformly and its bonds
along x carry the applied strain eps = Delta / (31 * 4.118 A) (31 = spacing of the innermost grip rows).
Linear elasticity, small strain, in plane. The answer for a pattern:
  stiffness   E = F / (eps * L_y * t) for grip reaction F; every sheet has the same section L_y * t
              and springs, so E is scaled to make the pristine sheet's 1000 GPa (graphene-like);
  yield strain eps_y = applied strain at which the most strained bond reaches the critical bond
              strain (first failure); the critical strain is set so the pristine sheet yields at 0.25;
  yield stress sigma_y = E * eps_y;  toughness = 0.5 * sigma_y * eps_y (area under the linear curve).

What it captures: the loss of stiffness caused by cuts, and the stress (strain) concentration at cut
tips and in the ligaments between cuts: a single cut roughly halves the strain and stress of first
failure. Staggered cuts that leave narrow, offset ligaments (e.g. alternating edge ligaments) let the
strips between cuts bend in plane, and there the model, too, yields at strains above the pristine
0.25 (about 4% of the 29,791 patterns, at most ~1.3), at very low stress.
What it misses: the rest of what makes kirigami stretchable in MD. There, ligaments rotate, bend and
buckle out of plane as the cuts open; this model is small-strain and in-plane, with no geometric
nonlinearity (no rotation stiffening, its large yield strains are linear extrapolations), no
out-of-plane motion, no temperature, no AIREBO bond chemistry, no post-yield behaviour and no MD
yield-peak detection. The rigid grips also concentrate strain at their corners (the pristine sheet's
most strained bond carries 1.21x the applied strain; the critical bond strain is calibrated on it).
Use it to exercise the workflow, not to draw physics conclusions.

Speed. Cuts only change three rows per coarse row, so the sheet is split into three regions, each
depending on one coarse row's 5 cut bits (31 options): bottom (sheet rows 0-15, coarse row 0),
middle (rows 15-19, coarse row 1), top (rows 19-33, coarse row 2). Each region is condensed once per
row pattern onto its boundary rows (Schur complements); a pattern then costs one 160-unknown dense
solve plus dense maps from boundary displacements to every bond strain.
"""

from __future__ import annotations

import functools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from workflow_lib.io import file_digest, write_json_atomic
from workflow_lib.kirigami.lattice import (
    CELL_DX,
    CELL_DY,
    FIXED,
    INTERIOR,
    Bonds,
    CondensedRegion,
    condense_region,
    grid_bonds,
    region_bond_mask,
)
from workflow_lib.kirigami.patterns import (
    N_COLS,
    N_ROWS,
    as_coarse_grid,
    enumerate_valid_patterns,
    is_valid,
    sample_valid_patterns,
)
from workflow_lib.kirigami.rawdata import write_raw
from workflow_lib.kirigami.tiling import FINE_COLS, FINE_ROWS, tile

GRIP_ROWS = 2  # pristine rows at each x-end, where MD applies the load
SHEET_ROWS = FINE_ROWS + 2 * GRIP_ROWS  # 34
SHEET_COLS = FINE_COLS  # 80
FREE_LENGTH = (SHEET_ROWS - 2 * GRIP_ROWS + 1) * CELL_DX  # A, innermost bottom grip row to top one
ROW_DOFS = 2 * SHEET_COLS  # (x, y) per node of one row

YOUNG_MODULUS_GPA = 1000.0  # pristine sheet; graphene's ~1 TPa (Lee et al., Science 321, 385, 2008)
PRISTINE_YIELD_STRAIN = 0.25  # pristine sheet's first-failure strain; graphene's intrinsic ~0.25 (Lee et al.)

# Sheet rows bounding each region; boundary rows are always pristine (cuts are fine rows 4-6 of 10).
BOTTOM_ROWS = (0, GRIP_ROWS + 13)  # rows 0..15, coarse row 0 cuts sheet rows 6-8
MIDDLE_ROWS = (GRIP_ROWS + 13, GRIP_ROWS + 17)  # rows 15..19, coarse row 1 cuts rows 16-18
TOP_ROWS = (GRIP_ROWS + 17, SHEET_ROWS - 1)  # rows 19..33, coarse row 2 cuts rows 26-28
HELD_Y_NODE = (0, SHEET_COLS // 2)  # removes the rigid y translation
MASTER = ROW_DOFS  # top region: coordinate of the rigid top grip's x displacement (after row 19)

MODEL = (
    "linear 2D central-force lattice springs (x, y, diagonal neighbours) on the 34x80 cell sheet, "
    "uniaxial tension between rigid grips, first bond failure; not MD"
)


@dataclass(frozen=True)
class SurrogateResult:
    targets: np.ndarray  # (N, 3): yield strain, toughness (GPa), yield stress (GPa) (TARGET_NAMES order)
    stiffness: np.ndarray  # (N,) effective Young's modulus in GPa


@dataclass(frozen=True)
class RawResponse:
    """Per unit applied strain, in lattice units: largest tensile bond strain, grip reaction, energy."""

    max_bond_strain: np.ndarray
    reaction: np.ndarray
    energy: np.ndarray


def parameters() -> dict:
    """The model's parameters, for the provenance sidecar."""
    return {
        "cell_dx_angstrom": CELL_DX,
        "cell_dy_angstrom": CELL_DY,
        "sheet_cells": [SHEET_ROWS, SHEET_COLS],
        "grip_rows": GRIP_ROWS,
        "young_modulus_gpa_pristine": YOUNG_MODULUS_GPA,
        "yield_strain_pristine": PRISTINE_YIELD_STRAIN,
        "critical_bond_strain": PRISTINE_YIELD_STRAIN * _pristine().max_bond_strain[0],
        "springs": "x, y and both diagonals, one spring constant",
        "grips": "rigid along x, free along y",
    }


def _row_codes(grid: np.ndarray) -> np.ndarray:
    """(N,3,5) -> (N,3) ints 0..31 naming each coarse row's cut bits."""
    return (grid.astype(np.int64) * (1 << np.arange(N_COLS - 1, -1, -1))).sum(axis=2)


def _sheet_material(coarse_row: int, code: int) -> np.ndarray:
    """(34,80) bool material of a sheet cut only in ``coarse_row`` (the others are irrelevant there)."""
    pattern = np.ones((1, N_ROWS, N_COLS), dtype=np.uint8)
    pattern[0, coarse_row] = (code >> np.arange(N_COLS - 1, -1, -1)) & 1
    sheet = np.ones((SHEET_ROWS, SHEET_COLS), dtype=bool)
    sheet[GRIP_ROWS : GRIP_ROWS + FINE_ROWS] = tile(pattern)[0].astype(bool)
    return sheet


def _coordinates() -> np.ndarray:
    """A coordinate_of_dof array with every dof interior, to be filled in per region."""
    return np.full(2 * SHEET_ROWS * SHEET_COLS, INTERIOR, dtype=np.int64)


def _row_dofs(row: int) -> slice:
    return slice(2 * row * SHEET_COLS, 2 * (row + 1) * SHEET_COLS)


def _grip_x_dofs(rows: range) -> slice:
    # x dofs of whole rows: every other dof from the first row's first node.
    return slice(2 * rows.start * SHEET_COLS, 2 * rows.stop * SHEET_COLS, 2)


class _Regions:
    """Condensed regions per (region, row code), built on first use."""

    def __init__(self) -> None:
        self.bonds: Bonds = grid_bonds(SHEET_ROWS, SHEET_COLS)
        self.cache: dict[tuple[str, int], CondensedRegion] = {}

    def get(self, region: str, code: int) -> CondensedRegion:
        key = (region, int(code))
        if key not in self.cache:
            self.cache[key] = getattr(self, f"_{region}")(int(code))
        return self.cache[key]

    def _bottom(self, code: int) -> CondensedRegion:
        first, last = BOTTOM_ROWS
        mask = region_bond_mask(self.bonds, _sheet_material(0, code), first, last, (last,))
        coordinates = _coordinates()
        coordinates[_row_dofs(last)] = np.arange(ROW_DOFS)
        coordinates[_grip_x_dofs(range(GRIP_ROWS))] = FIXED
        coordinates[2 * (HELD_Y_NODE[0] * SHEET_COLS + HELD_Y_NODE[1]) + 1] = FIXED
        return condense_region(self.bonds, mask, coordinates, ROW_DOFS)

    def _middle(self, code: int) -> CondensedRegion:
        first, last = MIDDLE_ROWS
        mask = region_bond_mask(self.bonds, _sheet_material(1, code), first, last)
        coordinates = _coordinates()
        coordinates[_row_dofs(first)] = np.arange(ROW_DOFS)
        coordinates[_row_dofs(last)] = ROW_DOFS + np.arange(ROW_DOFS)
        return condense_region(self.bonds, mask, coordinates, 2 * ROW_DOFS)

    def _top(self, code: int) -> CondensedRegion:
        first, last = TOP_ROWS
        mask = region_bond_mask(self.bonds, _sheet_material(2, code), first, last, (first,))
        coordinates = _coordinates()
        coordinates[_row_dofs(first)] = np.arange(ROW_DOFS)
        coordinates[_grip_x_dofs(range(SHEET_ROWS - GRIP_ROWS, SHEET_ROWS))] = MASTER
        return condense_region(self.bonds, mask, coordinates, ROW_DOFS + 1)


def _interface_displacements(codes: np.ndarray, regions: _Regions, delta: float) -> tuple[np.ndarray, ...]:
    """Displacements of sheet rows 15 and 19 and the grip reaction for each pattern."""
    n = codes.shape[0]
    u15, u19, reaction = np.zeros((n, ROW_DOFS)), np.zeros((n, ROW_DOFS)), np.zeros(n)
    pairs, pair_of = np.unique(codes[:, :2], axis=0, return_inverse=True)
    for p, (c0, c1) in enumerate(pairs):
        idx = np.flatnonzero(pair_of.ravel() == p)
        below = regions.get("bottom", c0).schur
        middle = regions.get("middle", c1).schur
        low, high = slice(0, ROW_DOFS), slice(ROW_DOFS, 2 * ROW_DOFS)
        # Eliminate row 15 (bottom region + middle region) to get the stiffness seen from row 19.
        recover15 = -np.linalg.solve(middle[low, low] + below, middle[low, high])
        from_below = middle[high, high] + middle[high, low] @ recover15
        tops = np.stack([regions.get("top", c2).schur for c2 in codes[idx, 2]])
        system = from_below[None] + tops[:, :ROW_DOFS, :ROW_DOFS]
        rhs = -tops[:, :ROW_DOFS, MASTER] * delta
        u19[idx] = np.linalg.solve(system, rhs[..., None])[..., 0]
        u15[idx] = u19[idx] @ recover15.T
        # Force on the top grip: its row of the condensed top region times (u19, Delta).
        reaction[idx] = np.einsum("nk,nk->n", tops[:, MASTER, :ROW_DOFS], u19[idx])
        reaction[idx] += tops[:, MASTER, MASTER] * delta
    return u15, u19, reaction


def _bond_extremes(coordinates: np.ndarray, region: CondensedRegion) -> tuple[np.ndarray, np.ndarray]:
    strains = coordinates @ region.strain_map.T
    return strains.max(axis=1), 0.5 * (strains**2) @ region.bond_weight


def raw_response(patterns: np.ndarray) -> RawResponse:
    """Lattice response per unit applied strain (Delta = FREE_LENGTH) for (N,15)|(N,3,5) patterns."""
    grid = as_coarse_grid(patterns)
    if not np.all(is_valid(grid)):
        raise ValueError("surrogate needs valid 0/1 patterns with no entirely cut coarse row")
    # Small dense solves: one BLAS thread is several times faster than two on a busy machine,
    # and parallelism comes from worker processes instead.
    with threadpool_limits(1):
        return _response_of_codes(_row_codes(grid))


def _response_of_codes(codes: np.ndarray) -> RawResponse:
    regions = _Regions()
    delta = FREE_LENGTH
    u15, u19, reaction = _interface_displacements(codes, regions, delta)
    ones = np.full((codes.shape[0], 1), delta)
    region_inputs = {"bottom": u15, "middle": np.hstack([u15, u19]), "top": np.hstack([u19, ones])}
    max_strain = np.full(codes.shape[0], -np.inf)
    energy = np.zeros(codes.shape[0])
    for column, name in enumerate(("bottom", "middle", "top")):
        for code in np.unique(codes[:, column]):
            idx = np.flatnonzero(codes[:, column] == code)
            peak, part = _bond_extremes(region_inputs[name][idx], regions.get(name, code))
            max_strain[idx] = np.maximum(max_strain[idx], peak)
            energy[idx] += part
    return RawResponse(max_bond_strain=max_strain, reaction=reaction, energy=energy)


@functools.lru_cache(maxsize=1)
def _pristine() -> RawResponse:
    """The pristine sheet's response, the calibration reference (computed once per process)."""
    return raw_response(np.ones((1, N_ROWS * N_COLS), dtype=np.uint8))


def targets_from_response(response: RawResponse) -> SurrogateResult:
    """Calibrate to the pristine sheet and turn the linear response into the three MD targets."""
    pristine = _pristine()
    stiffness = YOUNG_MODULUS_GPA * response.reaction / pristine.reaction[0]
    critical_bond_strain = PRISTINE_YIELD_STRAIN * pristine.max_bond_strain[0]
    yield_strain = critical_bond_strain / response.max_bond_strain
    yield_stress = stiffness * yield_strain
    toughness = 0.5 * yield_stress * yield_strain
    return SurrogateResult(targets=np.stack([yield_strain, toughness, yield_stress], axis=1), stiffness=stiffness)


def _simulate_chunk(patterns: np.ndarray) -> SurrogateResult:
    return targets_from_response(raw_response(patterns))


def simulate(patterns: np.ndarray, workers: int = 1) -> SurrogateResult:
    """Surrogate targets for (N,15)|(N,3,5) valid patterns; deterministic, order preserved."""
    grid = as_coarse_grid(patterns)
    if workers <= 1 or grid.shape[0] < 2 * workers:
        return targets_from_response(raw_response(grid))
    # Contiguous chunks of patterns sorted by code share most condensed regions.
    order = np.argsort(_row_codes(grid) @ np.array([1024, 32, 1]), kind="stable")
    chunks = np.array_split(order, workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_simulate_chunk, [np.ascontiguousarray(grid[c]) for c in chunks]))
    targets = np.empty((grid.shape[0], 3))
    stiffness = np.empty(grid.shape[0])
    for chunk, result in zip(chunks, results):
        targets[chunk] = result.targets
        stiffness[chunk] = result.stiffness
    return SurrogateResult(targets=targets, stiffness=stiffness)


def generate_raw_file(path: str | Path, n_patterns: int | None = None, seed: int = 0, workers: int = 1) -> Path:
    """Write surrogate data in the authors' 18-column format plus ``path + '.provenance.json'``.

    ``n_patterns=None``: all 29,791 valid patterns (enumeration order); an int: a seeded subset.
    """
    path = Path(path)
    patterns = enumerate_valid_patterns() if n_patterns is None else sample_valid_patterns(n_patterns, seed)
    result = simulate(patterns, workers=workers)
    write_raw(path, patterns, result.targets)
    provenance = {
        "source": "surrogate",
        "model": MODEL,
        "parameters": parameters(),
        "n_patterns": int(patterns.shape[0]),
        "seed": seed,
        "sha256": file_digest(path, "sha256"),
    }
    write_json_atomic(Path(f"{path}.provenance.json"), provenance)
    return path
