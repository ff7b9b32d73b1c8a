"""Time the published-style per-cell Python loop against the vectorised tile() on all 29,791 patterns.

Usage: .venv/bin/python bench/tiling.py [--loop-patterns N] [--repeats R]
The loop fills every fine pixel of every coarse cell one at a time (as the authors' conversion
notebook does, cell by cell); with --loop-patterns N it times N patterns and extrapolates to all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_lib.kirigami import enumerate_valid_patterns, tile  # noqa: E402


def per_cell_loop(patterns: np.ndarray) -> np.ndarray:
    """For each pattern, for each coarse cell, set its 10 x 16 fine pixels one by one."""
    images = np.zeros((len(patterns), 30, 80), dtype=np.uint8)
    for n, pattern in enumerate(patterns):
        image = images[n]
        for r in range(3):
            for c in range(5):
                cut = pattern[5 * r + c] == 0
                for i in range(10):
                    value = 0 if cut and 4 <= i <= 6 else 1
                    for j in range(16):
                        image[10 * r + i, 16 * c + j] = value
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop-patterns", type=int, default=None, help="patterns for the loop (default all)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats of the vectorised tile()")
    args = parser.parse_args()
    patterns = enumerate_valid_patterns()
    n_all = len(patterns)

    vectorised = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        images = tile(patterns)
        vectorised.append(time.perf_counter() - start)
    vector_median = statistics.median(vectorised)

    n_loop = n_all if args.loop_patterns is None else min(args.loop_patterns, n_all)
    start = time.perf_counter()
    reference = per_cell_loop(patterns[:n_loop])
    loop_seconds = (time.perf_counter() - start) * n_all / n_loop
    assert reference.tobytes() == images[:n_loop].tobytes(), "tile() disagrees with the per-cell loop"

    how = "measured" if n_loop == n_all else f"extrapolated from {n_loop} patterns"
    print(f"patterns: {n_all}")
    print(f"per-cell loop: {loop_seconds:.2f} s ({how}, one run)")
    print(f"tile(): median {1000 * vector_median:.1f} ms over {args.repeats} runs "
          f"(min {1000 * min(vectorised):.1f} ms)")
    print(f"speed-up: {loop_seconds / vector_median:.0f}x")


if __name__ == "__main__":
    main()
