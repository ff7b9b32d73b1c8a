"""Architecture-weight analysis: how far the softmax weights moved from the uniform 1/8 start.

The 2019 graphene-kirigami study observed that its DARTS weights stayed close to 1/8 (no op clearly
preferred, so the derived cell says little), whereas on CIFAR-10 they spread out.  These helpers
quantify that per dataset (statistics table) and draw it (distribution per epoch, per-edge entropy
with the ln 8 maximum, skip-connection count, and a cross-dataset comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_lib.darts.derive import derive_cell
from workflow_lib.darts.primitives import PRIMITIVES
from workflow_lib.report.collect import DatasetResults, SearchRun
from workflow_lib.report.figures import dataset_color, placeholder, render_png, seed_color
from workflow_lib.report.published import PublishedReference, reference_for

CELLS = ("normal", "reduce")
N_NODES = 4


def weights(run: SearchRun, cell: str) -> np.ndarray | None:
    """(E+1, edges, ops) softmax weights of one cell type, or None when alphas.npz is missing."""
    return run.alphas_normal if cell == "normal" else run.alphas_reduce


def n_ops(run: SearchRun) -> int:
    w = run.alphas_normal if run.alphas_normal is not None else run.alphas_reduce
    return int(w.shape[-1]) if w is not None else len(run.primitives)


def entropy(w: np.ndarray) -> np.ndarray:
    """Entropy (nats) over the last axis."""
    p = np.clip(np.asarray(w, dtype=float), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def near_uniform_fraction(w: np.ndarray, tolerance: float = 0.10) -> float:
    """Fraction of weights within +-tolerance (relative) of 1/n_ops."""
    uniform = 1.0 / w.shape[-1]
    return float((np.abs(w - uniform) <= tolerance * uniform).mean())


def epoch_genotypes(run: SearchRun) -> list[dict]:
    """The derived genotype after each search epoch (history.json; else derived from the alphas, and the edge
    weights of PC-DARTS, by workflow_lib.darts.derive's rule: the search's own derivation)."""
    from_history = [e.get("genotype") for e in run.epochs]
    if from_history and all(isinstance(g, dict) for g in from_history):
        return from_history
    if run.alphas_normal is None or run.alphas_reduce is None:
        return []
    if tuple(run.primitives) != PRIMITIVES:
        return []
    return [{cell: [list(pair) for pair in derive_cell(weights(run, cell)[e], N_NODES,
                                                       run.edges[cell][e] if cell in run.edges else None)]
             for cell in CELLS} for e in range(1, run.alphas_normal.shape[0])]


@dataclass
class GenotypeChange:
    epoch: int
    cell: str
    slot: str  # "node j, input k"
    before: str
    after: str


def _pair_text(pair: Any) -> str:
    op, idx = pair
    return f"{op} ← {({0: 'c_{k-2}', 1: 'c_{k-1}'}).get(int(idx), str(int(idx) - 2))}"


def genotype_changes(genotypes: list[dict]) -> list[GenotypeChange]:
    changes = []
    for k in range(1, len(genotypes)):
        for cell in CELLS:
            before, after = genotypes[k - 1].get(cell, []), genotypes[k].get(cell, [])
            for slot in range(max(len(before), len(after))):
                b = before[slot] if slot < len(before) else None
                a = after[slot] if slot < len(after) else None
                if b is None or a is None or list(b) != list(a):
                    changes.append(GenotypeChange(
                        epoch=k + 1, cell=cell, slot=f"node {slot // 2}, input {slot % 2 + 1}",
                        before=_pair_text(b) if b is not None else "-", after=_pair_text(a) if a is not None else "-"))
    return changes


def change_epochs(changes: list[GenotypeChange]) -> dict[str, list[int]]:
    return {cell: sorted({c.epoch for c in changes if c.cell == cell}) for cell in CELLS}


def skip_counts(run: SearchRun, cell: str) -> np.ndarray:
    key = f"skip_count_{cell}"
    if run.epochs and all(key in e for e in run.epochs):
        return np.asarray([e[key] for e in run.epochs], dtype=float)
    return np.asarray([sum(op == "skip_connect" for op, _ in g.get(cell, [])) for g in epoch_genotypes(run)],
                      dtype=float)


def edge_entropies(run: SearchRun, cell: str) -> np.ndarray | None:
    """(E+1, edges) entropy per edge from alphas (row 0 = start); history's values when alphas are absent."""
    w = weights(run, cell)
    if w is not None:
        return entropy(w)
    key = f"entropy_{cell}"
    if run.epochs and all(key in e for e in run.epochs):
        rows = np.asarray([e[key] for e in run.epochs], dtype=float)
        start = np.full((1, rows.shape[1]), math.log(len(run.primitives)))
        return np.concatenate([start, rows])
    return None


# ------------------------------------------------------------------------------------ statistics

def sparsity_stats(ds: DatasetResults) -> list[dict[str, Any]]:
    """One row per cell type: final-epoch statistics, mean and std over seeds."""
    rows = []
    for cell in CELLS:
        per_seed = []
        for run in ds.searches.values():
            w = weights(run, cell)
            if w is None:
                continue
            final = w[-1]
            k = final.shape[-1]
            skips = skip_counts(run, cell)
            per_seed.append({
                "max_weight": float(final.max()),
                "mean_edge_max": float(final.max(axis=-1).mean()),
                "entropy_ratio": float(entropy(final).mean() / math.log(k)),
                "near_uniform": near_uniform_fraction(final),
                "skip_count": float(skips[-1]) if len(skips) else math.nan,
                "epochs": int(w.shape[0] - 1),
            })
        if not per_seed:
            continue
        row: dict[str, Any] = {"dataset": ds.name, "cell": cell, "seeds": len(per_seed),
                               "epochs": max(p["epochs"] for p in per_seed)}
        for key in ("max_weight", "mean_edge_max", "entropy_ratio", "near_uniform", "skip_count"):
            values = np.asarray([p[key] for p in per_seed], dtype=float)
            row[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            row[f"{key}_std"] = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else math.nan
        rows.append(row)
    return rows


# -------------------------------------------------------------------------------------- figures

def _runs_with_alphas(ds: DatasetResults) -> list[SearchRun]:
    return [r for r in ds.searches.values() if r.alphas_normal is not None and r.alphas_reduce is not None]


def _published_range(ax, reference: PublishedReference | None, cell: str, n_epochs: int) -> None:
    """The published final range (min-max over edges and ops) as a bar right of our last epoch."""
    if reference is None:
        return
    span = reference.weight_ranges.get(cell) or reference.weight_ranges.get("all")
    if span is None:
        return
    ax.errorbar([n_epochs + 0.5], [sum(span) / 2], yerr=[[sum(span) / 2 - span[0]], [span[1] - sum(span) / 2]],
                fmt="none", ecolor="#d62728", elinewidth=3, capsize=5,
                label=f"published [{span[0]:g}, {span[1]:g}] after {reference.search_epochs} epochs ({reference.data.split(' (')[0].split(',')[0]})")


def weight_distribution(ds: DatasetResults) -> bytes:
    runs = _runs_with_alphas(ds)
    if not runs:
        return placeholder(f"{ds.name}: no architecture weights (alphas.npz)")
    reference = reference_for(ds.info.provenance, ds.info.target)

    def build():
        import matplotlib.pyplot as plt

        n_epochs = max(weights(r, "normal").shape[0] for r in runs)
        width = min(max(6.5, 0.3 * n_epochs + 3), 18)
        fig, axes = plt.subplots(2, 1, figsize=(width, 6.0), sharex=True)
        for ax, cell in zip(axes, CELLS):
            k = n_ops(runs[0])
            data, positions = [], []
            for epoch in range(n_epochs):
                pooled = [weights(r, cell)[epoch].ravel() for r in runs if epoch < weights(r, cell).shape[0]]
                data.append(np.concatenate(pooled))
                positions.append(epoch)
            ax.boxplot(data, positions=positions, widths=0.6, whis=(0, 100), showfliers=False,
                       patch_artist=True, boxprops={"facecolor": "#9ecae1", "edgecolor": "#3182bd"},
                       medianprops={"color": "#08519c"}, whiskerprops={"color": "#3182bd"},
                       capprops={"color": "#3182bd"})
            ax.axhline(1.0 / k, color="black", ls="--", lw=1.2, label=f"uniform start 1/{k}")
            _published_range(ax, reference, cell, n_epochs)
            ax.set(title=f"{cell.capitalize()} cell", ylabel="Softmax weight")
            ax.legend(loc="upper left", fontsize=8)
        step = max(1, n_epochs // 20)
        axes[-1].set_xticks(range(0, n_epochs, step), [str(e) for e in range(0, n_epochs, step)])
        axes[-1].set_xlabel("Search epoch (0 = initialisation); box: quartiles, whiskers: min-max over edges, ops, seeds")
        fig.suptitle(f"{ds.name}: distribution of the architecture weights")
        fig.tight_layout()
        return fig

    return render_png(build)


def entropy_figure(ds: DatasetResults) -> bytes:
    """Top: per-edge entropy with ln 8 marked; bottom: its distance to ln 8 (log scale), so weights that
    stay near 1/8 (entropy indistinguishable from ln 8 on the top row) still show their trend."""
    runs = [r for r in ds.searches.values() if edge_entropies(r, "normal") is not None]
    if not runs:
        return placeholder(f"{ds.name}: no architecture weights for entropies")

    def build():
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(11, 6.2), sharex=True)
        k = n_ops(runs[0])
        for col, cell in enumerate(CELLS):
            top, bottom = axes[0, col], axes[1, col]
            for j, run in enumerate(runs):
                h = edge_entropies(run, cell)
                if h is None:
                    continue
                epochs = np.arange(h.shape[0])
                gap = np.clip(math.log(k) - h, 1e-9, None)
                for ax, values in ((top, h), (bottom, gap)):
                    ax.fill_between(epochs, values.min(axis=1), values.max(axis=1), color=seed_color(j), alpha=0.15,
                                    linewidth=0)
                    ax.plot(epochs, values.mean(axis=1), color=seed_color(j), label=f"seed {run.seed}: mean over edges")
            top.axhline(math.log(k), color="black", ls="--", lw=1.2, label=f"maximum ln {k} = {math.log(k):.3f}")
            top.set(title=f"{cell.capitalize()} cell", ylabel="Entropy per edge (nats)")
            top.set_ylim(0, math.log(k) * 1.08)
            top.legend(loc="lower left")
            bottom.set_yscale("log")
            bottom.set(xlabel="Search epoch (0 = initialisation)", ylabel=f"ln {k} − entropy (nats, log)")
        fig.suptitle(f"{ds.name}: per-edge entropy of the weights (band: min-max over the 14 edges)")
        fig.tight_layout()
        return fig

    return render_png(build)


def skip_figure(ds: DatasetResults) -> bytes:
    runs = [r for r in ds.searches.values() if r.epochs]
    if not runs:
        return placeholder(f"{ds.name}: no search history for skip counts")

    def build():
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
        for ax, cell in zip(axes, CELLS):
            for j, run in enumerate(runs):
                counts = skip_counts(run, cell)
                ax.step(np.arange(1, len(counts) + 1), counts + 0.04 * j, where="mid", color=seed_color(j),
                        label=f"seed {run.seed}")
            ax.set(title=f"{cell.capitalize()} cell", xlabel="Search epoch",
                   ylabel="skip_connect edges in the derived cell")
            ax.set_ylim(-0.3, 8.3)
            ax.set_yticks(range(0, 9, 2))
            ax.legend(loc="upper left")
        fig.suptitle(f"{ds.name}: skip connections among the 8 selected edges", y=1.02)
        fig.tight_layout()
        return fig

    return render_png(build)


def comparison_figure(datasets: list[DatasetResults]) -> bytes:
    usable = [(k, ds, _runs_with_alphas(ds)) for k, ds in enumerate(datasets)]
    usable = [(k, ds, runs) for k, ds, runs in usable if runs]
    if not usable:
        return placeholder("No architecture weights in any dataset")

    def build():
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
        k_ops = n_ops(usable[0][2][0])
        bins = np.linspace(0, 1, 61)
        for k, ds, runs in usable:
            color = dataset_color(k)
            final = np.concatenate([np.concatenate([r.alphas_normal[-1].ravel(), r.alphas_reduce[-1].ravel()])
                                    for r in runs])
            axes[0].hist(final, bins=bins, histtype="step", density=True, color=color, lw=1.6, label=ds.name)
            curves = []
            for r in runs:
                h = np.concatenate([entropy(r.alphas_normal), entropy(r.alphas_reduce)], axis=1).mean(axis=1)
                progress = np.linspace(0, 1, len(h))
                curves.append(np.interp(np.linspace(0, 1, 101), progress, h / math.log(k_ops)))
            curves = np.asarray(curves)
            grid = np.linspace(0, 100, 101)
            axes[1].plot(grid, curves.mean(axis=0), color=color, label=ds.name)
            if len(curves) > 1:
                axes[1].fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.15, lw=0)
            edge_max = np.concatenate([np.concatenate([r.alphas_normal[-1].max(axis=1), r.alphas_reduce[-1].max(axis=1)])
                                       for r in runs])
            parts = axes[2].violinplot([edge_max], positions=[k], widths=0.7, showmedians=True)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_alpha(0.5)
            for key in ("cbars", "cmins", "cmaxes", "cmedians"):
                if key in parts:
                    parts[key].set_color(color)
        axes[0].axvline(1 / k_ops, color="black", ls="--", lw=1.2, label=f"1/{k_ops}")
        axes[0].set(title="Final weights (all edges, ops, seeds)", xlabel="Softmax weight", ylabel="Density")
        axes[0].set_yscale("log")
        axes[1].axhline(1.0, color="black", ls="--", lw=1.2, label=f"maximum (ln {k_ops})")
        axes[1].set(title="Mean edge entropy / ln 8", xlabel="Search progress (% of epochs)",
                    ylabel="Normalised entropy")
        axes[1].set_ylim(0, 1.05)
        for k, ds, _ in usable:
            reference = reference_for(ds.info.provenance, ds.info.target)
            spans = list(reference.weight_ranges.values()) if reference else []
            if spans:
                low, high = min(s[0] for s in spans), max(s[1] for s in spans)
                axes[2].vlines(k + 0.42, low, high, color="#d62728", lw=3,
                               label="published 2019 range (all weights)" if k == usable[0][0] else None)
        axes[2].axhline(1 / k_ops, color="black", ls="--", lw=1.2, label=f"1/{k_ops} (no preference)")
        axes[2].set_xticks([k for k, _, _ in usable], [ds.name for _, ds, _ in usable])
        axes[2].set(title="Final largest weight per edge", ylabel="max over ops of the weight")
        axes[2].set_ylim(0, 1.02)
        for ax in axes:
            ax.legend(loc="best")
        fig.suptitle("Architecture-weight sparsity across datasets", y=1.02)
        fig.tight_layout()
        return fig

    return render_png(build)


def edge_weight_figure(ds: DatasetResults) -> bytes | None:
    """PC-DARTS edge normalization: each edge's weight (softmax over its node's inputs) per search epoch, one
    panel per cell type, one colour per intermediate node; None when no search of this dataset has them."""
    runs = [r for r in ds.searches.values() if r.edges]
    if not runs:
        return None

    def build():
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
        for ax, cell in zip(axes, CELLS):
            for run in runs:
                w = run.edges[cell]
                start = 0
                for node in range(N_NODES):
                    for j in range(node + 2):
                        ax.plot(w[:, start + j], color=seed_color(node), lw=1.2,
                                label=f"node {node} (1/{node + 2} uniform)" if j == 0 and run is runs[0] else None)
                    ax.axhline(1.0 / (node + 2), color=seed_color(node), ls=":", lw=0.8)
                    start += node + 2
            ax.set(title=f"{cell.capitalize()} cell: edge weights", xlabel="Search epoch (0 = initialisation)")
        axes[0].set_ylabel("Edge weight (softmax over the node's inputs)")
        axes[0].legend(loc="best", fontsize=8)
        fig.suptitle(f"{ds.name}: PC-DARTS edge normalization")
        fig.tight_layout()
        return fig

    return render_png(build)
