"""read_raw / write_raw: the authors' 18-column kirigami table, validated with file:line:column errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.kirigami import TARGET_NAMES, KirigamiFormatError, read_raw, write_raw
from workflow_lib.kirigami.patterns import sample_valid_patterns

DATA = Path(__file__).parent / "data" / "kirigami"
PRISTINE = "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 0.25 31.0 250.0"
ONE_CUT = "0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 0.2 20.0 180.0"


def write_lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "raw.dat"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_target_names() -> None:
    assert TARGET_NAMES == ("yield_strain", "toughness", "yield_stress")


def test_reads_fixture_with_tabs_exponents_and_blank_lines() -> None:
    raw = read_raw(DATA / "sample_4.dat")
    assert raw.patterns.shape == (4, 15) and raw.patterns.dtype == np.uint8
    assert raw.targets.shape == (4, 3) and raw.targets.dtype == np.float64
    np.testing.assert_array_equal(raw.patterns[2], [1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(raw.targets[1], [0.19, 20.25, 180.0])
    np.testing.assert_array_equal(raw.targets[3], [1.05, 3.0, 5.5])
    assert raw.path == DATA / "sample_4.dat"


def test_pattern_values_written_as_floats_are_accepted(tmp_path: Path) -> None:
    path = write_lines(tmp_path, " ".join(["1.0"] * 15 + ["0.1", "0.2", "0.3"]))
    assert read_raw(path).patterns.tolist() == [[1] * 15]


def test_write_then_read_round_trips_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    patterns = sample_valid_patterns(200, seed=1)
    targets = np.abs(rng.normal(size=(200, 3))) * np.array([1e-3, 1e5, 1e-12])
    targets[0] = [np.nextafter(0.1, 1.0), 5e-324, -0.0]
    path = write_raw(tmp_path / "sub" / "out.dat", patterns, targets)
    raw = read_raw(path)
    np.testing.assert_array_equal(raw.patterns, patterns)
    assert raw.targets.tobytes() == targets.tobytes()
    assert len(path.read_text().splitlines()[0].split()) == 18
    assert [p.name for p in path.parent.iterdir()] == ["out.dat"]  # no temporary left behind


def test_write_refuses_bad_input_and_leaves_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "out.dat"
    path.write_text("previous\n")
    patterns = sample_valid_patterns(3, seed=0)
    good = np.ones((3, 3))
    bad_cases = [
        (patterns[:, :14], good),
        (patterns, np.ones((3, 2))),
        (patterns, np.array([[1.0, np.nan, 1.0]] * 3)),
        (np.where(patterns == 1, 2, 0), good),
        (np.vstack([patterns[:2], patterns[:1]]), good),
        (np.zeros((3, 15), dtype=np.uint8), good),
    ]
    for bad_patterns, bad_targets in bad_cases:
        with pytest.raises(ValueError):
            write_raw(path, bad_patterns, bad_targets)
    assert path.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["out.dat"]


@pytest.mark.parametrize(
    "lines, pattern",
    [
        ((PRISTINE, "1 1 1"), r"raw\.dat:2: expected 18 columns, found 3"),
        ((PRISTINE, ONE_CUT + " 7"), r"raw\.dat:2: expected 18 columns, found 19"),
        ((PRISTINE.replace("0.25", "abc"),), r"raw\.dat:1: column 15 \(0-based\): not a number: 'abc'"),
        ((ONE_CUT, "1 1 1 2 1" + PRISTINE[9:]), r"raw\.dat:2: column 3 \(0-based\): pattern value must be 0 or 1"),
        ((ONE_CUT, "1 0.5" + PRISTINE[3:]), r"raw\.dat:2: column 1 \(0-based\): pattern value"),
        ((PRISTINE.replace("31.0", "nan"),), r"raw\.dat:1: column 16 \(0-based\): toughness is not finite"),
        ((PRISTINE.replace("250.0", "-inf"),), r"raw\.dat:1: column 17 \(0-based\): yield_stress is not finite"),
        (
            (PRISTINE, "1 1 1 1 1 0 0 0 0 0" + PRISTINE[19:]),
            r"raw\.dat:2: coarse row 1 \(columns 5-9\) is entirely cut",
        ),
        ((PRISTINE, ONE_CUT, "", PRISTINE), r"raw\.dat:4: duplicate pattern: same as line 1"),
    ],
)
def test_format_errors_name_file_line_and_column(tmp_path: Path, lines: tuple[str, ...], pattern: str) -> None:
    path = write_lines(tmp_path, *lines)
    with pytest.raises(KirigamiFormatError, match=pattern) as caught:
        read_raw(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.dat"
    path.write_text(text)
    with pytest.raises(KirigamiFormatError, match=r"empty\.dat: empty file"):
        read_raw(path)
