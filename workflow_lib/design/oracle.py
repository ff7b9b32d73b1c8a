"""The kirigami lookup oracle: every candidate's true target (``candidates.npz``, rule ``design_table``).

The candidates are all 29,791 valid 3x5 patterns (``enumerate_valid_patterns`` order). Their true target
comes from the dataset's source: a lookup in the MD table of Hanakata et al. (PRL 121, 255304, 2018), which
holds every valid pattern, or the lattice-spring surrogate (``kirigami.surrogate.simulate``; the prepared
data's values are reused where it holds the pattern, the rest are simulated, so both agree).

The loop never holds the table: ``run.design_from_space`` answers the designs a generation asks for from it,
and the scorer (recall, R^2 on unseen candidates, ``score.py``) reads it outside the loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.design.config import DesignError
from workflow_lib.io import savez_atomic
from workflow_lib.kirigami import TARGET_NAMES, enumerate_valid_patterns

log = logging.getLogger("workflow_lib.design")


@dataclass(frozen=True)
class CandidateTable:
    """All candidates with their true target (complete: the oracle's answers and the scorer's truth)."""

    patterns: np.ndarray  # (N, 15) uint8, enumeration order
    values: np.ndarray  # (N,) float64, the dataset's target
    source: str  # "md" | "surrogate"
    target: str
    simulated: int  # values computed here by the surrogate (0 when the data held every pattern)


def pattern_codes(patterns: np.ndarray) -> np.ndarray:
    """(N,15)|(N,3,5) 0/1 -> (N,) int64 codes (the 15 bits, index 0 most significant; enumeration order)."""
    bits = np.asarray(patterns, dtype=np.int64).reshape(len(patterns), -1)
    return bits @ (1 << np.arange(bits.shape[1] - 1, -1, -1, dtype=np.int64))


def _positions(data: Any, codes: np.ndarray) -> np.ndarray:
    """Row of each candidate in the prepared data, -1 where it does not hold the pattern."""
    if getattr(data, "coarse", None) is None:
        raise DesignError("design: the prepared data has no coarse patterns (the design stage needs kind kirigami)")
    data_codes = pattern_codes(data.coarse)
    if np.unique(data_codes).size != data_codes.size:
        raise DesignError("design: the prepared data holds a cut pattern twice")
    slot = np.searchsorted(codes, data_codes)
    if np.any(slot >= codes.size) or np.any(codes[np.minimum(slot, codes.size - 1)] != data_codes):
        raise DesignError("design: the prepared data holds an invalid cut pattern")
    rows = np.full(codes.size, -1, dtype=np.int64)
    rows[slot] = np.arange(data_codes.size)
    return rows


def candidate_table(data: Any, threads: int = 1) -> CandidateTable:
    """The complete table for a prepared kirigami dataset (md: lookup; surrogate: reuse + simulate the rest)."""
    source = str(data.provenance.get("source", ""))
    patterns = enumerate_valid_patterns()
    rows = _positions(data, pattern_codes(patterns))
    values = np.full(len(patterns), np.nan)
    held = rows >= 0
    values[held] = np.asarray(data.y, dtype=np.float64)[rows[held]]
    missing = np.flatnonzero(~held)
    if missing.size and source == "md":
        raise DesignError(f"design: the MD table lacks {missing.size} of the {len(patterns)} valid patterns; "
                         "the oracle needs all of them (15grid_shuffled.dat holds all)")
    if missing.size and source != "surrogate":
        raise DesignError(f"design: source {source!r} is neither 'md' nor 'surrogate'")
    if missing.size:
        values[missing] = _simulate(patterns[missing], data.target, threads)
    return CandidateTable(patterns=patterns, values=values, source=source, target=str(data.target),
                          simulated=int(missing.size))


def _simulate(patterns: np.ndarray, target: str, threads: int) -> np.ndarray:
    from workflow_lib.kirigami.surrogate import simulate

    log.info("design: simulating %d patterns with the surrogate (%d workers)", len(patterns), threads)
    result = simulate(patterns, workers=max(1, int(threads)))
    # float32 like the prepared data, so reused and simulated values share one precision
    return result.targets[:, TARGET_NAMES.index(target)].astype(np.float32).astype(np.float64)


def save_table(table: CandidateTable, path: str | Path) -> Path:
    """Write the complete table (``candidates.npz``) so later design runs skip the surrogate."""
    return savez_atomic(path, patterns=table.patterns, values=table.values, source=np.array(table.source),
                        target=np.array(table.target), simulated=np.array(table.simulated))


def load_table(path: str | Path, data: Any) -> CandidateTable:
    """A saved table, checked against the enumeration and the prepared data's source and target."""
    with np.load(path, allow_pickle=False) as npz:
        table = CandidateTable(patterns=npz["patterns"], values=npz["values"], source=str(npz["source"]),
                               target=str(npz["target"]), simulated=int(npz["simulated"]))
    expected = (str(data.provenance.get("source", "")), str(data.target))
    if (table.source, table.target) != expected or not np.array_equal(table.patterns, enumerate_valid_patterns()):
        raise DesignError(f"design: {path} holds {table.source}/{table.target} candidates, the data is "
                         f"{expected[0]}/{expected[1]}; delete it to rebuild")
    held = _positions(data, pattern_codes(table.patterns))
    if not np.array_equal(table.values[held >= 0], np.asarray(data.y, np.float64)[held[held >= 0]]):
        raise DesignError(f"design: {path} disagrees with the prepared data; delete it to rebuild")
    return table


def table_step(data_path: str | Path, out_path: str | Path, threads: int) -> Path:
    """CLI entry for an optional rule: build the candidate table of a prepared kirigami dataset once."""
    from workflow_lib.datasets.prepared import PreparedData

    return save_table(candidate_table(PreparedData.load(data_path), threads), out_path)
