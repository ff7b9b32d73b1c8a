"""CIFAR-10 (Krizhevsky, 2009): the 60,000 32x32 colour images, with the official test set (split.method: official).

fetch: use <source.path or data/cifar10>/cifar-10-batches-py if present, else download it with
torchvision (needs network). prepare: read the python-pickle batches (the format torchvision's CIFAR10
reads), pool train + test and keep all or a seeded subset (source.subset).

The batches are read directly rather than through torchvision.datasets.CIFAR10(download=False), because
that class insists on the official MD5 sums (so a test fixture or a re-packed copy would be rejected);
fetch records instead whether every file matches the official MD5 ("official_md5_match" in provenance).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.fetch import DataError, DataUnavailableError, file_record, manifest_file
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.io import file_digest
from workflow_lib.datasets.splits import subset_index

DESCRIPTION = "CIFAR-10: 60,000 32x32 colour images in 10 classes (classification)"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
DEFAULT_ROOT = "data/cifar10"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
FILES = TRAIN_FILES + TEST_FILES + (META_FILE,)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLIT_NOTE = (
    "The training and test batches are pooled in their official order (50,000 training images, then the 10,000 "
    "test images). split.method: official tests on the official test set and splits the training images "
    "25,000 / 25,000 into search-train and search-val as the DARTS code does (numbers comparable with the "
    "paper); split.method: random re-splits the pool like every other dataset (numbers not comparable)."
)


# The official MD5 sums (as listed by torchvision.datasets.CIFAR10; kept here to avoid importing torch).
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


def _torchvision_download(root: Path) -> None:
    """Download and extract CIFAR-10 into root/cifar-10-batches-py (needs network; checks the MD5)."""
    from torchvision.datasets import CIFAR10

    CIFAR10(str(root), train=True, download=True)


def _missing(folder: Path) -> list[str]:
    return [name for name in FILES if not (folder / name).is_file()]


def local_batch_files(root: Path | None) -> list[Path]:
    """The batch files under root (default data/cifar10) when all are there: the rule's inputs, so an edited
    or replaced copy reruns the chain; none while they still have to be downloaded."""
    folder = Path(root or DEFAULT_ROOT) / FOLDER
    return [] if _missing(folder) else [folder / name for name in FILES]


def fetch(cfg: DataConfig, raw_dir: Path) -> dict[str, Any]:
    source = cfg.source
    root = Path(source.path or DEFAULT_ROOT)
    folder = root / FOLDER
    hint = (
        f"Download {URL}, extract it and put the folder {FOLDER} (with {', '.join(FILES)}) at {folder}, "
        f"or set the config key datasets.<name>.source.path to the folder that holds {FOLDER}"
    )
    downloaded = False
    if _missing(folder):
        if not source.download:
            raise DataUnavailableError(
                f"CIFAR-10 is not at {folder} (missing {_missing(folder)}) and source.download is false. {hint}"
            )
        try:
            _torchvision_download(root)
        except Exception as exc:  # offline: URLError / OSError / RuntimeError from torchvision
            raise DataUnavailableError(f"could not download CIFAR-10 from {URL} into {root}: {exc}. {hint}") from exc
        downloaded = True
        if _missing(folder):
            raise DataUnavailableError(f"CIFAR-10 download finished but {folder} lacks {_missing(folder)}. {hint}")
    files = {name: file_record(folder / name) for name in FILES}
    md5_match = all(file_digest(folder / name, "md5") == OFFICIAL_MD5[name] for name in FILES)
    return {
        "kind": "cifar10",
        "reused": not downloaded,
        "root": str(root),
        "files": files,
        "provenance": {
            "source": "torchvision",
            "description": "CIFAR-10 (Krizhevsky 2009), python version, train and test batches pooled",
            "path": str(folder),
            "url": URL,
            "official_md5_match": md5_match,
            "sha256": {name: record["sha256"] for name, record in files.items()},
        },
    }


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"CIFAR-10 file {path} is unreadable: {exc}") from exc
    if not isinstance(entry, dict):
        raise DataError(f"CIFAR-10 file {path} does not hold a dict")
    # The official files are Python-2 pickles (str keys with latin1); re-written ones may use bytes keys.
    return {(key.decode() if isinstance(key, bytes) else key): value for key, value in entry.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _load_pickle(path)
    if "data" not in entry or "labels" not in entry:
        raise DataError(f"CIFAR-10 file {path} lacks 'data' or 'labels' (keys: {sorted(map(str, entry))})")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"CIFAR-10 file {path}: data {data.shape} / labels {labels.shape}, expected (N,3072) / (N,)")
    return data, labels


def read_cifar10(folder: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """(images uint8 (N,3,32,32), labels int64 (N,), class names, number of official-train images)."""
    folder = Path(folder)
    parts = [_read_batch(folder / name) for name in TRAIN_FILES + TEST_FILES]
    n_train = sum(len(labels) for _, labels in parts[: len(TRAIN_FILES)])
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([lab for _, lab in parts])
    meta = _load_pickle(folder / META_FILE)
    names = meta.get("label_names", CLASS_NAMES)
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"CIFAR-10 labels in {folder} lie outside 0..{len(names) - 1}")
    return data, labels, names, n_train


def prepare(cfg: DataConfig, manifest: dict[str, Any]) -> PreparedData:
    for name in FILES:
        manifest_file(manifest, name)
    folder = Path(manifest["files"][META_FILE]["path"]).parent
    data, labels, names, n_train = read_cifar10(folder)
    index = subset_index(len(labels), cfg.source.subset, cfg.source.seed, "CIFAR-10 pool")
    x = data[index].astype(np.float32)
    del data
    x /= np.float32(255.0)  # in place: the full pool is ~740 MB as float32
    provenance = dict(manifest.get("provenance", {}))
    provenance.update(
        {
            "n_samples": int(len(index)),
            "n_pool": int(len(labels)),
            "n_official_train": int(n_train),
            "subset": cfg.source.subset,
            "subset_seed": cfg.source.seed,
            "scaling": "uint8 / 255 -> [0, 1]",
            "split_note": SPLIT_NOTE,
        }
    )
    official_test = np.arange(len(labels)) >= n_train  # the pool is the training batches, then the test batch
    return PreparedData(x=x, y=labels[index], task="classification", target="class", class_names=names,
                        provenance=provenance, official_test=official_test[index])
