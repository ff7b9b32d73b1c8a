"""The dataset registry: kind -> DatasetSpec(fetch, prepare, image_size).

Adding a dataset kind = one module with `fetch(cfg, raw_dir) -> dict`, `prepare(cfg, manifest) ->
PreparedData` and `image_size(block) -> (height, width) | None`, plus one line in `_SPECS` below (and the kind in config/schema.yaml's `dataset.kind` enum).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets import cifar10, digits, kirigami, npz
from workflow_lib.datasets.prepared import PreparedData

FetchFn = Callable[[DataConfig, Path], dict[str, Any]]
PrepareFn = Callable[[DataConfig, dict[str, Any]], PreparedData]
ImageSizeFn = Callable[[dict[str, Any]], "tuple[int, int] | None"]


@dataclass(frozen=True)
class DatasetSpec:
    """How to get (fetch) and read (prepare) one kind of dataset.

    fetch(cfg, raw_dir) puts/locates the raw files (raw_dir is the folder of the fetch manifest) and
    returns the manifest: {"kind", "files": {role: {"path", "sha256", "bytes"}}, "provenance": {...}, ...}.
    prepare(cfg, manifest) reads them into a PreparedData without a split (prepare_step adds it).
    image_size(block) is the (height, width) of the prepared images from the validated dataset block alone
    (None when the config cannot tell), so the config check can judge input_stride before any job runs.
    """

    name: str
    fetch: FetchFn
    prepare: PrepareFn
    image_size: ImageSizeFn
    description: str = ""


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in DATASETS:
        raise ValueError(f"dataset kind {spec.name!r} is registered twice")
    DATASETS[spec.name] = spec
    return spec


def get_dataset(kind: str) -> DatasetSpec:
    try:
        return DATASETS[kind]
    except KeyError:
        raise ValueError(f"unknown dataset kind {kind!r}; known kinds: {sorted(DATASETS)}") from None


_SPECS = (
    DatasetSpec("kirigami", kirigami.fetch, kirigami.prepare, kirigami.image_size, kirigami.DESCRIPTION),
    DatasetSpec("cifar10", cifar10.fetch, cifar10.prepare, cifar10.image_size, cifar10.DESCRIPTION),
    DatasetSpec("digits", digits.fetch, digits.prepare, digits.image_size, digits.DESCRIPTION),
    DatasetSpec("npz", npz.fetch, npz.prepare, npz.image_size, npz.DESCRIPTION),
)
for _spec in _SPECS:
    register_dataset(_spec)
