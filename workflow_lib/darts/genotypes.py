"""Cell genotypes: the discrete architecture a DARTS search derives.

A genotype lists, for each cell type, two ``(op, input)`` pairs per intermediate node
(inputs: 0 = c_{k-2}, 1 = c_{k-1}, 2.. = earlier intermediate nodes) and the nodes whose
outputs are concatenated.  JSON format::

    {"normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5],
     "reduce": [...], "reduce_concat": [2, 3, 4, 5]}

Parsing never evaluates text; every field is validated with a clear error.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from .primitives import PRIMITIVES
from workflow_lib.errors import UserError

Pair = Tuple[str, int]


class GenotypeError(UserError, ValueError):
    """A genotype is malformed (unknown op, bad input index, wrong shape...)."""


def _validate_pairs(name: str, pairs: Any) -> List[Pair]:
    if not isinstance(pairs, (list, tuple)):
        raise GenotypeError(f"{name}: expected a list of [op, input] pairs, got {type(pairs).__name__}")
    if len(pairs) == 0 or len(pairs) % 2 != 0:
        raise GenotypeError(f"{name}: expected an even, non-zero number of pairs (2 per node), got {len(pairs)}")
    out: List[Pair] = []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise GenotypeError(f"{name}[{k}]: expected [op, input], got {pair!r}")
        op, idx = pair
        if not isinstance(op, str) or op not in PRIMITIVES:
            raise GenotypeError(f"{name}[{k}]: unknown op {op!r}; known ops: {', '.join(PRIMITIVES)}")
        if op == "none":
            raise GenotypeError(f"{name}[{k}]: op 'none' cannot be part of a derived cell")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise GenotypeError(f"{name}[{k}]: input index must be an integer, got {idx!r}")
        node = k // 2  # intermediate node number (0-based); its inputs are 0 .. node+1
        if not 0 <= idx <= node + 1:
            raise GenotypeError(
                f"{name}[{k}]: input index {idx} out of range for intermediate node {node} "
                f"(allowed 0..{node + 1})")
        out.append((op, int(idx)))
    return out


def _validate_concat(name: str, concat: Any, n_pairs: int) -> List[int]:
    if not isinstance(concat, (list, tuple)) or len(concat) == 0:
        raise GenotypeError(f"{name}: expected a non-empty list of node indices, got {concat!r}")
    n_states = 2 + n_pairs // 2
    out = []
    for c in concat:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n_states:
            raise GenotypeError(f"{name}: node index {c!r} out of range 0..{n_states - 1}")
        out.append(int(c))
    if len(set(out)) != len(out):
        raise GenotypeError(f"{name}: duplicate node indices in {out}")
    return out


@dataclass(frozen=True)
class Genotype:
    normal: Tuple[Pair, ...]
    normal_concat: Tuple[int, ...]
    reduce: Tuple[Pair, ...]
    reduce_concat: Tuple[int, ...]

    def __init__(self, normal: Sequence, normal_concat: Sequence, reduce: Sequence,
                 reduce_concat: Sequence):
        n = _validate_pairs("normal", normal)
        r = _validate_pairs("reduce", reduce)
        object.__setattr__(self, "normal", tuple(n))
        object.__setattr__(self, "normal_concat", tuple(_validate_concat("normal_concat", normal_concat, len(n))))
        object.__setattr__(self, "reduce", tuple(r))
        object.__setattr__(self, "reduce_concat", tuple(_validate_concat("reduce_concat", reduce_concat, len(r))))

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {
            "normal": [[op, idx] for op, idx in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, idx] for op, idx in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, d: Any) -> "Genotype":
        if not isinstance(d, dict):
            raise GenotypeError(f"genotype: expected an object, got {type(d).__name__}")
        keys = ("normal", "normal_concat", "reduce", "reduce_concat")
        missing = [k for k in keys if k not in d]
        if missing:
            raise GenotypeError(f"genotype: missing key(s) {missing}")
        extra = sorted(set(d) - set(keys))
        if extra:
            raise GenotypeError(f"genotype: unexpected key(s) {extra}")
        return cls(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"])

    def to_json(self, indent: Union[int, None] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype: invalid JSON: {e}") from e
        return cls.from_dict(d)

    def save(self, path: Union[str, Path]) -> None:
        """Write the JSON atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.to_json(indent=2) + "\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Genotype":
        path = Path(path)
        try:
            return cls.from_json(path.read_text())
        except GenotypeError as e:
            raise GenotypeError(f"{path}: {e}") from e


# The paper's published CIFAR-10 cells (first- and second-order search).
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)

DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)

# The cell found by the 2019 graphene-kirigami DARTS study.
KIRIGAMI_2019 = Genotype(
    normal=[("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 2), ("skip_connect", 1),
            ("avg_pool_3x3", 3), ("avg_pool_3x3", 2), ("avg_pool_3x3", 3), ("skip_connect", 4)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("skip_connect", 0), ("skip_connect", 1), ("sep_conv_5x5", 2), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 3), ("avg_pool_3x3", 2), ("sep_conv_5x5", 4), ("sep_conv_3x3", 2)],
    reduce_concat=[2, 3, 4, 5],
)

DARTS = DARTS_V2

GENOTYPES: Dict[str, Genotype] = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "KIRIGAMI_2019": KIRIGAMI_2019,
}
