"""A 2D central-force spring lattice on the kirigami sheet's cell grid, and its static condensation.

Nodes are the material cells of the 34 x 80 sheet (rows along the loading direction x, columns along
the width y; cell size 4.118 A x 2.3775 A, Hanakata et al. PRL 121, 255304, 2018). Springs join
neighbouring material cells along x, along y and along both diagonals; the diagonals give the lattice
shear stiffness. With linear bond strains s = B u, a bond of length L stretches by s L and stores
0.5 k (s L)^2, so the stiffness matrix is K = B^T diag(k L^2) B.

A region of the sheet (a range of rows) is condensed onto its boundary degrees of freedom (Schur
complement): the surrogate then chains regions instead of solving the whole sheet per pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

CELL_DX = 4.118  # A, along x (rows, the loading direction)
CELL_DY = 2.3775  # A, along y (columns, the width)
SPRING_CONSTANT = 1.0  # same for every bond; the modulus is calibrated afterwards, so units drop out
FIXED = -1  # coordinate_of_dof entry: dof held at zero
INTERIOR = -2  # coordinate_of_dof entry: dof eliminated by condensation


@dataclass(frozen=True)
class Bonds:
    """Candidate bonds of a rows x cols grid; node id = row * cols + col."""

    node_a: np.ndarray
    node_b: np.ndarray
    row_a: np.ndarray
    row_b: np.ndarray
    direction: np.ndarray  # (n_bonds, 2) unit vector from a to b in (x, y)
    length: np.ndarray  # (n_bonds,) A


def grid_bonds(n_rows: int, n_cols: int) -> Bonds:
    """All x, y and diagonal neighbour pairs of the grid (both ends assumed material)."""
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    # (row step, col step) for the four bond families: x, y, diagonal (+x,+y), diagonal (+x,-y).
    steps = ((1, 0), (0, 1), (1, 1), (1, -1))
    parts = []
    for d_row, d_col in steps:
        ok = (rows + d_row < n_rows) & (cols + d_col >= 0) & (cols + d_col < n_cols)
        r, c = rows[ok], cols[ok]
        vector = np.array([d_row * CELL_DX, d_col * CELL_DY])
        parts.append((r * n_cols + c, (r + d_row) * n_cols + c + d_col, r, r + d_row, vector))
    length = np.concatenate([np.full(p[0].size, np.linalg.norm(p[4])) for p in parts])
    direction = np.concatenate([np.tile(p[4] / np.linalg.norm(p[4]), (p[0].size, 1)) for p in parts])
    return Bonds(
        node_a=np.concatenate([p[0] for p in parts]),
        node_b=np.concatenate([p[1] for p in parts]),
        row_a=np.concatenate([p[2] for p in parts]),
        row_b=np.concatenate([p[3] for p in parts]),
        direction=direction,
        length=length,
    )


def region_bond_mask(bonds: Bonds, material: np.ndarray, first_row: int, last_row: int,
                     skip_row_springs: tuple[int, ...] = ()) -> np.ndarray:
    """Bonds with both ends material and inside rows first..last; springs lying within a row listed in
    ``skip_row_springs`` are left to the neighbouring region, so that each bond belongs to one region."""
    flat = material.ravel()
    inside = (bonds.row_a >= first_row) & (bonds.row_b <= last_row)
    both_material = flat[bonds.node_a] & flat[bonds.node_b]
    within_skipped_row = (bonds.row_a == bonds.row_b) & np.isin(bonds.row_a, skip_row_springs)
    return inside & both_material & ~within_skipped_row


def strain_operator(bonds: Bonds, mask: np.ndarray, node_dof: np.ndarray, n_dofs: int) -> sp.csr_matrix:
    """Sparse (n_bonds, n_dofs): linear bond strain n . (u_b - u_a) / L of the selected bonds."""
    a, b = node_dof[bonds.node_a[mask]], node_dof[bonds.node_b[mask]]
    n = bonds.direction[mask] / bonds.length[mask, None]
    rows = np.repeat(np.arange(a.size), 4)
    cols = np.stack([2 * a, 2 * a + 1, 2 * b, 2 * b + 1], axis=1).ravel()
    vals = np.stack([-n[:, 0], -n[:, 1], n[:, 0], n[:, 1]], axis=1).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(a.size, n_dofs))


@dataclass(frozen=True)
class CondensedRegion:
    """A region reduced to its boundary coordinates q_b.

    schur: (nb, nb) stiffness seen at the boundary; strain_map: (n_bonds, nb) bond strains of the
    region's bonds for given boundary coordinates; bond_weight: (n_bonds,) k L^2, so the region's
    energy is 0.5 * sum(bond_weight * strain^2).
    """

    schur: np.ndarray
    strain_map: np.ndarray
    bond_weight: np.ndarray


def condense_region(bonds: Bonds, mask: np.ndarray, coordinate_of_dof: np.ndarray,
                    n_boundary: int) -> CondensedRegion:
    """Condense the springs ``mask`` onto boundary coordinates 0..n_boundary-1.

    ``coordinate_of_dof`` has one entry per global dof (2*node + 0 for x, + 1 for y): a boundary
    coordinate, FIXED (held at zero) or INTERIOR (eliminated). Several dofs may share one coordinate
    (a rigid grip).
    """
    nodes = np.unique(np.concatenate([bonds.node_a[mask], bonds.node_b[mask]]))
    node_dof = np.full(coordinate_of_dof.size // 2, -1)
    node_dof[nodes] = np.arange(nodes.size)
    n_dofs = 2 * nodes.size
    q = coordinate_of_dof[(2 * nodes[:, None] + np.arange(2)[None, :]).ravel()].copy()
    interior = q == INTERIOR
    n_interior = int(interior.sum())
    q[interior] = n_boundary + np.arange(n_interior)
    kept = q != FIXED
    # Full dofs = T q: boundary/interior coordinates; fixed dofs get no column (zero displacement).
    to_coordinates = sp.csr_matrix(
        (np.ones(kept.sum()), (np.flatnonzero(kept), q[kept])), shape=(n_dofs, n_boundary + n_interior)
    )
    strain = strain_operator(bonds, mask, node_dof, n_dofs) @ to_coordinates
    weight = SPRING_CONSTANT * bonds.length[mask] ** 2
    stiffness = (strain.T @ sp.diags(weight) @ strain).tocsc()
    k_bb = stiffness[:n_boundary, :n_boundary].toarray()
    k_ib = stiffness[n_boundary:, :n_boundary].toarray()
    # Interior displacements for given boundary ones: u_i = -K_ii^-1 K_ib q_b = recover q_b.
    recover = -spla.splu(stiffness[n_boundary:, n_boundary:].tocsc()).solve(k_ib)
    return CondensedRegion(
        schur=k_bb + k_ib.T @ recover,
        strain_map=strain[:, :n_boundary].toarray() + strain[:, n_boundary:] @ recover,
        bond_weight=weight,
    )
