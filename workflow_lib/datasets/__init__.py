"""The dataset registry and the prepared-data format (see docs/DESIGN.md)."""

from workflow_lib.datasets.fetch import DataUnavailableError
from workflow_lib.datasets.npz import NpzFormatError
from workflow_lib.datasets.prepared import SEARCH_TRAIN, SEARCH_VAL, TEST, PreparedData, PreparedDataError
from workflow_lib.datasets.registry import DATASETS, DatasetSpec, get_dataset, register_dataset
from workflow_lib.datasets.splits import make_split

__all__ = [
    "DATASETS",
    "DataUnavailableError",
    "DatasetSpec",
    "NpzFormatError",
    "PreparedData",
    "PreparedDataError",
    "SEARCH_TRAIN",
    "SEARCH_VAL",
    "TEST",
    "get_dataset",
    "make_split",
    "register_dataset",
]
