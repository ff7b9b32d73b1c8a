"""Figures and table rows of the design stage (design.json) and the learning curves (learning_curves.json).

Each figure function takes the loaded JSON document(s) and returns PNG bytes (``figures.render_png``):

- ``best_vs_simulations(design)``: best target found against simulations spent, per picker (mean over seeds,
  min-max band), the random picks dashed, the true best dotted when the oracle is a lookup table (Hanakata
  et al., PRL 121, 255304, 2018, Fig. 4 shows the same search curve for MD).
- ``recall_vs_simulations(design)``: lookup oracle: how many of the true top-k designs were found, per k.
- ``top_designs(design, n=5)``: kirigami: the n best designs of the best guided picker's best run, as 3x5 cut
  patterns and as the 30x80 sheet, with predicted and true values; the true best beside them.
- ``learning_curves(curves)``: test metric against training samples (log x), mean +- std over seeds.
- ``design_table_rows(design)``: per picker: best found, failed simulations, and (lookup) whether and with
  how many simulations it reached the true best and its final top-k recall; sorted best first.
- ``top_design_rows(design)``: the best designs of the best guided run (id, value, prediction, generation).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from workflow_lib.kirigami import tile
from workflow_lib.kirigami.lattice import CELL_DX, CELL_DY
from workflow_lib.report.figures import SEED_COLORS, method_color, method_label, metric_label, placeholder, render_png

RANDOM = "random"
ACQUISITION_LABELS = {"greedy": "greedy", "ucb": "UCB", "ei": "EI"}


def picker_label(design: dict[str, Any], picker: str) -> str:
    """``name (model, acquisition[, diverse][, ensemble of n])``; the random baseline is "Random picks"."""
    settings = design.get("pickers", {}).get(picker, {})
    if settings.get("model") == RANDOM:
        return "Random picks" if picker == RANDOM else f"{picker} (random picks)"
    parts = [method_label(settings.get("model", picker)), ACQUISITION_LABELS.get(settings.get("acquisition"), "")]
    if settings.get("batch") == "diverse":
        parts.append(f"diverse >= {settings.get('min_distance')}")
    if settings.get("ensemble", 1) > 1:
        parts.append(f"ensemble of {settings['ensemble']}")
    return f"{picker} ({', '.join(p for p in parts if p)})"


def _is_random(design: dict[str, Any], picker: str) -> bool:
    return design.get("pickers", {}).get(picker, {}).get("model") == RANDOM


def picker_color(design: dict[str, Any], picker: str) -> Any:
    if _is_random(design, picker):
        return "#7f7f7f"
    guided = [p for p in _by_picker(design) if not _is_random(design, p)]
    return SEED_COLORS[guided.index(picker) % len(SEED_COLORS)]


def _by_picker(design: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in design["runs"]:
        runs.setdefault(run["picker"], []).append(run)
    return runs


def _series(runs: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(simulations, values (seeds, generations)) of one record key; runs share one budget."""
    sims = np.array([r["simulations"] for r in runs[0]["records"]], dtype=float)
    values = np.array([[np.nan if r.get(key) is None else r[key] for r in run["records"]] for run in runs], float)
    return sims, values


def _band(ax: Any, design: dict[str, Any], picker: str, runs: list[dict[str, Any]], key: str) -> None:
    sims, values = _series(runs, key)
    color = picker_color(design, picker)
    style = "--" if _is_random(design, picker) else "-"
    ax.plot(sims, np.nanmean(values, axis=0), style, color=color, marker="o", markersize=3,
            label=f"{picker_label(design, picker)} ({len(runs)} seeds)")
    if len(runs) > 1:
        ax.fill_between(sims, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.15)


def best_vs_simulations(design: dict[str, Any]) -> bytes:
    if not design.get("runs"):
        return placeholder("No design runs.")

    def build():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for picker, runs in _by_picker(design).items():
            _band(ax, design, picker, runs, "best")
        if design.get("true"):
            ax.axhline(design["true"]["best"], color="black", linestyle=":", linewidth=1, label="true best")
        ax.set_xlabel("Simulations (designs revealed per run)")
        ax.set_ylabel(f"Best {design['target'].replace('_', ' ')} found")
        ax.set_title(f"{design['dataset']}: design search ({design['source']}, {design['oracle']['type']} oracle)")
        ax.legend(loc="lower right", fontsize=7)
        return fig

    return render_png(build)


def recall_vs_simulations(design: dict[str, Any]) -> bytes:
    if not design.get("runs") or not design.get("true"):
        return placeholder("Recall needs every candidate's true target (lookup oracle).")
    ks = sorted(int(k) for k in design["true"]["thresholds"])

    def build():
        fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.8), squeeze=False)
        for ax, k in zip(axes[0], ks):
            for picker, runs in _by_picker(design).items():
                _band(ax, design, picker, runs, f"found_top{k}")
            ax.set_ylim(0, k * 1.05)
            ax.set_xlabel("Simulations")
            ax.set_ylabel(f"True top-{k} designs found")
            ax.set_title(f"Top-{k} recall")
        axes[0][-1].legend(loc="upper left", fontsize=7)
        return fig

    return render_png(build)


def best_guided_run(design: dict[str, Any]) -> dict[str, Any] | None:
    """The guided run whose best designs to show: the table's first guided picker, its best seed."""
    rows = [r for r in design_table_rows(design) if not _is_random(design, r["picker"])]
    if not rows:
        return None
    runs = [r for r in design["runs"] if r["picker"] == rows[0]["picker"]]
    return max(runs, key=lambda r: (-np.inf if r["records"][-1]["best"] is None else r["records"][-1]["best"],
                                    -r["seed"]))


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


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def top_designs(design: dict[str, Any], n: int = 5) -> bytes:
    run = best_guided_run(design)
    if run is None:
        return placeholder("No guided design runs.")
    shown = [d for d in run["top_designs"][:n] if "pattern" in d]
    if not shown:
        return placeholder("Only kirigami designs are drawn; the table lists the best designs by id.")
    best = (design.get("true") or {}).get("top", [None])[0]

    def build():
        cols = len(shown) + (best is not None)
        fig, axes = plt.subplots(2, cols, figsize=(2.2 * cols, 3.2), squeeze=False,
                                 gridspec_kw={"height_ratios": [1, 1.3]})
        for j, d in enumerate(shown):
            rank = "" if d.get("true_rank") is None else f" (rank {d['true_rank']})"
            title = f"value {_fmt(d['value'])}{rank}\npredicted {_fmt(d['predicted'])}, gen {d['generation']}"
            _draw_design(axes[0][j], axes[1][j], d["pattern"], title)
        if best is not None:
            _draw_design(axes[0][-1], axes[1][-1], best["pattern"], f"true best\n{_fmt(best['value'])}")
        fig.suptitle(f"Best designs found by {picker_label(design, run['picker'])} (seed {run['seed']}); "
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
    return next((r["simulations"] for r in run["records"] if r.get(key) is not None and r[key] >= target), None)


def _spread(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values))}


def design_table_rows(design: dict[str, Any]) -> list[dict[str, Any]]:
    """Per picker: best found (mean, min, max over seeds), failed simulations; lookup: seeds that reached the
    true best, mean simulations to it, final top-k found (mean, min, max)."""
    true = design.get("true")
    ks = sorted(int(k) for k in true["thresholds"]) if true else []
    rows = []
    for picker, runs in _by_picker(design).items():
        row = {"picker": picker, "label": picker_label(design, picker), "runs": len(runs),
               "simulations": runs[0]["simulations"], "failed": float(np.mean([r["failed"] for r in runs])),
               "best": _spread([r["records"][-1]["best"] for r in runs]), "reached_best": None,
               "simulations_to_best": None}
        if true:
            reach = [_first_reaching(r, "best", true["best"]) for r in runs]
            hit = [s for s in reach if s is not None]
            row.update(reached_best=len(hit), simulations_to_best=float(np.mean(hit)) if hit else None)
            for k in ks:
                row[f"found_top{k}"] = _spread([r["records"][-1][f"found_top{k}"] for r in runs])
        rows.append(row)
    if true:
        k = ks[-1]
        return sorted(rows, key=lambda r: (-r["reached_best"], r["simulations_to_best"] or np.inf,
                                           -r[f"found_top{k}"]["mean"]))
    return sorted(rows, key=lambda r: -(r["best"]["mean"] if r["best"] else -np.inf))


def top_design_rows(design: dict[str, Any], n: int = 10) -> list[dict[str, Any]]:
    """The best designs of the best guided run (the table's first guided picker, its best seed)."""
    run = best_guided_run(design)
    if run is None:
        return []
    return [{**d, "picker": run["picker"], "seed": run["seed"]} for d in run["top_designs"][:n]]
