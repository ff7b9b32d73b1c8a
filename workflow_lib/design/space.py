"""The design space: the candidates a design loop picks from, identified by ``id`` (their row, 0..N-1).

- kirigami: the 29,791 valid 3x5 cut patterns in ``enumerate_valid_patterns()`` order. Features (the
  forest's inputs, the batch rule's distances) are the 15 cut bits; the networks see the tiled, padded sheet.
  With the lookup oracle the truth is the candidate table (``oracle.candidate_table``).
- npz: every row of the user's file (``x`` (N, C, H, W), ``y`` (N,)). Features are the flattened ``x``; the
  networks see ``x`` as the methods do. lookup: ``y`` is every design's truth (finite for every row).
  command: ``y`` holds the designs simulated before (``given``: known to every run from the start, never
  counted in a budget) and NaN for the others.

The space never gives a picker a label: ``truth`` goes to the lookup oracle and the scorer only, ``given``
to the loop as revealed-before-the-start designs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.design.config import DesignError


@dataclass
class DesignSpace:
    kind: str  # "kirigami" | "npz"
    source: str  # "md" | "surrogate" | "npz"
    target: str
    features: np.ndarray  # (N, F) float32
    truth: np.ndarray | None  # (N,) float64: lookup only
    given: np.ndarray  # (N,) float64, NaN where the design was not simulated before (command only)
    digest: str  # identity of the candidates, kept with the simulations (a changed file is never mixed in)
    patterns: np.ndarray | None = None  # kirigami: (N, 15) uint8
    pad_rows: int = 0  # kirigami: the dataset's padding
    _x: np.ndarray | None = field(default=None, repr=False)  # npz: the images as the methods see them
    _path: Path | None = None  # npz: the user's file (the command gets its original x)
    _binary: bool | None = field(default=None, repr=False)
    _raw: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(len(self.features))

    @property
    def binary(self) -> bool:
        """Every feature is 0 or 1 (then distances are Hamming fractions)."""
        if self._binary is None:
            self._binary = bool(np.isin(self.features, (0, 1)).all())
        return self._binary

    @property
    def given_ids(self) -> np.ndarray:
        return np.flatnonzero(np.isfinite(self.given))

    def images(self, row_stride: int, col_stride: int) -> np.ndarray:
        """(N, C, H', W') float32 images of every candidate for the networks, every k-th row / column."""
        if self.kind == "kirigami":
            from workflow_lib.kirigami import pad, tile

            images = pad(tile(self.patterns), self.pad_rows)[:, None, ::row_stride, ::col_stride]
            images = np.ascontiguousarray(images, dtype=np.float32)
            if np.unique(images.reshape(len(images), -1), axis=0).shape[0] != len(images):
                raise DesignError(f"design: row_stride {row_stride} / col_stride {col_stride} skip whole cuts "
                                  "(the slits are 3 rows tall and 16 columns wide); use smaller strides")
            return images
        return np.ascontiguousarray(self._x[:, :, ::row_stride, ::col_stride], dtype=np.float32)

    def designs(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays the simulator gets for ``ids``: x (k, C, H, W), id (k,) (kirigami: pattern (k, 3, 5))."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind == "kirigami":
            from workflow_lib.kirigami import pad, tile

            patterns = self.patterns[ids].reshape(-1, 3, 5)
            x = pad(tile(patterns), self.pad_rows)[:, None].astype(np.float32)
            return {"x": x, "id": ids, "pattern": patterns.astype(np.uint8)}
        if self._raw is None:
            with np.load(self._path, allow_pickle=False) as npz:  # the user's own values and dtype
                self._raw = npz["x"]
        return {"x": np.ascontiguousarray(self._raw[ids]), "id": ids}


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")
    return digest.hexdigest()[:32]


def dataset_pad_rows(data: Any) -> int:
    """The padding the dataset used (its images are 30 + 2 * pad rows tall); checked on a few samples."""
    from workflow_lib.kirigami import pad, tile

    height = int(data.x.shape[2])
    rows = (height - 30) // 2
    sample = np.asarray(data.coarse[:8]).reshape(-1, 15)
    if height != 30 + 2 * rows or not np.array_equal(pad(tile(sample), rows), np.asarray(data.x[:8, 0])):
        raise DesignError("design: the prepared images are not the kirigami tiling of their coarse patterns")
    return rows


def kirigami_space(data: Any, oracle: str, table: Any = None) -> DesignSpace:
    """The 29,791 patterns of a prepared kirigami dataset; ``table`` (lookup): every candidate's target."""
    from workflow_lib.kirigami import enumerate_valid_patterns

    patterns = enumerate_valid_patterns()
    if oracle == "lookup" and table is None:
        raise DesignError("design: the lookup oracle needs the candidate table (candidates.npz)")
    truth = None if oracle != "lookup" else np.asarray(table.values, dtype=np.float64)
    source = str(data.provenance.get("source", "")) if table is None else table.source
    return DesignSpace(kind="kirigami", source=source, target=str(data.target),
                       features=patterns.reshape(len(patterns), -1).astype(np.float32), truth=truth,
                       given=np.full(len(patterns), np.nan), digest=_digest(patterns), patterns=patterns,
                       pad_rows=dataset_pad_rows(data))


def npz_space(path: str | Path, oracle: str) -> DesignSpace:
    """Every row of the user's npz file (read like the npz dataset: uint8 scaled to [0, 1])."""
    from workflow_lib.datasets.npz import read_npz

    path = Path(path)
    data = read_npz(path, "regression", unlabelled="allow")
    y = np.asarray(data["y"], dtype=np.float64)
    missing = np.flatnonzero(np.isnan(y))
    if oracle == "lookup" and missing.size:
        raise DesignError(f"design: {path}: key 'y' is NaN in {missing.size} rows (first {missing[0]}); the lookup "
                          "oracle needs every design's target (use design.oracle.type: command to simulate them)")
    x = data["x"]
    with np.load(path, allow_pickle=False) as npz:
        raw = npz["x"]
        digest = _digest(raw)
    return DesignSpace(kind="npz", source="npz", target=str(data["target_name"]),
                       features=x.reshape(len(x), -1), truth=y if oracle == "lookup" else None,
                       given=y if oracle == "command" else np.full(len(y), np.nan), digest=digest,
                       _x=x, _path=path)
