"""Bring-your-own data: an .npz file with `x` (N,C,H,W) and `y` (N,), task from source.task.

Optional arrays: `class_names` (K,) str (classification: the name of label i; default "0".."K-1") and
`target_name` (str, regression; default "y"). Classification labels are non-negative integers; the classes
present become class ids 0..K'-1 in label order and keep their names (labels {3, 7}: two classes named "3"
and "7"; provenance "labels" lists the file's label of each id); a single class is refused (nothing to
learn). Integer images (uint8 etc.) are used as they are, converted to float32, except uint8 which is scaled
by 1/255 to [0, 1]. The file is read with allow_pickle=False.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.fetch import DataUnavailableError, file_record, manifest_file
from workflow_lib.datasets.prepared import TASKS, PreparedData
from workflow_lib.datasets.splits import subset_index
from workflow_lib.errors import UserError
from workflow_lib.io import npz_array_shape

DESCRIPTION = "your own data: an .npz with x (N,C,H,W) and y (N,) (regression or classification)"
KEY_HINT = "config key datasets.<name>.source.path"


class NpzFormatError(UserError, ValueError):
    """The user's .npz file does not hold valid data; the message names the file and the key."""


def image_size(block: dict[str, Any]) -> tuple[int, int] | None:
    """(height, width) of the images in the user's file, from the header of its ``x`` (None when unreadable:
    the fetch step then names the problem)."""
    shape = npz_array_shape(block["source"]["path"], "x") if block["source"].get("path") else None
    return (shape[2], shape[3]) if shape is not None and len(shape) == 4 else None


def _path(cfg: DataConfig) -> Path:
    if not cfg.source.path:
        raise NpzFormatError(f"npz dataset: source.path is not set ({KEY_HINT}); point it to your .npz file")
    return Path(cfg.source.path)


def read_npz(path: str | Path, task: str, unlabelled: str = "error") -> dict[str, Any]:
    """Load and validate; return {"x" float32, "y", "class_names", "target_name", "scaling"}.

    ``unlabelled`` (source.unlabelled): "error" refuses a NaN y; otherwise a regression y may hold NaN (designs
    never simulated) and the caller decides what to do with those rows.
    """
    path = Path(path)
    if task not in TASKS:
        raise NpzFormatError(f"npz dataset {path}: source.task must be one of {TASKS}, got {task!r}")
    if not path.is_file():
        raise DataUnavailableError(f"npz dataset file {path} does not exist ({KEY_HINT})")
    try:
        with open(path, "rb") as handle:
            npz = np.load(handle, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise NpzFormatError(f"{path} is a single .npy array, not an .npz archive with keys 'x' and 'y'")
            with npz:
                keys = list(npz.files)
                for key in ("x", "y"):
                    if key not in keys:
                        raise NpzFormatError(f"{path}: required key {key!r} is missing (keys present: {keys})")
                arrays = {key: npz[key] for key in keys if key in ("x", "y", "class_names", "target_name")}
    except NpzFormatError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # allow_pickle=False makes object arrays fail here too.
        raise NpzFormatError(f"{path} is not a readable .npz file of numeric arrays: {exc}") from exc

    x, y = arrays["x"], arrays["y"]
    if x.ndim != 4:
        raise NpzFormatError(f"{path}: key 'x' must have 4 dimensions (N,C,H,W), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise NpzFormatError(f"{path}: key 'x' must be numeric, got dtype {x.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise NpzFormatError(f"{path}: key 'y' must have 1 dimension (N,), got shape {y.shape}")
    if len(x) != len(y):
        raise NpzFormatError(f"{path}: key 'x' has {len(x)} samples but key 'y' has {len(y)}")
    if len(y) == 0:
        raise NpzFormatError(f"{path}: keys 'x' and 'y' hold no samples")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise NpzFormatError(f"{path}: key 'y' must be numeric, got dtype {y.dtype}")
    scaling = "none"
    if x.dtype == np.uint8:
        xf = x.astype(np.float32) / np.float32(255.0)
        scaling = "uint8 / 255 -> [0, 1]"
    else:
        xf = x.astype(np.float32)
    if not np.isfinite(xf).all():
        bad = int(np.count_nonzero(~np.isfinite(xf)))
        raise NpzFormatError(f"{path}: key 'x' holds {bad} non-finite values (NaN or inf) (or values beyond float32)")
    yf = y.astype(np.float64)
    allowed = np.isnan(yf) if (task == "regression" and unlabelled != "error") else np.zeros(len(yf), bool)
    if not (np.isfinite(yf) | allowed).all():
        first = int(np.flatnonzero(~(np.isfinite(yf) | allowed))[0])
        hint = (" (NaN for designs never simulated: set source.unlabelled: drop)"
                if task == "regression" and np.isnan(yf[first]) else "")
        raise NpzFormatError(f"{path}: key 'y' holds non-finite values (first at index {first}){hint}")

    result: dict[str, Any] = {"x": xf, "scaling": scaling, "class_names": (), "target_name": "y"}
    if task == "classification":
        if not np.array_equal(yf, np.round(yf)):
            first = int(np.flatnonzero(yf != np.round(yf))[0])
            raise NpzFormatError(
                f"{path}: key 'y' must hold integer class labels for classification, "
                f"found {y[first]!r} at index {first} (set source.task: regression for continuous targets)"
            )
        labels = yf.astype(np.int64)
        if labels.min() < 0:
            raise NpzFormatError(f"{path}: key 'y' holds negative class labels (min {labels.min()}); use 0..K-1")
        k = int(labels.max()) + 1
        if "class_names" in arrays:
            names = tuple(str(s) for s in np.atleast_1d(arrays["class_names"]))
            if len(names) < k:
                raise NpzFormatError(f"{path}: key 'class_names' has {len(names)} names but 'y' has labels up to {k - 1}")
        else:
            names = tuple(str(i) for i in range(k))
        present = np.unique(labels)
        if len(present) < 2:
            raise NpzFormatError(f"{path}: key 'y' holds a single class ({names[present[0]]!r}, all {len(labels)} "
                                 "samples): a classifier needs at least two classes (set source.task: regression "
                                 "for a continuous target)")
        # Labels need not be 0..K-1: the classes present become 0..K'-1 in label order, keeping their names
        # (labels {3, 7} are two classes named "3" and "7"), so no network has outputs for absent classes.
        result.update(y=np.searchsorted(present, labels).astype(np.int64),
                      class_names=tuple(names[int(label)] for label in present), labels=present.tolist())
    else:
        result["y"] = yf.astype(np.float32)
        if "target_name" in arrays:
            result["target_name"] = str(arrays["target_name"])
    return result


def fetch(cfg: DataConfig, raw_dir: Path) -> dict[str, Any]:
    path = _path(cfg)
    read_npz(path, cfg.source.task, cfg.source.unlabelled)  # fail early, with the file and key named
    record = file_record(path)
    return {
        "kind": "npz",
        "files": {"data": record},
        "provenance": {
            "source": "npz",
            "description": f"user-supplied data from {path}",
            "path": str(path),
            "sha256": record["sha256"],
            "url": None,
        },
    }


def prepare(cfg: DataConfig, manifest: dict[str, Any]) -> PreparedData:
    path = manifest_file(manifest, "data")
    data = read_npz(path, cfg.source.task, cfg.source.unlabelled)
    labelled = np.flatnonzero(~np.isnan(data["y"])) if cfg.source.task == "regression" else np.arange(len(data["y"]))
    if labelled.size == 0:
        raise NpzFormatError(f"npz file {path}: key 'y' is NaN in every row: the methods need labelled rows "
                             "(the design loop needs none: run only results/<dataset>/design/design.json)")
    index = labelled[subset_index(len(labelled), cfg.source.subset, cfg.source.seed, f"npz file {path}")]
    task = cfg.source.task
    provenance = dict(manifest.get("provenance", {}))
    provenance.update(
        {
            "n_samples": int(len(index)),
            "n_pool": int(len(data["y"])),
            "subset": cfg.source.subset,
            "subset_seed": cfg.source.seed,
            "unlabelled_dropped": int(len(data["y"]) - labelled.size),
            "task": task,
            "scaling": data["scaling"],
        }
    )
    y = data["y"][index]
    if task == "classification":
        provenance["labels"] = data["labels"]  # the file's label of each class id, in order
        if len(np.unique(y)) < 2:
            raise NpzFormatError(f"{path}: the subset of source.subset={cfg.source.subset} samples (seed "
                                 f"{cfg.source.seed}) holds a single class: a classifier needs at least two classes")
    if task == "regression":
        return PreparedData(
            x=data["x"][index], y=y, task=task, target=data["target_name"],
            targets=y[:, None], target_names=(data["target_name"],), provenance=provenance,
        )
    return PreparedData(
        x=data["x"][index], y=y, task=task, target="class", class_names=data["class_names"], provenance=provenance,
    )
