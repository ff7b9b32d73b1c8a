"""The search advantage in the report: one plain sentence per dataset, a per-seed table and a strip plot.

Reads the per-seed ``advantage.json`` (``darts.advantage``; Yang et al., ICLR 2020): the found cell's test score
against random cells of the same space, all trained with one protocol. The sentence says plainly whether the
found cell beat them: it counts as better only when it beats more than half of them (percentile > 50) and
scores above their mean; otherwise the sentence says it was no better than random cells. Several seeds are
pooled as in summary.json (``results.advantage.summary_block``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workflow_lib.report.collect import METRIC_LABELS, DatasetResults
from workflow_lib.report.figures import placeholder, render_png

import matplotlib.pyplot as plt  # noqa: E402 - after figures, which selects the Agg backend
from workflow_lib.results.advantage import summary_block

FOUND_COLOR = "#d62728"
RANDOM_COLOR = "#7f7f7f"


def _num(value: Any, digits: int = 4) -> str:
    return f"{float(value):.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(float(value)) else "n/a"


def _ri(value: Any) -> str:
    return f"{value:+.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "undefined"


def is_better(block: dict[str, Any]) -> bool:
    """The found cell beat more than half of the random cells and scored above their mean."""
    found, mean, percentile = block.get("found_score"), block.get("random_mean"), block.get("percentile")
    return (percentile is not None and percentile > 50 and found is not None and mean is not None
            and math.isfinite(found) and found > mean)


def protocol_text(protocol: dict[str, Any]) -> str:
    epochs = protocol.get("epochs")
    text = f"all trained with the same {epochs}-epoch protocol"
    details = []
    if protocol.get("train_samples"):
        details.append(f"{int(protocol['train_samples']):,} training samples")
    if protocol.get("max_steps_per_epoch"):
        details.append(f"at most {protocol['max_steps_per_epoch']} steps per epoch")
    final = protocol.get("final_training_epochs")
    if final and epochs and final != epochs:
        details.append(f"the final training runs {final} epochs")
    return text + (f" ({'; '.join(details)})" if details else "")


def sentence(documents: dict[int, dict[str, Any]], metric_label: str) -> str:
    docs = [documents[seed] for seed in sorted(documents)]
    block = summary_block(docs)
    ties = sum(int(d.get("ties", 0)) for d in docs)
    several = len(docs) > 1
    subject = f"the found cells of {len(docs)} seeds" if several else "the found cell"
    beat = f"{block['beaten']} of {block['n']} random cells" + (f" and tied {ties}" if ties else "")
    numbers = (f"{'pooled ' if several else ''}percentile {block['percentile']:.0f}; test {metric_label} "
               f"{_num(block['found_score'])}{' (mean)' if several else ''} vs random {_num(block['random_mean'])} "
               f"± {_num(block['random_std'])}, relative improvement {_ri(block['relative_improvement'])}")
    protocol = protocol_text(block["protocol"])
    caveat = short_protocol_caveat(block)
    if is_better(block):
        return f"Search advantage: {subject} beat {beat} of the same space ({numbers}), {protocol}.{caveat}"
    return (f"Search advantage: none. {subject[0].upper() + subject[1:]} "
            f"{'were' if several else 'was'} no better than random cells of the same space: "
            f"{'they' if several else 'it'} beat {beat} ({numbers}), {protocol}.{caveat}")


def short_protocol_caveat(block: dict[str, Any]) -> str:
    """For R^2: random cells whose mean is not above zero predict no better than the mean target, so the
    protocol is too short to rank cells (the ranking is then mostly which cells learn fastest)."""
    mean = block.get("random_mean")
    if block["protocol"].get("metric") != "r2" or mean is None or not math.isfinite(mean) or mean > 0:
        return ""
    return (" The protocol is too short to rank cells: the random cells' mean test R² is not above 0 (no better "
            "than predicting the mean); raise search_advantage.train_samples or epochs for a sharper answer.")


def absent_sentence(planned: bool | None) -> str:
    if planned is False:
        return ("Search advantage: not measured for this dataset (it runs no search, or "
                "search_advantage.enabled is false).")
    if planned:
        return "Search advantage: not available (advantage.json is missing; see the notes below)."
    return "Search advantage: not available (no advantage.json: results from before this step, or no search)."


def seed_rows(documents: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for seed, d in sorted(documents.items()):
        rows.append({"seed": seed, "found": _num(d["found"]["score"]),
                     "random": f"{_num(d['random_mean'])} ± {_num(d['random_std'])}",
                     "beaten": f"{d['beaten']} / {d['n']}" + (f" ({d['ties']} tied)" if d.get("ties") else ""),
                     "percentile": _num(d["percentile"], 1), "ri": _ri(d["relative_improvement"]),
                     "z": _num(d.get("z_score"), 2), "epochs": d["protocol"].get("epochs"),
                     "percentile_value": d["percentile"]})
    return rows


def advantage_section(ds: DatasetResults) -> dict[str, Any]:
    """{"sentence", "better" (True/False/None when absent), "rows"} for the template."""
    metric = "r2" if ds.task == "regression" else "accuracy"
    label = METRIC_LABELS.get(metric, metric) if metric == "r2" else metric
    if not ds.advantage:
        return {"sentence": absent_sentence(ds.advantage_planned), "better": None, "rows": []}
    block = summary_block([ds.advantage[s] for s in sorted(ds.advantage)])
    return {"sentence": sentence(ds.advantage, label), "better": is_better(block), "rows": seed_rows(ds.advantage)}


def cell_rows(ds: DatasetResults) -> list[list[Any]]:
    """Every cell's test score (the CSV behind the strip plot)."""
    rows = []
    for seed, d in sorted(ds.advantage.items()):
        rows.append([seed, "found", d["found"]["score"], d["found"]["parameters"], d["found"]["seconds"]])
        rows += [[seed, f"random{c['index']}", c["score"], c["parameters"], c["seconds"]] for c in d["random"]]
    return rows


def strip_plot(ds: DatasetResults) -> bytes:
    """Per seed: the random cells' test scores (grey, jittered), their mean (black bar), the found cell (red)."""
    if not ds.advantage:
        return placeholder(f"{ds.name}: no search advantage results")
    metric = "r2" if ds.task == "regression" else "accuracy"
    seeds = sorted(ds.advantage)
    jitter = np.random.default_rng(0)

    def build():
        fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(seeds) + 2.4), 3.8))
        for k, seed in enumerate(seeds):
            d = ds.advantage[seed]
            scores = np.asarray([c["score"] if c["score"] is not None else np.nan for c in d["random"]], float)
            ax.scatter(k + jitter.uniform(-0.12, 0.12, len(scores)), scores, s=28, color=RANDOM_COLOR, alpha=0.8,
                       edgecolors="none", label="random cells" if k == 0 else None, zorder=2)
            if d["random_mean"] is not None:
                ax.hlines(d["random_mean"], k - 0.25, k + 0.25, color="black", lw=1.5,
                          label="random mean" if k == 0 else None, zorder=3)
            ax.scatter([k], [d["found"]["score"]], marker="*", s=220, color=FOUND_COLOR, edgecolors="black",
                       linewidths=0.6, label="found cell" if k == 0 else None, zorder=4)
            ax.annotate(f"beats {d['beaten']}/{d['n']}", (k, d["found"]["score"]), xytext=(12, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_xticks(range(len(seeds)), [f"seed {s}" for s in seeds])
        ax.set_xlim(-0.6, len(seeds) - 0.4)
        ax.set(ylabel=f"Test {METRIC_LABELS.get(metric, metric)}",
               title=f"{ds.name}: found cell vs random cells of the same space")
        ax.legend(loc="best")
        fig.tight_layout()
        return fig

    return render_png(build)

