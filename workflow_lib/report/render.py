"""Tables (plain dicts for the template) and the Jinja rendering of report/report.html.j2."""

from __future__ import annotations

import base64
import datetime as _dt
import math
from pathlib import Path
from typing import Any, Iterable

import jinja2
import numpy as np

from workflow_lib.report.collect import (
    HIGHER_IS_BETTER, METRIC_LABELS, DatasetResults, ReportData,
)
from workflow_lib.report.budget import method_budget, phases
from workflow_lib.report.figures import Rendered, method_label
from workflow_lib.report.published import reference_for

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "report"
TEMPLATE_NAME = "report.html.j2"


# ----------------------------------------------------------------------------------- formatting

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def fmt_num(value: Any, digits: int = 4) -> str:
    """Fixed decimals for values in [-10, 10] (metrics), 4 significant digits otherwise."""
    if not _is_number(value) or not math.isfinite(float(value)):
        return "n/a"
    value = float(value)
    if abs(value) < 10:
        return f"{value:.{digits}f}"
    return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:.{digits}g}"


def fmt_seconds(value: Any) -> str:
    if not _is_number(value) or not math.isfinite(float(value)):
        return "n/a"
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def fmt_params(value: Any) -> str:
    if not _is_number(value) or not math.isfinite(float(value)):
        return "n/a"
    value = float(value)
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def data_value(value: Any) -> str:
    """Full-precision value for data-value attributes (sorting, tests)."""
    if not _is_number(value):
        return "" if value is None else str(value)
    return repr(float(value)) if math.isfinite(float(value)) else "nan"


def mean_std(values: Iterable[Any]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1; NaN for one value) of the finite values."""
    finite = [float(v) for v in values if _is_number(v) and math.isfinite(float(v))]
    if not finite:
        return math.nan, math.nan, 0
    mean = float(np.mean(finite))
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    return mean, std, len(finite)


def fmt_pm(mean: float, std: float, digits: int = 4) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return fmt_num(mean, digits) + (f" ± {fmt_num(std, digits)}" if math.isfinite(std) else "")


# --------------------------------------------------------------------------------------- tables

def results_table(ds: DatasetResults) -> dict[str, Any]:
    """The Table-1-like summary: one row per method, mean ± std over seeds, best per column marked."""
    metrics = list(ds.metric_names)
    columns = [{"key": m, "label": f"Test {METRIC_LABELS.get(m, m)}",
                "better": "higher" if HIGHER_IS_BETTER.get(m, True) else "lower"} for m in metrics]
    rows = []
    for method, runs in ds.methods.items():
        docs = [r.metrics for r in runs.values()]
        params = [d.get("parameters") for d in docs if _is_number(d.get("parameters"))]
        time_mean, time_std, _ = mean_std(d.get("train_seconds") for d in docs)
        devices = sorted({str(d.get("device")) for d in docs if d.get("device")})
        cells = {}
        for metric in metrics:
            mean, std, n = mean_std((d.get("test") or {}).get(metric) for d in docs)
            cells[metric] = {"mean": mean, "std": std, "n": n, "text": fmt_pm(mean, std),
                             "value": data_value(mean), "std_value": data_value(std), "best": False}
        rows.append({
            "method": method, "label": method_label(method), "seeds": sorted(runs),
            "n_seeds": len(runs),
            "parameters": params[0] if params and len(set(params)) == 1 else (float(np.mean(params)) if params else None),
            "parameters_text": fmt_params(float(np.mean(params))) if params else "n/a",
            "parameters_value": data_value(float(np.mean(params))) if params else "nan",
            "time_text": (fmt_seconds(time_mean) + (f" ± {fmt_seconds(time_std)}" if math.isfinite(time_std) else "")),
            "time_value": data_value(time_mean),
            "device": ", ".join(devices) or "n/a",
            "epochs": ", ".join(sorted({str(d.get("epochs")) for d in docs if d.get("epochs") is not None})) or "n/a",
            "budget": method_budget(ds, method),
            "cells": cells,
        })
    for metric in metrics:
        candidates = [r for r in rows if math.isfinite(r["cells"][metric]["mean"])]
        if candidates:
            pick = max if HIGHER_IS_BETTER.get(metric, True) else min
            best = pick(candidates, key=lambda r: r["cells"][metric]["mean"])
            for r in candidates:
                if r["cells"][metric]["mean"] == best["cells"][metric]["mean"]:
                    r["cells"][metric]["best"] = True
    return {"id": f"results-{ds.name}", "columns": columns, "rows": rows, "metrics": metrics,
            "published": published_rows(ds, metrics)}


def published_rows(ds: DatasetResults, metrics: list[str]) -> dict[str, Any] | None:
    """The published results of this dataset's reference, marked as published, with data and measurement."""
    reference = reference_for(ds.info.provenance, ds.info.target)
    if reference is None or not reference.results:
        return None
    rows = [{"method": r.method, "label": r.label,
             "parameters_text": fmt_params(r.parameters) if r.parameters else "n/a",
             "metric_texts": [("≈ " if r.approximate else "") + fmt_num(r.value) if m == r.metric else "" for m in metrics]}
            for r in reference.results]
    return {"source": reference.source, "data": reference.data, "measured": reference.measured, "rows": rows}


def per_seed_table(ds: DatasetResults) -> dict[str, Any]:
    metrics = list(ds.metric_names)
    rows = []
    for method, runs in ds.methods.items():
        for seed, run in sorted(runs.items()):
            test = run.test
            rows.append({"method": method, "label": method_label(method), "seed": seed,
                         "parameters": fmt_params(run.metrics.get("parameters")),
                         "time": fmt_seconds(run.metrics.get("train_seconds")),
                         "device": run.metrics.get("device", "n/a"),
                         "metric_values": [{"text": fmt_num(test.get(m)), "value": data_value(test.get(m))}
                                    for m in metrics]})
    return {"id": f"seeds-{ds.name}", "metrics": [METRIC_LABELS.get(m, m) for m in metrics], "rows": rows}


def search_table(ds: DatasetResults) -> list[dict[str, Any]]:
    rows = []
    selection = {c["seed"]: c for c in (ds.selection or {}).get("candidates", [])}
    selected = (ds.selection or {}).get("selected_seed")
    for seed, run in sorted(ds.searches.items()):
        val = [e.get("val_metric") for e in run.epochs]
        finite = [v for v in val if _is_number(v) and math.isfinite(v)]
        genotype = run.genotype or {}
        rows.append({
            "seed": seed, "epochs": run.n_epochs, "metric": METRIC_LABELS.get(run.metric, run.metric),
            "final_val": fmt_num(val[-1]) if val else "n/a",
            "best_val": fmt_num(max(finite)) if finite else "n/a",
            "wall": fmt_seconds(run.wall_seconds),
            "skip_normal": sum(1 for op, _ in genotype.get("normal", []) if op == "skip_connect"),
            "skip_reduce": sum(1 for op, _ in genotype.get("reduce", []) if op == "skip_connect"),
            "device": (run.run_info.get("hardware") or {}).get("device", "n/a") if run.run_info else "n/a",
            "selection": (fmt_num(selection[seed]["val_metric"]) + (" (selected)" if seed == selected else ""))
            if seed in selection else "",
        })
    return rows


def budget_table(ds: DatasetResults) -> list[dict[str, Any]]:
    """Every phase that cost compute (search, random-search candidates, final training, fits), per method."""
    return [{**row, "label": method_label(row["method"]), "wall": fmt_seconds(row["wall"])} for row in phases(ds)]


def shown_run(ds: DatasetResults):
    """The run a single-run figure shows, chosen without looking at the test set: the DARTS cell (else the
    first method), at the seed whose search ended with the best search-val metric (else the lowest seed)."""
    if not ds.methods:
        return None
    method = "darts" if "darts" in ds.methods else next(iter(ds.methods))
    runs = ds.methods[method]
    val = {seed: run.epochs[-1].get("val_metric") for seed, run in ds.searches.items() if run.epochs}
    ranked = [seed for seed in sorted(runs) if _is_number(val.get(seed)) and math.isfinite(val[seed])]
    seed = max(ranked, key=lambda s: (val[s], -s)) if method == "darts" and ranked else min(runs)
    return runs[seed]


def provenance_rows(report: ReportData) -> list[dict[str, Any]]:
    rows = []
    for ds in report.datasets:
        prov = ds.info.provenance
        rows.append({
            "dataset": ds.name, "task": ds.task, "source": ds.info.source,
            "surrogate": ds.info.is_surrogate,
            "description": prov.get("description", ""), "path": prov.get("path") or prov.get("url") or "",
            "sha256": str(prov.get("sha256", ""))[:12],
            "n_samples": ds.info.n_samples if ds.info.n_samples is not None else "n/a",
            "splits": ", ".join(f"{k} {v}" for k, v in ds.info.split_counts.items()) or "n/a",
            "target": (f"{ds.info.target} ({ds.info.unit})" if ds.info.unit else ds.info.target)
            if ds.task == "regression" else f"{len(ds.info.class_names) or '?'} classes",
        })
    return rows


def environment(report: ReportData) -> dict[str, Any]:
    infos = report.run_infos()
    commits = sorted({str(i.get("git_commit")) for i in infos if i.get("git_commit")})
    versions: dict[str, set] = {}
    for info in infos:
        for name, version in (info.get("versions") or {}).items():
            versions.setdefault(name, set()).add(str(version))
    hardware = []
    seen = set()
    for info in infos:
        hw = info.get("hardware") or {}
        key = (hw.get("hostname"), hw.get("device"), hw.get("gpu"))
        if hw and key not in seen:
            seen.add(key)
            hardware.append({"hostname": hw.get("hostname", "n/a"), "device": hw.get("device", "n/a"),
                             "gpu": hw.get("gpu", ""), "cpu": hw.get("processor") or hw.get("machine", ""),
                             "cpu_count": hw.get("cpu_count", "n/a")})
    finished = sorted(str(i.get("finished_utc")) for i in infos if i.get("finished_utc"))
    return {"commits": commits or ["unknown"],
            "versions": [{"name": k, "version": ", ".join(sorted(v))} for k, v in versions.items()],
            "hardware": hardware, "runs": len(infos),
            "finished": (finished[0], finished[-1]) if finished else None}


def stage_rows(report: ReportData) -> dict[str, Any]:
    datasets = sorted({d for s in report.stage_times for d in s.per_dataset})
    rows = [{"stage": s.stage, "total": fmt_seconds(s.seconds), "total_value": data_value(s.seconds),
             "files": s.files,
             "per_dataset": [fmt_seconds(s.per_dataset[d]) if d in s.per_dataset else "–" for d in datasets]}
            for s in report.stage_times]
    total = sum(s.seconds for s in report.stage_times)
    return {"datasets": datasets, "rows": rows, "total": fmt_seconds(total) if rows else "n/a",
            "total_value": data_value(total)}


def sparsity_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        out.append({"dataset": row["dataset"], "cell": row["cell"], "seeds": row["seeds"], "epochs": row["epochs"],
                    **{key: fmt_pm(row[key], row[f"{key}_std"], 3) for key in
                       ("max_weight", "mean_edge_max", "entropy_ratio", "near_uniform", "skip_count")},
                    **{f"{key}_value": data_value(row[key]) for key in
                       ("max_weight", "mean_edge_max", "entropy_ratio", "near_uniform", "skip_count")}})
    return out


# ---------------------------------------------------------------------------------------- figures

def figure_context(fig: Rendered, inline: str | None = None) -> dict[str, Any]:
    entry = {"key": fig.key, "title": fig.title, "caption": fig.caption, "file": fig.relpath, "fmt": fig.fmt}
    if fig.fmt == "svg":
        entry["svg"] = inline
    else:
        entry["src"] = "data:image/png;base64," + base64.b64encode(fig.data).decode("ascii")
    return entry


# ------------------------------------------------------------------------------------------ render

def environment_jinja(template_dir: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir or TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, seconds=fmt_seconds, params=fmt_params)
    return env


def render_html(context: dict[str, Any], template_dir: Path | None = None,
                template_name: str = TEMPLATE_NAME) -> str:
    context = {"generated_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **context}
    return environment_jinja(template_dir).get_template(template_name).render(**context)
