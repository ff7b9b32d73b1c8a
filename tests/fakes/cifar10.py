"""A tiny fake CIFAR-10 in the real on-disk layout (the "python version" of the dataset).

<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}: pickles of dicts with b"data"
uint8 (N, 3072) (channel-major: 1024 red, 1024 green, 1024 blue values, row by row), b"labels" (list of
int), b"batch_label"; batches.meta holds b"label_names". The files do not match the official MD5 sums.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FOLDER = "cifar-10-batches-py"


def _batch(rng: np.random.Generator, n: int, label: str) -> dict:
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"fake_{label}_{i}.png".encode() for i in range(n)],
    }


def write_fake_cifar10(root: str | Path, n_per_batch: int = 10, n_test: int = 10, seed: int = 0) -> Path:
    """Write the fake under root/cifar-10-batches-py and return that folder (5 * n_per_batch + n_test images)."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {f"data_batch_{i}": _batch(rng, n_per_batch, f"training batch {i} of 5") for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, n_test, "testing batch 1 of 1")
    batches["batches.meta"] = {
        b"label_names": [name.encode() for name in CLASS_NAMES],
        b"num_cases_per_batch": n_per_batch,
        b"num_vis": 3072,
    }
    for name, entry in batches.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle, protocol=2)
    return folder
