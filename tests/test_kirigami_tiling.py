"""tile() and pad(): the published coarse-to-fine conversion (Hanakata et al., PRL 121, 255304, 2018)."""

from __future__ import annotations

import numpy as np
import pytest

from workflow_lib.kirigami import enumerate_valid_patterns, pad, tile
from workflow_lib.kirigami.patterns import is_valid, sample_valid_patterns


def reference_tile(patterns: np.ndarray) -> np.ndarray:
    """Straightforward per-cell loop, as in the published conversion: set each coarse cell's fine block."""
    images = np.zeros((len(patterns), 30, 80), dtype=np.uint8)
    for n, pattern in enumerate(np.asarray(patterns).reshape(-1, 15)):
        for r in range(3):
            for c in range(5):
                images[n, 10 * r : 10 * r + 10, 16 * c : 16 * c + 16] = 1
                if pattern[5 * r + c] == 0:
                    images[n, 10 * r + 4 : 10 * r + 7, 16 * c : 16 * c + 16] = 0
    return images


def test_all_ones_pattern_is_all_material() -> None:
    image = tile(np.ones((1, 15), dtype=np.uint8))
    assert image.shape == (1, 30, 80) and image.dtype == np.uint8
    assert np.all(image == 1)


@pytest.mark.parametrize("r, c", [(0, 0), (1, 2), (2, 4), (0, 4), (2, 0)])
def test_single_cut_clears_exactly_its_slit(r: int, c: int) -> None:
    pattern = np.ones((1, 3, 5), dtype=np.uint8)
    pattern[0, r, c] = 0
    image = tile(pattern)[0]
    expected = np.ones((30, 80), dtype=np.uint8)
    expected[10 * r + 4 : 10 * r + 7, 16 * c : 16 * c + 16] = 0
    np.testing.assert_array_equal(image, expected)
    assert int((image == 0).sum()) == 3 * 16


def test_mixed_pattern_matches_hand_written_image() -> None:
    # coarse rows: 1 0 1 1 1 / 0 0 1 1 0 / 1 1 1 1 0
    pattern = np.array([[1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0]], dtype=np.uint8)
    M, C = "1" * 16, "0" * 16  # 16 fine columns of material / of a cut
    pristine = M * 5
    rows = (
        [pristine] * 4 + [M + C + M + M + M] * 3 + [pristine] * 3  # coarse row 0
        + [pristine] * 4 + [C + C + M + M + C] * 3 + [pristine] * 3  # coarse row 1
        + [pristine] * 4 + [M + M + M + M + C] * 3 + [pristine] * 3  # coarse row 2
    )
    expected = np.array([[int(ch) for ch in row] for row in rows], dtype=np.uint8)
    assert expected.shape == (30, 80)
    np.testing.assert_array_equal(tile(pattern)[0], expected)


def test_accepts_both_shapes_and_any_integer_dtype() -> None:
    patterns = sample_valid_patterns(20, seed=3)
    flat = tile(patterns)
    np.testing.assert_array_equal(flat, tile(patterns.reshape(-1, 3, 5)))
    np.testing.assert_array_equal(flat, tile(patterns.astype(np.int64)))
    assert tile(np.zeros((0, 15), dtype=np.uint8)).shape == (0, 30, 80)


@pytest.mark.parametrize("bad", [np.ones((15,)), np.ones((2, 14)), np.ones((2, 5, 3)), np.ones((1, 3, 5, 1))])
def test_rejects_wrong_shapes(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        tile(bad)


@pytest.mark.parametrize("value", [2, -1, 0.5])
def test_rejects_non_binary_values(value: float) -> None:
    pattern = np.ones((2, 15))
    pattern[1, 7] = value
    with pytest.raises(ValueError, match=r"0/1.*pattern 1.*row 1, column 2"):
        tile(pattern)


def test_tile_matches_per_cell_loop_on_all_valid_patterns() -> None:
    """Acceptance: byte-for-byte equal to the per-cell reference on all 29,791 patterns."""
    patterns = enumerate_valid_patterns()
    assert patterns.shape == (29791, 15)
    images = tile(patterns)
    assert images.dtype == np.uint8 and images.flags.c_contiguous
    assert images.tobytes() == reference_tile(patterns).tobytes()


def test_pad_adds_zero_rows_above_and_below() -> None:
    images = tile(sample_valid_patterns(4, seed=0))
    padded = pad(images)
    assert padded.shape == (4, 32, 80) and padded.dtype == np.uint8
    assert np.all(padded[:, 0] == 0) and np.all(padded[:, -1] == 0)
    np.testing.assert_array_equal(padded[:, 1:-1], images)
    assert pad(images, rows=3).shape == (4, 36, 80)


def test_pad_zero_rows_returns_input_unchanged() -> None:
    images = tile(sample_valid_patterns(2, seed=1))
    assert pad(images, rows=0) is images


@pytest.mark.parametrize("rows", [-1, 1.5, True])
def test_pad_rejects_bad_rows(rows: object) -> None:
    with pytest.raises(ValueError, match="rows"):
        pad(tile(np.ones((1, 15))), rows=rows)  # type: ignore[arg-type]


def test_enumeration_is_complete_ordered_and_valid() -> None:
    patterns = enumerate_valid_patterns()
    assert patterns.shape == (29791, 15) and patterns.dtype == np.uint8
    assert np.all(is_valid(patterns))
    assert np.unique(patterns, axis=0).shape[0] == 29791
    codes = patterns.astype(np.int64) @ (1 << np.arange(14, -1, -1))
    assert np.all(np.diff(codes) > 0)  # documented order: ascending binary, index 0 most significant
    np.testing.assert_array_equal(patterns[0], [0, 0, 0, 0, 1] * 3)
    np.testing.assert_array_equal(patterns[-1], np.ones(15))


def test_is_valid_flags_fully_cut_rows_and_non_binary() -> None:
    patterns = np.ones((4, 3, 5))
    patterns[1, 2] = 0  # coarse row 2 fully cut
    patterns[2, 0, 0] = 2
    patterns[3, :, 1:] = 0  # one ligament left in each row: still valid
    np.testing.assert_array_equal(is_valid(patterns), [True, False, False, True])


def test_sample_is_seeded_distinct_and_bounded() -> None:
    a, b = sample_valid_patterns(50, seed=7), sample_valid_patterns(50, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_valid_patterns(50, seed=8))
    assert np.unique(a, axis=0).shape[0] == 50 and np.all(is_valid(a))
    with pytest.raises(ValueError):
        sample_valid_patterns(29792, seed=0)
