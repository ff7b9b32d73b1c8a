"""Graphene kirigami (Hanakata et al., PRL 121, 255304, 2018): patterns, raw data, tiling, surrogate."""

from workflow_lib.kirigami.patterns import enumerate_valid_patterns, is_valid, sample_valid_patterns
from workflow_lib.kirigami.rawdata import (
    TARGET_NAMES,
    KirigamiFormatError,
    RawKirigami,
    read_raw,
    write_raw,
)
from workflow_lib.kirigami.tiling import pad, tile

__all__ = [
    "TARGET_NAMES",
    "KirigamiFormatError",
    "RawKirigami",
    "enumerate_valid_patterns",
    "is_valid",
    "pad",
    "read_raw",
    "sample_valid_patterns",
    "tile",
    "write_raw",
]
