"""scikit-learn's handwritten digits (bundled with sklearn, so offline): 1,797 8x8 images, 10 classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.datasets.splits import subset_index

DESCRIPTION = "sklearn digits: 1,797 8x8 grey images of handwritten digits (classification, offline)"


def image_size(block: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the prepared images."""
    return (8, 8)


def fetch(cfg: DataConfig, raw_dir: Path) -> dict[str, Any]:
    import sklearn

    return {
        "kind": "digits",
        "files": {},
        "provenance": {
            "source": "sklearn",
            "description": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits, test part)",
            "path": None,
            "sha256": None,
            "url": None,
            "sklearn_version": sklearn.__version__,
        },
    }


def prepare(cfg: DataConfig, manifest: dict[str, Any]) -> PreparedData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    index = subset_index(len(labels), cfg.source.subset, cfg.source.seed, "digits dataset")
    provenance = dict(manifest.get("provenance", {}))
    provenance.update(
        {
            "n_samples": int(len(index)),
            "n_pool": int(len(labels)),
            "subset": cfg.source.subset,
            "subset_seed": cfg.source.seed,
            "scaling": "pixel / 16 -> [0, 1]",
        }
    )
    return PreparedData(
        x=images[index][:, None] / np.float32(16.0),
        y=labels[index],
        task="classification",
        target="digit",
        class_names=tuple(str(int(c)) for c in bunch.target_names),
        provenance=provenance,
    )
