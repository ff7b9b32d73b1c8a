"""The report step: artifacts -> figures (files + manifest) -> one self-contained HTML page.

    report_step(results_dir, datasets, seeds, out_html, title, stage_times=None, figures_dir=None)

Also runnable as ``python -m workflow_lib.report.run --results results --datasets a b --seeds 0 1
--out results/report.html``.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any, Iterable, Sequence

from workflow_lib.io import atomic_path, write_json_atomic, write_text_atomic
from workflow_lib.report import advantage as A
from workflow_lib.report import cells as cells_mod
from workflow_lib.report import design_figures as D
from workflow_lib.report import diagnostics as DG
from workflow_lib.report import figures as F
from workflow_lib.report import render as R
from workflow_lib.report import sparsity as S
from workflow_lib.report.collect import METRIC_LABELS, DatasetResults, ReportData, collect

COMPARISON_DIR = "_all"  # figures that compare datasets (dataset names start with a letter)
CAPTIONS_DIR = "report/captions"

CAPTIONS = {
    "cells": "Learned {cell} cell of {dataset}, search seed {seed}: inputs c_{{k-2}}, c_{{k-1}} (green), "
             "intermediate nodes 0-3 (blue), output c_{{k}} = concatenation (yellow, dashed edges); "
             "each solid edge is labelled with its operation.",
    "search": "DARTS search of {dataset}: loss and {metric} on search-train (dashed) and search-val (solid) per "
              "epoch, one colour per seed; right: the weight learning rate.",
    "training": "Final training of the DARTS cell and the CNN baselines on {dataset} (train = split != test): "
                "training loss, test loss and test {metric} per epoch; one line per seed, one colour per method. "
                "The random forest has a single point.",
    "weights": "Distribution of the softmax architecture weights of {dataset} per search epoch (all 14 edges x 8 "
               "ops, pooled over seeds); the dashed line is the uniform starting value 1/8. Weights that stay "
               "near 1/8 mean the search did not prefer any operation.",
    "entropy": "Entropy of each edge's weight distribution over the 8 ops (line: mean over the 14 edges, band: "
               "min-max); the dashed line is the maximum ln 8, reached by uniform weights. Bottom row: the distance "
               "ln 8 - entropy on a log scale, which shows the trend even when the weights stay near 1/8.",
    "edges": "PC-DARTS edge normalization on {dataset}: the weight of each edge (softmax of the edge parameters "
             "over its node's incoming edges, Xu et al. 2020, Eq. 4) per search epoch; dotted: the uniform start "
             "1/(inputs of the node). The derived cell ranks edges by edge weight x operation weight.",
    "advantage": "Search advantage on {dataset} (Yang et al., ICLR 2020): the test {metric} of cells sampled "
                 "uniformly from the DARTS space (grey; black bar: their mean) and of the found cell (red star), "
                 "all trained with one protocol, per seed. The random cells are scored, never selected.",
    "skip_count": "Number of skip_connect edges among the 8 edges of the derived cell after each search epoch.",
    "diagnostics": "Dominant eigenvalue of the Hessian of the search-val loss with respect to the op-choice "
                   "architecture parameters (Zela et al., ICLR 2020) on a fixed search-val subset, at the epochs "
                   "where it was computed (markers), one colour per seed of {dataset}; dashed: the epoch whose cell "
                   "a stop rule returned. A growing eigenvalue means a sharp region, where the discretised cell "
                   "tends to generalise poorly.",
    "parity": "Predicted versus true {target} on the test split of {dataset} for {method}; one colour per seed, "
              "the black line is y = x and the legend gives each seed's test R².",
    "confusion": "Confusion matrix on the test split of {dataset} ({method}, seed {seed}, the seed with the best "
                 "search-val metric; never chosen by test score): counts, shaded by "
                 "the fraction of each true class.",
    "genotype": "Derived {dataset} cell (seed {seed}) after every search epoch: colour = operation of each of the "
                "8 selected edges per cell type, text = input node (k-2, k-1, or intermediate node), dotted "
                "lines = epochs at which the derived cell changed.",
    "design_best": "ML-guided design on {dataset}: the best target among the designs each run revealed against "
                   "the number of designs it revealed (its simulations), per picker; line: mean over seeds, band: "
                   "min-max; dotted: the true best of all candidates (lookup oracle). Random picks spend the same "
                   "simulations.",
    "design_recall": "How many of the true top-k designs (over all candidates) each picker has revealed after each "
                     "generation; mean over seeds with min-max band.",
    "design_top": "The best designs found on {dataset} (best guided run): the 3x5 cut pattern (black = cut) and the "
                  "30x80 sheet, with the value and the prediction that picked it; right, the true best (lookup).",
    "learning_curves": "Test score on {dataset} against the number of training samples (nested seeded subsets of "
                       "the training split; always the full test split), mean ± std over seeds, log x.",
    "comparison": "Architecture-weight sparsity across datasets: left, histogram of the final weights (log "
                  "density, 1/8 dashed); middle, mean edge entropy / ln 8 over the search (band: min-max over "
                  "seeds); right, the largest weight of each edge at the end of the search.",
}


class FigureSet:
    """Collects Rendered figures in page order and writes each one to figures_dir."""

    def __init__(self, figures_dir: Path):
        self.figures_dir = figures_dir
        self.items: list[F.Rendered] = []
        self.tables: list[dict[str, str]] = []

    def add(self, fig: F.Rendered) -> F.Rendered:
        self.items.append(fig)
        path = self.figures_dir / fig.relpath
        with atomic_path(path, suffix="." + fig.fmt) as tmp:
            tmp.write_bytes(fig.data)
        return fig

    def table(self, dataset: str, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]], title: str):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        relpath = f"{dataset}/tables/{name}.csv"
        write_text_atomic(self.figures_dir / relpath, buffer.getvalue())
        self.tables.append({"path": relpath, "dataset": dataset, "kind": "tables", "name": name, "title": title,
                            "format": "csv",
                            "caption": f"{CAPTIONS_DIR}/{'results_table' if name == 'results' else 'tables'}.rst"})


def _caption(kind: str, **values: Any) -> str:
    return CAPTIONS[kind].format(**values)


def _placeholder_svg(message: str) -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="420" height="60" viewBox="0 0 420 60">'
            f'<text x="10" y="35" font-family="Helvetica" font-size="14" fill="#666">{message}</text></svg>'
            ).encode()


def _cell_figures(ds: DatasetResults, figs: FigureSet, notes: list[str]) -> list[dict[str, Any]]:
    out = []
    for seed, run in sorted(ds.searches.items()):
        for cell in S.CELLS:
            key = f"{ds.name}-cell-{seed}-{cell}"
            genotype = run.genotype or {}
            pairs = genotype.get(cell)
            fallback = None
            if pairs:
                try:
                    data = cells_mod.cell_svg(pairs, genotype.get(f"{cell}_concat"),
                                              f"{ds.name}: {cell} cell (seed {seed})")
                except cells_mod.CellDrawingError as error:
                    notes.append(f"cell drawing failed ({error}); showing the edge list instead")
                    data = _placeholder_svg(f"{cell} cell: graphviz unavailable")
                    fallback = cells_mod.cell_fallback_html(pairs, genotype.get(f"{cell}_concat"))
            else:
                data = _placeholder_svg(f"{cell} cell of seed {seed}: no genotype.json")
            fig = figs.add(F.Rendered(key=key, kind="cells", dataset=ds.name, name=f"seed{seed}_{cell}",
                                      title=f"{cell.capitalize()} cell, seed {seed}",
                                      caption=_caption("cells", cell=cell, dataset=ds.name, seed=seed),
                                      data=data, fmt="svg"))
            entry = R.figure_context(fig, cells_mod.inline_svg(fig.data, key))
            entry["fallback"] = fallback
            entry["genotype"] = [{"op": op, "input": F.input_name(int(i)), "node": k // 2}
                                 for k, (op, i) in enumerate(pairs or [])]
            out.append(entry)
    return out


def _png(figs: FigureSet, ds_name: str, kind: str, name: str, title: str, caption: str, data: bytes):
    fig = figs.add(F.Rendered(key=f"{ds_name}-{kind}-{name}", kind=kind, dataset=ds_name, name=name,
                              title=title, caption=caption, data=data, fmt="png"))
    return R.figure_context(fig)


def dataset_section(ds: DatasetResults, figs: FigureSet) -> dict[str, Any]:
    notes = list(ds.notes)
    metric = "r2" if ds.task == "regression" else "accuracy"
    metric_text = METRIC_LABELS.get(metric, metric)
    section: dict[str, Any] = {
        "name": ds.name, "task": ds.task, "surrogate": ds.info.is_surrogate, "source": ds.info.source,
        "unit": ds.info.unit, "target": ds.info.target, "metric_label": metric_text,
    }
    table = R.results_table(ds)
    section["results"] = table
    section["per_seed"] = R.per_seed_table(ds)
    section["search"] = R.search_table(ds)
    section["diagnostics"] = DG.diagnostics_rows(ds)
    section["diagnostics_figure"] = _png(
        figs, ds.name, "diagnostics", "hessian", "Hessian eigenvalue per search epoch",
        _caption("diagnostics", dataset=ds.name), DG.eigenvalue_figure(ds)) if ds.searches else None
    figs.table(ds.name, "search_diagnostics",
               ["seed", "stop", "conclusive", "verdict", "stable_epochs_normal_reduce", "logit_margin_normal",
                "logit_margin_reduce", "max_logit_drift", "hessian_eigenvalue", "hessian_seconds"],
               [[r["seed"], r["stop"], r["conclusive"], r["verdict"], r["stable"], r["margins"]["normal"],
                 r["margins"]["reduce"], r["drift"], r["eigenvalue"], r["hessian_cost"]]
                for r in section["diagnostics"]], f"{ds.name}: search diagnostics per seed")
    section["budget"] = R.budget_table(ds)
    figs.table(ds.name, "results",
               ["method", "n_seeds", "parameters", "train_seconds_mean", "device"]
               + [f"{m}_{s}" for m in table["metrics"] for s in ("mean", "std")],
               [[r["method"], r["n_seeds"], r["parameters_value"], r["time_value"], r["device"]]
                + [v for m in table["metrics"] for v in (r["cells"][m]["value"], r["cells"][m]["std_value"])]
                for r in table["rows"]], f"{ds.name}: results per method (mean and std over seeds)")

    section["advantage"] = A.advantage_section(ds)
    if ds.advantage:
        section["advantage"]["figure"] = _png(
            figs, ds.name, "advantage", "strip", "Search advantage: found cell vs random cells",
            _caption("advantage", dataset=ds.name, metric=metric_text), A.strip_plot(ds))
        figs.table(ds.name, "search_advantage", ["seed", "cell", "test_score", "parameters", "seconds"],
                   A.cell_rows(ds), f"{ds.name}: test score of the found cell and of each random cell, per seed")

    section["cells"] = _cell_figures(ds, figs, notes)
    section["curves"] = [
        _png(figs, ds.name, "curves", "search", "Search curves",
             _caption("search", dataset=ds.name, metric=metric_text), F.search_curves(ds)),
        _png(figs, ds.name, "curves", "training", "Final training and baseline curves",
             _caption("training", dataset=ds.name, metric=metric_text), F.training_curves(ds)),
    ]
    section["sparsity_figures"] = [
        _png(figs, ds.name, "sparsity", "weights", "Architecture-weight distribution per epoch",
             _caption("weights", dataset=ds.name), S.weight_distribution(ds)),
        _png(figs, ds.name, "sparsity", "entropy", "Per-edge entropy", _caption("entropy"), S.entropy_figure(ds)),
        _png(figs, ds.name, "sparsity", "skip_count", "Skip connections in the derived cell",
             _caption("skip_count"), S.skip_figure(ds)),
    ]
    edge_figure = S.edge_weight_figure(ds)
    if edge_figure is not None:
        section["sparsity_figures"].append(_png(figs, ds.name, "sparsity", "edges", "Edge weights (PC-DARTS)",
                                                _caption("edges", dataset=ds.name), edge_figure))
    stats = S.sparsity_stats(ds)
    section["sparsity_stats"] = R.sparsity_rows(stats)

    section["parity"] = []
    section["confusion"] = None
    if ds.task == "regression":
        target = (ds.info.target or "target").replace("_", " ")
        for method, runs in ds.methods.items():
            section["parity"].append(_png(
                figs, ds.name, "parity", method, f"Parity plot: {F.method_label(method)}",
                _caption("parity", dataset=ds.name, method=F.method_label(method),
                         target=f"{target} ({ds.info.unit})" if ds.info.unit else target),
                F.parity(ds, method, runs)))
    elif ds.task == "classification":
        best = R.shown_run(ds)
        section["confusion"] = _png(
            figs, ds.name, "confusion", "best", "Confusion matrix",
            _caption("confusion", dataset=ds.name, method=F.method_label(best.method) if best else "n/a",
                     seed=best.seed if best else "n/a"),
            F.confusion(ds, best))
        section["best_model"] = {"method": best.method, "label": F.method_label(best.method),
                                 "seed": best.seed} if best else None

    section["genotype"] = []
    change_rows = []
    for seed, run in sorted(ds.searches.items()):
        genotypes = S.epoch_genotypes(run)
        changes = S.genotype_changes(genotypes)
        epochs_changed = sorted({c.epoch for c in changes})
        fig = _png(figs, ds.name, "genotype", f"seed{seed}", f"Genotype evolution, seed {seed}",
                   _caption("genotype", dataset=ds.name, seed=seed),
                   F.genotype_evolution(ds, run, genotypes, S.change_epochs(changes)))
        section["genotype"].append({"seed": seed, "figure": fig, "epochs": len(genotypes),
                                    "changed_epochs": epochs_changed,
                                    "last_change": epochs_changed[-1] if epochs_changed else None,
                                    "changes": [c.__dict__ for c in changes]})
        change_rows += [[seed, c.epoch, c.cell, c.slot, c.before, c.after] for c in changes]
    figs.table(ds.name, "genotype_changes", ["seed", "epoch", "cell", "slot", "before", "after"], change_rows,
               f"{ds.name}: changes of the derived cell between search epochs")
    figs.table(ds.name, "sparsity", ["cell", "seeds", "epochs", "max_weight", "mean_edge_max", "entropy_ratio",
                                     "near_uniform_fraction", "skip_count"],
               [[r["cell"], r["seeds"], r["epochs"], r["max_weight"], r["mean_edge_max"], r["entropy_ratio"],
                 r["near_uniform"], r["skip_count"]] for r in stats],
               f"{ds.name}: architecture-weight sparsity statistics (final epoch, mean over seeds)")
    section["design"] = design_section(ds, figs)
    section["notes"] = notes
    section["stats_raw"] = stats
    return section


def design_section(ds: DatasetResults, figs: FigureSet) -> dict[str, Any] | None:
    """The design loop (best design found vs simulations, recall, top designs) and the learning curves."""
    if ds.design is None and ds.curves is None:
        return None
    section: dict[str, Any] = {"figures": [], "table": [], "ks": [], "curves": None}
    if ds.design is not None:
        design = ds.design
        lookup = design.get("true") is not None
        section["ks"] = sorted(int(k) for k in design["true"]["thresholds"]) if lookup else []
        section["table"] = D.design_table_rows(design)
        section["top_rows"] = D.top_design_rows(design)
        section["budget"] = design.get("budget", {})
        section["oracle"] = design.get("oracle", {})
        section["n_given"] = design.get("n_given", 0)
        section["true_best"] = design["true"]["best"] if lookup else None
        section["figures"] = [
            _png(figs, ds.name, "design", "best", "Best design found vs simulations",
                 _caption("design_best", dataset=ds.name), D.best_vs_simulations(design))]
        if lookup:
            section["figures"].append(
                _png(figs, ds.name, "design", "recall", "True top-k designs found vs simulations",
                     _caption("design_recall", dataset=ds.name), D.recall_vs_simulations(design)))
        if design.get("kind", "kirigami") == "kirigami":
            section["figures"].append(
                _png(figs, ds.name, "design", "top", "Top designs found", _caption("design_top", dataset=ds.name),
                     D.top_designs(design)))
    if ds.curves is not None:
        section["curves"] = _png(figs, ds.name, "design", "learning_curves", "Learning curves",
                                 _caption("learning_curves", dataset=ds.name), D.learning_curves(ds.curves))
    return section


def build_context(report: ReportData, figs: FigureSet, title: str) -> dict[str, Any]:
    sections = [dataset_section(ds, figs) for ds in report.datasets]
    comparison = None
    if report.datasets:
        comparison = _png(figs, COMPARISON_DIR, "comparison", "sparsity", "Sparsity across datasets",
                          _caption("comparison"), S.comparison_figure(report.datasets))
    all_stats = [row for s in sections for row in s["sparsity_stats"]]
    figs.table(COMPARISON_DIR, "sparsity", ["dataset", "cell", "seeds", "epochs", "max_weight", "mean_edge_max",
                                            "entropy_ratio", "near_uniform_fraction", "skip_count"],
               [[r["dataset"], r["cell"], r["seeds"], r["epochs"], r["max_weight"], r["mean_edge_max"],
                 r["entropy_ratio"], r["near_uniform"], r["skip_count"]] for s in sections for r in s["stats_raw"]],
               "Architecture-weight sparsity statistics of every dataset")
    stages = R.stage_rows(report)
    if report.stage_times:
        figs.table(COMPARISON_DIR, "stage_times", ["stage", "total_seconds", "files"],
                   [[s.stage, s.seconds, s.files] for s in report.stage_times], "Compute time per stage")
    surrogate = [s["name"] for s in sections if s["surrogate"]]
    return {
        "title": title,
        "datasets": [ds.name for ds in report.datasets],
        "seeds": report.seeds,
        "provenance": R.provenance_rows(report),
        "surrogate_datasets": surrogate,
        "env": R.environment(report),
        "stages": stages,
        "stage_notes": report.stage_time_notes,
        "stage_times_given": bool(report.stage_times) or bool(report.stage_time_notes),
        "sections": sections,
        "comparison": comparison,
        "comparison_stats": all_stats,
    }


def report_step(results_dir: Path | str, datasets: Sequence[str], seeds: Sequence[int], out_html: Path | str,
                title: str = "DARTS architecture search: results",
                stage_times: Iterable[Path | str] | None = None,
                figures_dir: Path | str | None = None,
                manifest_path: Path | str | None = None,
                template_dir: Path | str | None = None,
                benchmarks: Iterable[Any] | None = None,
                plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render the report page and write every figure/table as its own file.

    results_dir: the workflow's results folder; datasets/seeds: what to report (missing artifacts are
    listed on the page, never fatal); out_html: the page (written atomically); stage_times: Snakemake
    benchmark TSVs (or folders of them) named benchmarks/{dataset}/{stage}...tsv; figures_dir: where the
    separate figure files go (default results_dir/report/figures); manifest_path: the figures manifest
    JSON (default figures_dir/manifest.json); benchmarks: an alias of stage_times (both are read; entries may
    be {dataset, step, path} dicts); plan: the rule's plan from the config ({"datasets": {name: {"methods",
    "search"}}}): only what it names is read. Returns the manifest.
    """
    if benchmarks:
        stage_times = [*(stage_times or []), *benchmarks]
    results_dir = Path(results_dir)
    out_html = Path(out_html)
    figures_dir = Path(figures_dir) if figures_dir is not None else results_dir / "report" / "figures"
    manifest_path = Path(manifest_path) if manifest_path is not None else figures_dir / "manifest.json"
    report = collect(results_dir, datasets, seeds, stage_times, plan)
    figs = FigureSet(figures_dir)
    context = build_context(report, figs, title)
    html = R.render_html(context, Path(template_dir) if template_dir else None)
    write_text_atomic(out_html, html)
    manifest = {
        "html": str(out_html),
        "figures_dir": str(figures_dir),
        "figures": [{"path": f.relpath, "file": str(figures_dir / f.relpath), "dataset": f.dataset, "kind": f.kind,
                     "name": f.name, "format": f.fmt, "title": f.title,
                     "caption": f"{CAPTIONS_DIR}/{f.kind}.rst"} for f in figs.items],
        "tables": [{**t, "file": str(figures_dir / t["path"])} for t in figs.tables],
        "datasets": list(datasets),
        "seeds": [int(s) for s in seeds],
        "surrogate_datasets": context["surrogate_datasets"],
    }
    write_json_atomic(manifest_path, manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflow_lib.report.run", description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--datasets", required=True, nargs="+")
    parser.add_argument("--seeds", required=True, nargs="+", type=int)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--title", default="DARTS architecture search: results")
    parser.add_argument("--stage-times", nargs="*", type=Path, default=None)
    parser.add_argument("--figures-dir", type=Path, default=None)
    parser.add_argument("--manifest", type=Path, default=None)
    args = parser.parse_args(argv)
    manifest = report_step(args.results, args.datasets, args.seeds, args.out, args.title, args.stage_times,
                           args.figures_dir, args.manifest)
    print(f"report: {args.out} ({len(manifest['figures'])} figures, {len(manifest['tables'])} tables)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["report_step", "main"]
