"""Time the kirigami lattice surrogate on all 29,791 valid patterns (or a subset, extrapolated).

Usage: .venv/bin/python bench/surrogate.py [--n N] [--workers W] [--out PATH]
Prints seconds per pattern, the (measured or projected) time for all patterns, and pristine values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_lib.kirigami import TARGET_NAMES, enumerate_valid_patterns, sample_valid_patterns  # noqa: E402
from workflow_lib.kirigami.patterns import N_VALID  # noqa: E402
from workflow_lib.kirigami.surrogate import generate_raw_file, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=None, help="patterns to time (default: all 29,791)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the raw file here (full run)")
    args = parser.parse_args()

    pristine = simulate(np.ones((1, 15), dtype=np.uint8))
    for name, value in zip(TARGET_NAMES, pristine.targets[0]):
        print(f"pristine {name}: {value:.6g}")
    print(f"pristine stiffness (GPa): {pristine.stiffness[0]:.6g}")

    n = N_VALID if args.n is None else args.n
    start = time.perf_counter()
    if args.out is not None or n == N_VALID:
        out = args.out or Path(tempfile.mkdtemp()) / "surrogate.dat"
        generate_raw_file(out, n_patterns=None if n == N_VALID else n, seed=0, workers=args.workers)
        print(f"wrote {out}")
    else:
        patterns = enumerate_valid_patterns() if n == N_VALID else sample_valid_patterns(n, seed=0)
        result = simulate(patterns, workers=args.workers)
        print("targets min:", result.targets.min(axis=0), "max:", result.targets.max(axis=0))
    seconds = time.perf_counter() - start
    per_pattern = seconds / n
    kind = "measured" if n == N_VALID else "projected (linear extrapolation; region set-up is amortised)"
    print(f"{n} patterns, workers={args.workers}: {seconds:.1f} s, {1000 * per_pattern:.2f} ms/pattern")
    print(f"all {N_VALID} patterns: {per_pattern * N_VALID:.1f} s {kind}")


if __name__ == "__main__":
    main()
