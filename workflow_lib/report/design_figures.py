"""Figures and table rows of the design stage (design.json) and the learning curves (learning_curves.json).

Each figure function takes the loaded JSON document(s) and returns PNG bytes (``figures.render_png``):

- ``best_vs_simulations(design)``: best true target found against simulations spent, per model (mean over
  seeds, min-max band), the random baseline dashed, the true best dotted (Hanakata et al., PRL 121, 255304,
  2018, Fig. 4 shows the same search curve for MD).
- ``recall_vs_simulations(design)``: how many of the true top-k designs were found, one panel per k.
- ``top_designs(design, n=5)``: the n best designs of the best guided model, as 3x5 cut patterns and as the
  30x80 sheet, with predicted and true values; the true best beside them.
- ``learning_curves(curves)``: test metric against training samples (log x), mean +- std over seeds.
- ``design_table_rows(design)``: per model, whether and with how many simulations it reached the true best,
  and its final top-k recall; sorted best first.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from workflow_lib.kirigami import tile
from workflow_lib.kirigami.lattice import CELL_DX, CELL_DY
from workflow_lib.report.figures import method_color, method_label, metric_label, placeholder, render_png

RANDOM = "random"


def model_label(model: str) -> str:
    return "Random picks" if model == RANDOM else method_label(model)


def model_color(model: str) -> Any:
    return "#7f7f7f" if model == RANDOM else method_color(model)


def _by_model(design: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in design["runs"]:
        runs.setdefault(run["model"], []).append(run)
    return runs


def _series(runs: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(simulations, values (seeds, generations)) of one record key; runs share one budget."""
    sims = np.array([r["simulations"] for r in runs[0]["records"]], dtype=float)
    values = np.array([[np.nan if r[key] is None else r[key] for r in run["records"]] for run in runs], float)
    return sims, values


def _band(ax: Any, model: str, runs: list[dict[str, Any]], key: str) -> None:
    sims, values = _series(runs, key)
    style = "--" if model == RANDOM else "-"
    ax.plot(sims, values.mean(axis=0), style, color=model_color(model), marker="o", markersize=3,
            label=f"{model_label(model)} ({len(runs)} seeds)")
    if len(runs) > 1:
        ax.fill_between(sims, values.min(axis=0), values.max(axis=0), color=model_color(model), alpha=0.15)


def best_vs_simulations(design: dict[str, Any]) -> bytes:
    if not design.get("runs"):
        return placeholder("No design runs.")

    def build():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for model, runs in _by_model(design).items():
            _band(ax, model, runs, "best_true")
        ax.axhline(design["true"]["best"], color="black", linestyle=":", linewidth=1, label="true best")
        ax.set_xlabel("Simulations (oracle calls)")
        ax.set_ylabel(f"Best true {design['target'].replace('_', ' ')} found")
        ax.set_title(f"{design['dataset']}: design search ({design['source']})")
        ax.legend(loc="lower right")
        return fig

    return render_png(build)


def recall_vs_simulations(design: dict[str, Any]) -> bytes:
    if not design.get("runs"):
        return placeholder("No design runs.")
    ks = sorted(int(k) for k in design["true"]["thresholds"])

    def build():
        fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.8), squeeze=False)
        for ax, k in zip(axes[0], ks):
            for model, runs in _by_model(design).items():
                _band(ax, model, runs, f"found_top{k}")
            ax.set_ylim(0, k * 1.05)
            ax.set_xlabel("Simulations")
            ax.set_ylabel(f"True top-{k} designs found")
            ax.set_title(f"Top-{k} recall")
        axes[0][-1].legend(loc="upper left")
        return fig

    return render_png(build)


def best_guided_run(design: dict[str, Any]) -> dict[str, Any] | None:
    """The guided run whose best designs to draw: the table's first model, its best seed."""
    rows = [r for r in design_table_rows(design) if r["model"] != RANDOM]
    if not rows:
        return None
    runs = [r for r in design["runs"] if r["model"] == rows[0]["model"]]
    return max(runs, key=lambda r: (r["records"][-1]["best_true"], -r["seed"]))


def _draw_design(ax_grid: Any, ax_sheet: Any, pattern: list[int], title: str) -> None:
    coarse = np.asarray(pattern).reshape(3, 5)
    ax_grid.imshow(coarse, cmap="Greys_r", vmin=-0.4, vmax=1, origin="lower")
    ax_grid.set_title(title, fontsize=8)
    ax_sheet.imshow(tile(coarse[None])[0], cmap="Greys_r", vmin=-0.4, vmax=1, origin="lower",
                    aspect=CELL_DX / CELL_DY)  # rows (load direction) are 4.118 A, columns 2.3775 A
    for ax in (ax_grid, ax_sheet):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color("#999999")


def top_designs(design: dict[str, Any], n: int = 5) -> bytes:
    run = best_guided_run(design)
    if run is None:
        return placeholder("No guided design runs.")
    shown = run["top_designs"][:n]
    best = design["true"]["top"][0]

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3g}"

    def build():
        cols = len(shown) + 1
        fig, axes = plt.subplots(2, cols, figsize=(2.2 * cols, 3.2), squeeze=False,
                                 gridspec_kw={"height_ratios": [1, 1.3]})
        for j, d in enumerate(shown):
            title = (f"true {fmt(d['true'])} (rank {d['true_rank']})\n"
                     f"predicted {fmt(d['predicted'])}, gen {d['generation']}")
            _draw_design(axes[0][j], axes[1][j], d["pattern"], title)
        _draw_design(axes[0][-1], axes[1][-1], best["pattern"], f"true best\n{fmt(best['true'])}")
        fig.suptitle(f"Best designs found by {model_label(run['model'])} (seed {run['seed']}); "
                     "dark = cut, load vertical", fontsize=9, y=1.04)
        return fig

    return render_png(build)


def learning_curves(curves: dict[str, Any]) -> bytes:
    points = curves.get("points") or []
    if not points:
        return placeholder("No learning-curve points.")

    def build():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for method in curves["methods"]:
            sizes = sorted({p["n_train"] for p in points if p["method"] == method})
            values = [[p["value"] for p in points if p["method"] == method and p["n_train"] == n] for n in sizes]
            mean = np.array([np.mean(v) for v in values])
            std = np.array([np.std(v) for v in values])
            ax.errorbar(sizes, mean, yerr=std, color=method_color(method), marker="o", markersize=4, capsize=3,
                        label=method_label(method))
        ax.set_xscale("log")
        ticks = sorted({p["n_train"] for p in points})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("Training samples")
        ax.set_ylabel(f"Test {metric_label(curves['metric'])}")
        seeds = len(curves["seeds"])
        ax.set_title(f"{curves['dataset']}: learning curves ({seeds} seed{'s' * (seeds != 1)}, mean +- std)")
        ax.legend(loc="lower right")
        return fig

    return render_png(build)


def _first_reaching(run: dict[str, Any], key: str, target: float) -> int | None:
    return next((r["simulations"] for r in run["records"] if r[key] is not None and r[key] >= target), None)


def design_table_rows(design: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model: seeds that reached the true best, mean simulations to it, final top-k found (mean, min, max)."""
    ks = sorted(int(k) for k in design["true"]["thresholds"])
    rows = []
    for model, runs in _by_model(design).items():
        reach = [_first_reaching(r, "best_true", design["true"]["best"]) for r in runs]
        hit = [s for s in reach if s is not None]
        row = {"model": model, "label": model_label(model), "runs": len(runs), "reached_best": len(hit),
               "simulations_to_best": float(np.mean(hit)) if hit else None,
               "simulations": runs[0]["simulations"]}
        for k in ks:
            final = [r["records"][-1][f"found_top{k}"] for r in runs]
            row[f"found_top{k}"] = {"mean": float(np.mean(final)), "min": int(min(final)), "max": int(max(final))}
        rows.append(row)
    k = ks[-1]
    return sorted(rows, key=lambda r: (-r["reached_best"], r["simulations_to_best"] or np.inf,
                                       -r[f"found_top{k}"]["mean"]))
