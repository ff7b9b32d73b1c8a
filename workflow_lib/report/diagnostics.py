"""Did the search find anything? Its diagnostics per seed (history.json; workflow_lib.darts.search_diagnostics):
how it ended and whether it is conclusive, how long the derived cell has been unchanged, the logits'
margins against the farthest any logit could have moved, and the Hessian eigenvalue per epoch (figure).

Results written before these diagnostics existed have none of the keys: every value then reads
"not recorded", and the page still renders.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt

from workflow_lib.report.collect import DatasetResults, SearchRun
from workflow_lib.report.figures import placeholder, render_png, seed_color
from workflow_lib.report.render import _is_number, data_value, fmt_seconds

NOT_RECORDED = "not recorded"
CELLS = ("normal", "reduce")


def _num(value: Any) -> str:
    """3 significant digits (margins and eigenvalues span orders of magnitude)."""
    return f"{float(value):.3g}" if _is_number(value) and math.isfinite(float(value)) else NOT_RECORDED


def _final(run: SearchRun, key: str) -> Any:
    return run.epochs[-1].get(key) if run.epochs else None


def eigenvalues(run: SearchRun) -> list[tuple[int, float]]:
    """(epoch, eigenvalue) at the epochs where it was computed."""
    return [(int(e["epoch"]), float(e["hessian_eigenvalue"])) for e in run.epochs
            if _is_number(e.get("hessian_eigenvalue")) and _is_number(e.get("epoch"))]


def stop_text(run: SearchRun) -> str:
    stop = run.stop
    if "stop_reason" not in stop:
        return NOT_RECORDED
    ran, most = stop.get("epochs_run", run.n_epochs), stop.get("max_epochs", run.n_epochs)
    if stop.get("stop_rule"):
        return f"{stop['stop_rule']} after epoch {ran} of {most}; the cell of epoch {stop.get('stop_epoch')}"
    return f"max_epochs: all {ran} of {most} epochs"


def noise_sentence(run: SearchRun) -> str:
    """The largest logit margin (both cells, final epoch) against the farthest any logit could have moved."""
    margins = [_final(run, f"logit_margin_max_{cell}") for cell in CELLS]
    drift = _final(run, "max_logit_drift")
    if not all(_is_number(m) for m in margins) or not _is_number(drift):
        return f"logit margins: {NOT_RECORDED}"
    largest = max(float(m) for m in margins)
    if largest <= float(drift):
        return (f"largest logit margin {largest:.3g}, while any logit could have moved {float(drift):.3g}: "
                f"the derived cell could be decided by noise")
    return (f"largest logit margin {largest:.3g}, more than the {float(drift):.3g} any single logit could have "
            f"moved")


def diagnostics_rows(ds: DatasetResults) -> list[dict[str, Any]]:
    """One row per search seed for the template (and the CSV table)."""
    rows = []
    for seed, run in sorted(ds.searches.items()):
        values = eigenvalues(run)
        verdict = run.stop.get("conclusive")
        stable = [_final(run, f"stable_epochs_{cell}") for cell in CELLS]
        seconds = [e["hessian_seconds"] for e in run.epochs if _is_number(e.get("hessian_seconds"))]
        rows.append({
            "seed": seed,
            "stop": stop_text(run),
            "stop_reason": run.stop.get("stop_reason") if run.stop.get("stop_rule") else None,
            "conclusive": verdict if isinstance(verdict, bool) else None,
            "verdict": run.stop.get("conclusive_reason") or f"verdict: {NOT_RECORDED}",
            "stable": " / ".join(str(s) if _is_number(s) else NOT_RECORDED for s in stable)
            if any(_is_number(s) for s in stable) else NOT_RECORDED,
            "last_change": _final(run, "last_change_epoch") if _is_number(_final(run, "last_change_epoch"))
            else NOT_RECORDED,
            "margins": {cell: (f"{_num(_final(run, f'logit_margin_median_{cell}'))} / "
                               f"{_num(_final(run, f'logit_margin_max_{cell}'))}")
                        if _is_number(_final(run, f"logit_margin_max_{cell}")) else NOT_RECORDED for cell in CELLS},
            "drift": _num(_final(run, "max_logit_drift")),
            "drift_value": data_value(_final(run, "max_logit_drift")),
            "noise": noise_sentence(run),
            "eigenvalue": (f"{values[0][1]:.3g} (epoch {values[0][0]}) to {values[-1][1]:.3g} (epoch "
                           f"{values[-1][0]}), {len(values)} values") if values else NOT_RECORDED,
            "eigenvalue_last": data_value(values[-1][1]) if values else "",
            "hessian_cost": fmt_seconds(sum(seconds)) if seconds and values else NOT_RECORDED,
        })
    return rows


def eigenvalue_figure(ds: DatasetResults) -> bytes:
    """The dominant Hessian eigenvalue per search epoch: one line per seed, a marker where it was computed, a
    dashed line at the epoch a stop rule chose."""
    runs = [(k, run) for k, run in enumerate(ds.searches.values()) if eigenvalues(run)]
    if not runs:
        return placeholder(f"{ds.name}: no Hessian eigenvalue recorded")

    def build():
        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        for k, run in runs:
            epochs, values = zip(*eigenvalues(run))
            ax.plot(epochs, values, "-o", color=seed_color(k), ms=4, label=f"seed {run.seed}")
            if run.stop.get("stop_rule") and _is_number(run.stop.get("stop_epoch")):
                ax.axvline(run.stop["stop_epoch"], color=seed_color(k), ls="--", lw=1.1,
                           label=f"seed {run.seed}: stop epoch ({run.stop['stop_rule']})")
        ax.set(title=f"{ds.name}: dominant Hessian eigenvalue of the search-val loss (op alphas)",
               xlabel="Search epoch", ylabel="Largest eigenvalue")
        ax.legend(loc="best")
        fig.tight_layout()
        return fig

    return render_png(build)
