"""CIFAR-10 (Krizhevsky, 2009): the 60,000 32x32 colour images, with the official test set (split.method: official).

fetch: use <source.path or data/cifar10>/cifar-10-batches-py if present, else download it with
torchvision (needs network). prepare: read the python-pickle batches (the format torchvision's CIFAR10
reads), pool train + test and keep all or a seeded subset (source.subset).

The batches are pickles, and unpickling a file can run code. So, before a batch is unpickled, every file is
checked against the published MD5 sums, read at run time from torchvision.datasets.CIFAR10 (its train_list,
test_list and meta; the archive cifar-10-python.tar.gz itself has MD5 c58f30108f718f92721af3b95e74349a). A
file that does not match is refused with a message naming it, the expected and the found sum, unless the
config sets ``source.trust_unverified: true`` (a re-packed copy, a test fixture). Even then the batches are
read with a restricted unpickler that builds only what a CIFAR batch holds (dicts, lists, strings, bytes,
numbers and NumPy arrays) and refuses every other object before creating it, so no file runs code either way.
The batches are read directly rather than through torchvision.datasets.CIFAR10(download=False), whose
plain pickle.load would run whatever an unverified file holds.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.fetch import DataError, DataUnavailableError, file_record, manifest_file
from workflow_lib.errors import UserError
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


def image_size(block: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the prepared images."""
    return (32, 32)


ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # cifar-10-python.tar.gz (torchvision.datasets.CIFAR10.tgz_md5)
TRUST_KEY = "datasets.<name>.source.trust_unverified"


class UnverifiedDataError(UserError, ValueError):
    """A CIFAR-10 file that does not match its published checksum (a pickle: it could run code)."""


def official_md5() -> dict[str, str]:
    """The published MD5 of every file, as torchvision.datasets.CIFAR10 lists them (train_list, test_list, meta)."""
    from torchvision.datasets import CIFAR10

    sums = {name: md5 for name, md5 in [*CIFAR10.train_list, *CIFAR10.test_list]}
    sums[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return sums


def unverified_files(folder: Path) -> list[tuple[str, str, str]]:
    """(file, expected MD5, found MD5) of every file that does not match its published checksum."""
    expected = official_md5()
    found = {name: file_digest(folder / name, "md5") for name in FILES}
    return [(name, expected[name], found[name]) for name in FILES if found[name] != expected[name]]


def verify(folder: Path, trust_unverified: bool) -> bool:
    """Whether every file matches its published MD5; refuse a mismatch unless ``trust_unverified``."""
    mismatched = unverified_files(folder)
    if mismatched and not trust_unverified:
        name, expected, found = mismatched[0]
        others = f" (and {len(mismatched) - 1} more file(s))" if len(mismatched) > 1 else ""
        raise UnverifiedDataError(
            f"CIFAR-10 file {folder / name} does not match the published checksum: expected MD5 {expected}, "
            f"found {found}{others}. The batches are Python pickles, which can run code when read, so only the "
            f"official files are read by default; if you trust this copy (re-packed or generated), set the "
            f"config key {TRUST_KEY}: true (it is still read with a restricted unpickler)"
        )
    return not mismatched


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
    md5_match = verify(folder, source.trust_unverified)  # fail early: before any pickle is read
    files = {name: file_record(folder / name) for name in FILES}
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
            "trust_unverified": source.trust_unverified,
            "sha256": {name: record["sha256"] for name, record in files.items()},
        },
    }


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # the functions NumPy's own pickles call (wherever NumPy keeps them)
_SCALAR = np.int64(0).__reduce__()[0]
# What a CIFAR-10 batch pickle may name: NumPy's array reconstruction (numpy.core in the official Python-2
# files, numpy._core in files written by NumPy 2) and the bytes of protocol-2 pickles. Nothing else is built.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes, numbers and NumPy arrays; refuses any other object."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused {module}.{name}: a CIFAR-10 batch holds only plain data and "
                                         "NumPy arrays") from None


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            entry = _BatchUnpickler(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
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


def read_cifar10(folder: str | Path, trust_unverified: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """(images uint8 (N,3,32,32), labels int64 (N,), class names, number of official-train images).

    The files are checked against the published MD5 sums first (``verify``)."""
    folder = Path(folder)
    verify(folder, trust_unverified)
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
    data, labels, names, n_train = read_cifar10(folder, cfg.source.trust_unverified)
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
