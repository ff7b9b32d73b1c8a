"""Matplotlib figures of the report, in one consistent style (Agg backend, PNG bytes).

Every figure function returns PNG bytes (``render_png``) so the page can inline it as base64 and
the report step can write the same bytes to ``figures/{dataset}/{kind}/{name}.png``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from workflow_lib.report.collect import METRIC_LABELS, DatasetResults, MethodRun, SearchRun  # noqa: E402

DPI = 100
STYLE: dict[str, Any] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "svg.fonttype": "none",
}

# One colour per method / seed / dataset across every figure of the report.
_TAB10 = plt.get_cmap("tab10").colors
METHOD_ORDER = ("darts", "random_forest", "resnet18", "tiny_resnet", "random_search")
OP_COLORS = {
    "none": "#ffffff", "max_pool_3x3": "#8dd3c7", "avg_pool_3x3": "#bebada", "skip_connect": "#fb8072",
    "sep_conv_3x3": "#80b1d3", "sep_conv_5x5": "#fdb462", "dil_conv_3x3": "#b3de69",
    "dil_conv_5x5": "#fccde5",
}


def method_color(method: str) -> tuple:
    if method in METHOD_ORDER:
        return _TAB10[METHOD_ORDER.index(method)]
    return _TAB10[(len(METHOD_ORDER) + sum(map(ord, method))) % len(_TAB10)]


SEED_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def seed_color(k: int) -> str:
    return SEED_COLORS[k % len(SEED_COLORS)]


def dataset_color(k: int) -> tuple:
    return plt.get_cmap("Dark2").colors[k % 8]


METHOD_LABELS = {"darts": "DARTS cell", "random_forest": "Random forest", "resnet18": "ResNet-18",
                 "tiny_resnet": "Tiny ResNet", "random_search": "Random search",
                 "fixed_cell": "Published cell (fixed)"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


@dataclass
class Rendered:
    """One figure: bytes plus what the page and the manifest need to know about it."""

    key: str  # unique on the page, e.g. "kirigami-sparsity-entropy"
    kind: str  # cells | curves | sparsity | parity | confusion | genotype | comparison
    dataset: str  # dataset name, or "all" for cross-dataset figures
    name: str  # file stem
    title: str
    caption: str
    data: bytes
    fmt: str  # "png" | "svg"

    @property
    def relpath(self) -> str:
        return f"{self.dataset}/{self.kind}/{self.name}.{self.fmt}"


def render_png(build: Callable[[], plt.Figure]) -> bytes:
    """Build a figure under the report style and return PNG bytes (the figure is closed)."""
    with matplotlib.rc_context(STYLE):
        fig = build()
        try:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
            return buffer.getvalue()
        finally:
            plt.close(fig)


def placeholder(message: str, size: tuple[float, float] = (6, 2)) -> bytes:
    def build():
        fig = plt.figure(figsize=size)
        fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666666", wrap=True)
        return fig

    return render_png(build)


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v if v is not None else math.nan for v in values], dtype=float)


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric or "metric")


def loss_label(task: str) -> str:
    if task == "regression":
        return "Loss (MSE, standardised target)"
    if task == "classification":
        return "Loss (cross-entropy)"
    return "Loss"


# ------------------------------------------------------------------------------------- curves

def search_curves(ds: DatasetResults) -> bytes:
    searches = [s for s in ds.searches.values() if s.epochs]
    if not searches:
        return placeholder(f"{ds.name}: no search history")
    metric = searches[0].metric or ("r2" if ds.task == "regression" else "accuracy")

    def build():
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for k, run in enumerate(searches):
            epochs = _finite([e.get("epoch") for e in run.epochs])
            color = seed_color(k)
            for ax, key in ((axes[0], "loss"), (axes[1], "metric")):
                ax.plot(epochs, _finite([e.get(f"train_{key}") for e in run.epochs]), "--", color=color,
                        label=f"seed {run.seed} train")
                ax.plot(epochs, _finite([e.get(f"val_{key}") for e in run.epochs]), "-", color=color,
                        label=f"seed {run.seed} validation")
            axes[2].plot(epochs, _finite([e.get("lr") for e in run.epochs]), color=color, label=f"seed {run.seed}")
        axes[0].set(title="Search loss", xlabel="Search epoch", ylabel=loss_label(ds.task))
        axes[1].set(title=f"Search {metric_label(metric)}", xlabel="Search epoch",
                    ylabel=f"{metric_label(metric)} (search-train / search-val)")
        axes[2].set(title="Weight learning rate", xlabel="Search epoch", ylabel="Learning rate")
        for ax in axes:
            ax.legend(loc="best")
        fig.suptitle(f"{ds.name}: DARTS search (train dashed, validation solid)", y=1.02)
        fig.tight_layout()
        return fig

    return render_png(build)


def training_curves(ds: DatasetResults) -> bytes:
    with_curves = {m: runs for m, runs in ds.methods.items() if any(r.curves for r in runs.values())}
    if not with_curves:
        return placeholder(f"{ds.name}: no training curves")
    metric = "r2" if ds.task == "regression" else "accuracy"

    def build():
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for method, runs in with_curves.items():
            color = method_color(method)
            for k, run in enumerate(runs.values()):
                rows = run.curves
                epochs = _finite([r.get("epoch") for r in rows])
                marker = "o" if len(rows) <= 2 else None
                label = method_label(method) if k == 0 else None
                for ax, key in zip(axes, ("train_loss", "test_loss", "test_metric")):
                    values = _finite([r.get(key) for r in rows])
                    if np.isfinite(values).any():
                        ax.plot(epochs, values, color=color, marker=marker, alpha=0.85, label=label)
        axes[0].set(title="Training loss", xlabel="Epoch", ylabel=loss_label(ds.task))
        axes[1].set(title="Test loss", xlabel="Epoch", ylabel=loss_label(ds.task))
        axes[2].set(title=f"Test {metric_label(metric)}", xlabel="Epoch", ylabel=metric_label(metric))
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best")
        fig.suptitle(f"{ds.name}: final training and baselines (one line per seed)", y=1.02)
        fig.tight_layout()
        return fig

    return render_png(build)


# ----------------------------------------------------------------------------- parity / confusion

def parity(ds: DatasetResults, method: str, runs: dict[int, MethodRun]) -> bytes:
    usable = [r for r in runs.values() if r.predictions is not None and len(r.predictions["y_true"])]
    if not usable:
        return placeholder(f"{ds.name} / {method}: no predictions")
    target = (ds.info.target or "target").replace("_", " ")
    unit = ds.info.unit
    unit_text = f" ({unit})" if unit else ""

    def build():
        fig, ax = plt.subplots(figsize=(4.8, 4.6))
        lo, hi = math.inf, -math.inf
        for k, run in enumerate(usable):
            y_true, y_pred = run.predictions["y_true"], run.predictions["y_pred"]
            r2 = run.test.get("r2")
            if r2 is None:
                r2 = 1 - np.sum((y_pred - y_true) ** 2) / np.sum((y_true - y_true.mean()) ** 2)
            ax.scatter(y_true, y_pred, s=9, alpha=0.55, color=seed_color(k), edgecolors="none",
                       label=f"seed {run.seed}: R² = {float(r2):.4f}", rasterized=True)
            finite = np.concatenate([y_true[np.isfinite(y_true)], y_pred[np.isfinite(y_pred)]])
            if finite.size:
                lo, hi = min(lo, finite.min()), max(hi, finite.max())
        if math.isfinite(lo):
            pad = 0.04 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=1, label="y = x")
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.set(title=f"{ds.name}: {method_label(method)}", xlabel=f"True {target}{unit_text}",
               ylabel=f"Predicted {target}{unit_text}")
        ax.legend(loc="upper left")
        fig.tight_layout()
        return fig

    return render_png(build)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    ok = (y_true >= 0) & (y_true < n_classes) & (y_pred >= 0) & (y_pred < n_classes)
    np.add.at(matrix, (y_true[ok].astype(int), y_pred[ok].astype(int)), 1)
    return matrix


def confusion(ds: DatasetResults, run: MethodRun | None) -> bytes:
    if run is None or run.predictions is None or not len(run.predictions["y_true"]):
        return placeholder(f"{ds.name}: no predictions for a confusion matrix")
    y_true = run.predictions["y_true"]
    y_pred = run.predictions["y_pred"]
    names = ds.info.class_names or [str(k) for k in range(int(np.nanmax([y_true.max(), y_pred.max()])) + 1)]
    matrix = confusion_matrix(y_true, y_pred, len(names))
    accuracy = run.test.get("accuracy", float(np.trace(matrix) / max(matrix.sum(), 1)))

    def build():
        size = min(4 + 0.35 * len(names), 11)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = matrix / matrix.sum(axis=1, keepdims=True)
        image = ax.imshow(np.nan_to_num(rates), cmap="Blues", vmin=0, vmax=1)
        if len(names) <= 20:
            for i in range(len(names)):
                for j in range(len(names)):
                    if matrix[i, j]:
                        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                                color="white" if rates[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 2 else 0)
        ax.set_yticks(range(len(names)), names)
        ax.grid(False)
        ax.set(xlabel="Predicted class", ylabel="True class",
               title=f"{ds.name}: {method_label(run.method)}, seed {run.seed} (accuracy {accuracy:.4f})")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Fraction of the true class")
        fig.tight_layout()
        return fig

    return render_png(build)


# ------------------------------------------------------------------------------ genotype evolution

def input_name(index: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(index, str(index - 2))


def genotype_evolution(ds: DatasetResults, run: SearchRun, genotypes: list[dict],
                       changes: list[int]) -> bytes:
    """Heatmap: which op (colour) and input (text) each of the 8 selected edges had per epoch."""
    if not genotypes:
        return placeholder(f"{ds.name} seed {run.seed}: no per-epoch genotypes")
    ops = [p for p in run.primitives if p != "none"]
    cmap = ListedColormap([OP_COLORS.get(op, "#cccccc") for op in ops])
    epochs = list(range(1, len(genotypes) + 1))

    def build():
        width = min(max(6.0, 0.32 * len(epochs) + 3), 18)
        fig, axes = plt.subplots(2, 1, figsize=(width, 6.2), sharex=True)
        for ax, cell in zip(axes, ("normal", "reduce")):
            n_slots = max(len(g.get(cell, [])) for g in genotypes)
            grid = np.full((n_slots, len(genotypes)), np.nan)
            for col, g in enumerate(genotypes):
                for row, (op, idx) in enumerate(g.get(cell, [])):
                    if op in ops:
                        grid[row, col] = ops.index(op)
                    if len(epochs) <= 40:
                        ax.text(col + 1, row, {0: "k-2", 1: "k-1"}.get(idx, str(idx - 2)), ha="center",
                                va="center", fontsize=6.5)
            ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-0.5, vmax=len(ops) - 0.5, aspect="auto",
                      extent=(0.5, len(epochs) + 0.5, n_slots - 0.5, -0.5), interpolation="nearest")
            ax.set_yticks(range(n_slots), [f"node {r // 2}, in {r % 2 + 1}" for r in range(n_slots)])
            ax.grid(False)
            ax.set_title(f"{cell.capitalize()} cell")
            for epoch in changes.get(cell, []) if isinstance(changes, dict) else changes:
                ax.axvline(epoch - 0.5, color="black", lw=1.1, ls=":")
        axes[-1].set_xlabel("Search epoch (dotted line: the derived cell changed; text: input node)")
        step = max(1, len(epochs) // 20)
        axes[-1].set_xticks(epochs[::step])
        handles = [Patch(facecolor=OP_COLORS.get(op, "#cccccc"), edgecolor="#555555",
                                            label=op) for op in ops]
        fig.legend(handles=handles, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.08))
        fig.suptitle(f"{ds.name}, seed {run.seed}: derived cell per search epoch")
        fig.tight_layout()
        return fig

    return render_png(build)
