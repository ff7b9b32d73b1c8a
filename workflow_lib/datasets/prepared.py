"""PreparedData: the one in-memory / on-disk form of a dataset that every method reads (prepared.npz)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.datasets.splits import SEARCH_TRAIN, SEARCH_VAL, SPLIT_NAMES, TEST, split_sizes
from workflow_lib.io import json_default, savez_atomic
from workflow_lib.errors import UserError

__all__ = ["PreparedData", "PreparedDataError", "SEARCH_TRAIN", "SEARCH_VAL", "TEST", "SPLIT_NAMES", "TASKS"]

TASKS = ("regression", "classification")
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("x", "y", "targets", "target_names", "target", "task", "class_names", "split", "provenance")


class PreparedDataError(UserError, ValueError):
    """A prepared.npz file is missing, unreadable or inconsistent."""


@dataclass
class PreparedData:
    """A prepared dataset (see docs/DESIGN.md, "Artifacts").

    x (N,C,H,W) float32; y (N,) float32 (regression, original units) or int64 (classification);
    targets (N,T) float32 with target_names (T,) (regression; (N,0) for classification); target: name of
    y; task: "regression" | "classification"; class_names (K,) (classification; () for regression);
    split (N,) int8: 0 search-train, 1 search-val, 2 test (None until prepare_step assigns it);
    coarse (N,3,5) uint8 or None (kirigami only); provenance: JSON-serialisable dict.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    target: str = ""
    targets: np.ndarray | None = None
    target_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    split: np.ndarray | None = None
    coarse: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    # (N,) bool: the dataset's own test set (CIFAR-10's test batch), for split.method official; not saved
    official_test: np.ndarray | None = field(default=None, repr=False, compare=False)
    _digest: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._digest = None  # arrays may be replaced (dataclasses.replace): never inherit a digest
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        if self.task not in TASKS:
            raise PreparedDataError(f"task must be one of {TASKS}, got {self.task!r}")
        self.y = np.asarray(self.y, dtype=np.float32 if self.task == "regression" else np.int64)
        n = len(self.y)
        if self.task == "regression" and not self.target:
            self.target = self.target_names[0] if len(self.target_names) == 1 else "y"
        if self.targets is None:
            if self.task == "regression":
                self.targets = self.y[:, None].astype(np.float32)
                self.target_names = self.target_names or (self.target,)
            else:
                self.targets = np.zeros((n, 0), np.float32)
        self.targets = np.asarray(self.targets, dtype=np.float32)
        self.target_names = tuple(str(s) for s in self.target_names)
        self.class_names = tuple(str(s) for s in self.class_names)
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=np.int8)
        if self.coarse is not None:
            self.coarse = np.asarray(self.coarse, dtype=np.uint8)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise PreparedDataError when shapes, dtypes or values are inconsistent."""
        n = self.n
        problems = []
        if self.x.ndim != 4:
            problems.append(f"x must be (N,C,H,W), got shape {self.x.shape}")
        if self.y.ndim != 1:
            problems.append(f"y must be (N,), got shape {self.y.shape}")
        if len(self.x) != n:
            problems.append(f"x has {len(self.x)} samples but y has {n}")
        if self.targets.ndim != 2 or len(self.targets) != n:
            problems.append(f"targets must be (N={n}, T), got shape {self.targets.shape}")
        elif self.targets.shape[1] != len(self.target_names):
            problems.append(f"targets has {self.targets.shape[1]} columns but {len(self.target_names)} target_names")
        if self.task == "classification":
            if not self.class_names:
                problems.append("classification needs class_names")
            elif n and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
                problems.append(f"labels must lie in [0, {len(self.class_names)}), got [{self.y.min()}, {self.y.max()}]")
        if self.split is not None:
            if self.split.shape != (n,):
                problems.append(f"split must be (N={n},), got shape {self.split.shape}")
            elif not np.isin(self.split, (SEARCH_TRAIN, SEARCH_VAL, TEST)).all():
                problems.append("split values must be 0 (search-train), 1 (search-val) or 2 (test)")
        if self.coarse is not None and (self.coarse.ndim < 2 or len(self.coarse) != n):
            problems.append(f"coarse must have N={n} rows, got shape {self.coarse.shape}")
        if problems:
            raise PreparedDataError("inconsistent PreparedData: " + "; ".join(problems))

    # ------------------------------------------------------------------ views
    @property
    def n(self) -> int:
        return int(len(self.y))

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def out_dim(self) -> int:
        """Network outputs: 1 for regression, K for classification."""
        return 1 if self.task == "regression" else self.num_classes

    def _index(self, *codes: int) -> np.ndarray:
        if self.split is None:
            raise PreparedDataError("this PreparedData has no split yet (datasets.run.prepare_step assigns it)")
        return np.flatnonzero(np.isin(self.split, codes)).astype(np.int64)

    @property
    def search_train_index(self) -> np.ndarray:
        return self._index(SEARCH_TRAIN)

    @property
    def search_val_index(self) -> np.ndarray:
        return self._index(SEARCH_VAL)

    @property
    def train_index(self) -> np.ndarray:
        """split != 2: what final training and the baselines train on."""
        return self._index(SEARCH_TRAIN, SEARCH_VAL)

    @property
    def test_index(self) -> np.ndarray:
        return self._index(TEST)

    def split_sizes(self) -> dict[str, int]:
        if self.split is None:
            return {}
        return split_sizes(self.split)

    def digest(self) -> str:
        """A hash of everything a trained model depends on: inputs, targets, task and the split.

        Checkpoints store it in their fingerprint, so a run never resumes on other data or another split
        (a changed split seed, an edited data file). Hashes array bytes, not the .npz file, whose zip
        timestamps differ between identical writes.
        """
        if self._digest is not None:
            return self._digest
        digest = hashlib.sha256()
        for name, array in (("x", self.x), ("y", self.y), ("targets", self.targets), ("split", self.split),
                            ("coarse", self.coarse)):
            if array is None:
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            if array.size:
                digest.update(memoryview(array).cast("B"))
        digest.update(f"task={self.task};target={self.target};classes={self.class_names}".encode())
        self._digest = digest.hexdigest()[:32]
        return self._digest

    def with_split(self, split: np.ndarray) -> "PreparedData":
        return dataclasses.replace(self, split=split)

    def subset(self, index: np.ndarray) -> "PreparedData":
        """The samples `index` (all arrays indexed; provenance kept)."""
        index = np.asarray(index)
        return dataclasses.replace(
            self,
            x=self.x[index],
            y=self.y[index],
            targets=self.targets[index],
            split=None if self.split is None else self.split[index],
            coarse=None if self.coarse is None else self.coarse[index],
            official_test=None if self.official_test is None else self.official_test[index],
        )

    # ------------------------------------------------------------------ disk
    def to_arrays(self) -> dict[str, np.ndarray]:
        if self.split is None:
            raise PreparedDataError("cannot save PreparedData without a split")
        arrays = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "x": self.x,
            "y": self.y,
            "targets": self.targets,
            "target_names": _str_array(self.target_names),
            "target": np.array(self.target, dtype=np.str_),
            "task": np.array(self.task, dtype=np.str_),
            "class_names": _str_array(self.class_names),
            "split": self.split,
            "provenance": np.array(json.dumps(self.provenance, sort_keys=True, default=json_default), dtype=np.str_),
            "digest": np.array(self.digest(), dtype=np.str_),
        }
        if self.coarse is not None:
            arrays["coarse"] = self.coarse
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write prepared.npz atomically (compressed; loadable with allow_pickle=False)."""
        self.validate()
        return savez_atomic(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "PreparedData":
        path = Path(path)
        if not path.is_file():
            raise PreparedDataError(f"prepared data file {path} does not exist (run the data preparation step first)")
        try:
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, AttributeError, zipfile.BadZipFile, EOFError) as exc:
            raise PreparedDataError(f"prepared data file {path} is corrupt or not an .npz file: {exc}") from exc
        missing = [key for key in _REQUIRED_KEYS if key not in arrays]
        if missing:
            raise PreparedDataError(f"prepared data file {path} lacks the arrays {missing}")
        try:
            provenance = json.loads(str(arrays["provenance"]))
            data = cls(
                x=arrays["x"],
                y=arrays["y"],
                task=str(arrays["task"]),
                target=str(arrays["target"]),
                targets=arrays["targets"],
                target_names=tuple(str(s) for s in arrays["target_names"]),
                class_names=tuple(str(s) for s in arrays["class_names"]),
                split=arrays["split"],
                coarse=arrays.get("coarse"),
                provenance=provenance,
            )
            if "digest" in arrays:  # written by save() from these very arrays (hashing 300 MB again costs ~1 s)
                data._digest = str(arrays["digest"])
            return data
        except (ValueError, PreparedDataError) as exc:
            raise PreparedDataError(f"prepared data file {path} is inconsistent: {exc}") from exc


def _str_array(values: tuple[str, ...]) -> np.ndarray:
    return np.array(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")
