"""What a DARTS search records beyond its weights, to tell whether it found anything (history.json).

Per epoch (history.json; ``{cell}`` is normal or reduce, each list has one value per edge):

- ``hessian_eigenvalue``: the largest eigenvalue of the Hessian of the search-val loss w.r.t. the op alphas
  (Zela et al., ICLR 2020; ``workflow_lib.darts.hessian``), at the epochs ``search.diagnostics.hessian_every``
  selects, else null; its cost ``hessian_seconds``, ``hessian_iterations`` (Hessian-vector products) and
  ``hessian_converged``. Computing it changes nothing the search owns: the search is bitwise the same.
- ``stable_epochs_{cell}``: epochs since the derived cell last changed (0: it changed at this epoch);
  ``last_change_epoch``: the last epoch at which either cell changed (0: never since the initial cell).
- ``weight_margin_{cell}`` (14): the largest minus the second-largest softmax weight of each edge, with
  ``weight_margin_median_{cell}`` and ``weight_margin_max_{cell}`` (next to ``entropy_{cell}``).
- ``logit_margin_{cell}`` (14), ``logit_margin_median_{cell}``, ``logit_margin_max_{cell}``: the same on the
  raw alphas (logits); ``arch_steps``: architecture steps so far; ``max_logit_drift`` = ``alpha_lr *
  arch_steps``, about the farthest any logit can have moved (Adam moves a parameter by at most about its
  learning rate per step; Kingma and Ba, 2015, Sec. 2.1). A logit margin well below it could be noise.

Once per search (history.json, ``stop_summary``): ``stop_rule`` (null when no rule fired), ``stop_reason``
(``max_epochs`` or the rule's sentence with its numbers), ``stop_epoch`` (the epoch whose cell is
genotype.json), ``stop_details`` (the rule's numbers), ``epochs_run``, ``max_epochs``, ``conclusive`` and
``conclusive_reason`` (``workflow_lib.darts.stop_rules``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from workflow_lib.config import SearchConfig
from workflow_lib.darts.derive import top2_margin
from workflow_lib.darts.stop_rules import CELLS, conclusive, last_changes


def margin_record(weights: dict[str, np.ndarray], logits: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per cell type, each edge's top-1 minus top-2 softmax weight and logit, with their median and max."""
    record: dict[str, Any] = {}
    for kind, values in (("weight", weights), ("logit", logits)):
        for cell in CELLS:
            margin = top2_margin(values[cell])
            record[f"{kind}_margin_{cell}"] = margin.tolist()
            record[f"{kind}_margin_median_{cell}"] = float(np.median(margin))
            record[f"{kind}_margin_max_{cell}"] = float(margin.max())
    return record


def history_record(rows: Sequence[dict[str, Any]], initial_genotype: dict, alpha_lr: float) -> dict[str, Any]:
    """The keys of the newest row that need the history so far (``rows``, the newest last): the cell's stability
    and the logits' largest possible drift."""
    epoch = int(rows[-1]["epoch"])
    last = last_changes([initial_genotype, *(r["genotype"] for r in rows)])[-1]
    steps = int(sum(r["steps"] for r in rows if r.get("alphas_updated")))
    return {**{f"stable_epochs_{cell}": epoch - last[cell] for cell in CELLS},
            "last_change_epoch": max(last.values()),
            "arch_steps": steps,
            "max_logit_drift": alpha_lr * steps}


def stop_summary(cfg: SearchConfig, initial: dict, history: list[dict], decision: dict | None) -> dict[str, Any]:
    """Why and where the search ended, and whether it is conclusive (history.json's top-level keys)."""
    genotypes = [initial["genotype"], *(row["genotype"] for row in history)]
    verdict, why = conclusive(genotypes, decision, cfg.arch_warmup_epochs)
    return {
        "stop_rule": decision["rule"] if decision else None,
        "stop_reason": decision["reason"] if decision else "max_epochs",
        "stop_epoch": int(decision["stop_epoch"]) if decision else len(history),
        "stop_details": decision["details"] if decision else None,
        "epochs_run": len(history),
        "max_epochs": cfg.epochs,
        "conclusive": verdict,
        "conclusive_reason": why,
    }
