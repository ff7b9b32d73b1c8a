"""The lattice-spring surrogate: physics checks, an independent whole-sheet solve, the raw-file writer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.kirigami import TARGET_NAMES, read_raw
from workflow_lib.kirigami import surrogate
from workflow_lib.kirigami.lattice import FIXED, INTERIOR, condense_region, grid_bonds, region_bond_mask
from workflow_lib.kirigami.patterns import is_valid, sample_valid_patterns

YIELD_STRAIN, TOUGHNESS, YIELD_STRESS = range(3)


def pattern(*rows: str) -> np.ndarray:
    return np.array([[int(ch) for ch in "".join(rows)]], dtype=np.uint8)


PRISTINE = pattern("11111", "11111", "11111")
CUT_MIDDLE = pattern("11111", "11011", "11111")  # one interior slit: two cut tips
CUT_EDGE = pattern("01111", "11111", "11111")  # an edge notch
CUT_EDGE_MIRRORED = pattern("11110", "11111", "11111")
SERPENTINE = pattern("10000", "00001", "10000")  # alternating edge ligaments
CASES = np.vstack([PRISTINE, CUT_MIDDLE, CUT_EDGE, CUT_EDGE_MIRRORED, SERPENTINE])


@pytest.fixture(scope="module")
def response() -> surrogate.RawResponse:
    return surrogate.raw_response(CASES)


@pytest.fixture(scope="module")
def result(response: surrogate.RawResponse) -> surrogate.SurrogateResult:
    return surrogate.targets_from_response(response)


def whole_sheet_response(single: np.ndarray) -> tuple[float, float]:
    """Reference without region chaining: the whole 34x80 sheet condensed onto the top grip's x."""
    rows, cols = surrogate.SHEET_ROWS, surrogate.SHEET_COLS
    material = np.ones((rows, cols), dtype=bool)
    material[surrogate.GRIP_ROWS : rows - surrogate.GRIP_ROWS] = surrogate.tile(single)[0].astype(bool)
    bonds = grid_bonds(rows, cols)
    mask = region_bond_mask(bonds, material, 0, rows - 1)
    coordinates = np.full(2 * rows * cols, INTERIOR)
    x_dofs = 2 * np.arange(rows * cols).reshape(rows, cols)
    coordinates[x_dofs[:2].ravel()] = FIXED
    coordinates[x_dofs[-2:].ravel()] = 0
    coordinates[x_dofs[0, cols // 2] + 1] = FIXED
    region = condense_region(bonds, mask, coordinates, 1)
    delta = surrogate.FREE_LENGTH
    return float(region.schur[0, 0] * delta), float(region.strain_map[:, 0].max() * delta)


def test_pristine_is_calibrated(result: surrogate.SurrogateResult) -> None:
    assert result.stiffness[0] == pytest.approx(1000.0)
    np.testing.assert_allclose(result.targets[0], [0.25, 0.5 * 0.25 * 250.0, 250.0])


def test_targets_are_consistent_linear_curves(result: surrogate.SurrogateResult) -> None:
    strain, tough, stress = result.targets.T
    assert result.targets.shape == (len(CASES), len(TARGET_NAMES))
    np.testing.assert_allclose(stress, result.stiffness * strain)
    np.testing.assert_allclose(tough, 0.5 * stress * strain)
    assert np.all(np.isfinite(result.targets)) and np.all(result.targets > 0)


def test_pristine_is_the_stiffest_and_cuts_soften(result: surrogate.SurrogateResult) -> None:
    assert np.all(result.stiffness[1:] < result.stiffness[0])
    assert result.stiffness[1] < 0.95 * result.stiffness[0]  # a single cut costs over 5%
    assert result.stiffness[4] < 0.05 * result.stiffness[0]  # a serpentine is soft


def test_single_cut_concentrates_strain_and_fails_early(result: surrogate.SurrogateResult) -> None:
    # The cut tips concentrate bond strain: first failure comes at under 60% of the pristine strain
    # and stress (this linear model gives about 46% and 40%).
    for single in (1, 2):
        assert result.targets[single, YIELD_STRAIN] < 0.6 * result.targets[0, YIELD_STRAIN]
        assert result.targets[single, YIELD_STRESS] < 0.6 * result.targets[0, YIELD_STRESS]


def test_serpentine_bends_in_plane_past_pristine_strain_at_low_stress(result: surrogate.SurrogateResult) -> None:
    assert result.targets[4, YIELD_STRAIN] > result.targets[0, YIELD_STRAIN]
    assert result.targets[4, YIELD_STRESS] < 0.05 * result.targets[0, YIELD_STRESS]


def test_mirror_image_across_the_width_gives_the_same_answer(result: surrogate.SurrogateResult) -> None:
    np.testing.assert_allclose(result.targets[2], result.targets[3], rtol=1e-9)
    np.testing.assert_allclose(result.stiffness[2], result.stiffness[3], rtol=1e-9)


def test_work_of_grip_equals_spring_energy(response: surrogate.RawResponse) -> None:
    # F * Delta = 2 U for a linear system: checks the condensation and the bond-strain maps together.
    np.testing.assert_allclose(response.reaction * surrogate.FREE_LENGTH, 2 * response.energy, rtol=1e-9)


@pytest.mark.parametrize("case", [0, 1, 4])
def test_region_chaining_matches_whole_sheet_solve(response: surrogate.RawResponse, case: int) -> None:
    reaction, max_strain = whole_sheet_response(CASES[case : case + 1])
    assert response.reaction[case] == pytest.approx(reaction, rel=1e-8)
    assert response.max_bond_strain[case] == pytest.approx(max_strain, rel=1e-8)


def test_deterministic_and_order_preserving(result: surrogate.SurrogateResult) -> None:
    again = surrogate.simulate(CASES[::-1][:3])  # serpentine, mirrored edge, edge
    assert again.targets.tobytes() == result.targets[::-1][:3].tobytes()


def test_rejects_invalid_patterns() -> None:
    with pytest.raises(ValueError, match="valid"):
        surrogate.simulate(pattern("00000", "11111", "11111"))


def test_generate_raw_file_writes_readable_data_and_provenance(tmp_path: Path) -> None:
    path = surrogate.generate_raw_file(tmp_path / "kirigami.dat", n_patterns=2, seed=5)
    raw = read_raw(path)
    np.testing.assert_array_equal(raw.patterns, sample_valid_patterns(2, seed=5))
    assert np.all(is_valid(raw.patterns))
    assert raw.targets.tobytes() == surrogate.simulate(raw.patterns).targets.tobytes()
    provenance = json.loads(Path(f"{path}.provenance.json").read_text())
    assert provenance["source"] == "surrogate" and "not MD" in provenance["model"]
    assert provenance["n_patterns"] == 2 and provenance["seed"] == 5
    assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance["parameters"]["young_modulus_gpa_pristine"] == 1000.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kirigami.dat", "kirigami.dat.provenance.json"]
