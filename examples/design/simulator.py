"""A stand-in for your simulator: the design loop's command oracle calls it once per batch of designs.

    python examples/design/simulator.py --designs designs.npz --out results.csv

Each design is an 8x8 grid of two materials (x: 1 = copper-like conductor, 0 = filler). The "simulation"
solves the steady-state conduction problem on the grid (a resistor network, unit potential drop from the top
row to the bottom row) and returns y = conductance / (0.2 + conductor fraction): conduct well with little
conductor. Replace the body of ``simulate`` with a call to your MD or FEM code; keep the file handling.
"""

import argparse
import csv

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve


def conductance(grid: np.ndarray) -> float:
    """Top-to-bottom conductance of a grid of cell conductivities (harmonic mean across each cell pair)."""
    rows, cols = grid.shape
    n = rows * cols + 2  # every cell, then the top and the bottom electrode
    top, bottom = n - 2, n - 1
    edges = []
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                edges.append((i, i + 1, 2 / (1 / grid[r, c] + 1 / grid[r, c + 1])))
            if r + 1 < rows:
                edges.append((i, i + cols, 2 / (1 / grid[r, c] + 1 / grid[r + 1, c])))
            if r == 0:
                edges.append((top, i, 2 * grid[r, c]))
            if r == rows - 1:
                edges.append((i, bottom, 2 * grid[r, c]))
    a, b, g = (np.array(v) for v in zip(*edges))
    laplacian = coo_matrix((np.r_[g, g, -g, -g], (np.r_[a, b, a, b], np.r_[a, b, b, a])), shape=(n, n)).tocsr()
    potential = np.zeros(n)
    potential[top] = 1.0  # the electrodes are fixed, the cells are solved for
    free = np.arange(rows * cols)
    potential[free] = spsolve(laplacian[free][:, free], -laplacian[free][:, [top]] @ potential[[top]])
    return float((laplacian @ potential)[top])  # the current leaving the top electrode


def simulate(x: np.ndarray) -> float:
    """One design (1, 8, 8) -> its target."""
    cells = np.where(x[0] > 0.5, 1.0, 0.01)  # conductor and filler conductivities
    return conductance(cells) / (0.2 + float((x[0] > 0.5).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--designs", required=True, help="npz written by the workflow: x (k, C, H, W), id (k,)")
    parser.add_argument("--out", required=True, help="CSV to write: header id,y, one row per design")
    args = parser.parse_args()
    with np.load(args.designs) as designs:
        x, ids = designs["x"], designs["id"]
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "y"])
        for design_id, design in zip(ids, x):
            writer.writerow([int(design_id), repr(simulate(design))])


if __name__ == "__main__":
    main()
