"""Stop rules of a DARTS search (``search.stop``), as pure functions of the search's history.

Epochs are 1-based, as in history.json (``"epoch": k + 1`` for the loop's 0-based index k).

- ``darts_es``: the early-stop rule of R-DARTS (DARTS-ES; Zela et al., ICLR 2020, Sec. 5.1), as their code
  (automl/RobustDARTS, the class that tracks the eigenvalues' local average) applies it. Eigenvalues are
  computed every ``ev_freq`` epochs (``search.diagnostics.hessian_every``) and at the last epoch. After
  each one (not at the last epoch) the local average is updated: once at least ceil(window/2) values
  exist, the mean of all values so far while fewer than ``window`` exist, then the mean of the last
  ``window`` values; each local average belongs to the epoch ``ev_freq * floor(window/2)`` before the
  current one (the centre of its window). The search stops when the newest local average exceeds the one
  ``delta`` local averages earlier by more than ``factor`` (the paper: lambda(i-k)/lambda(i) < 0.75, with
  their defaults window 5, delta 4, factor 1.3), provided that earlier local average's epoch is at least
  ``start_epoch``. That epoch is the stop epoch: its derived cell is the search's result (the cell before
  the curvature grew). Their ``es_start_epoch`` 10 counts epochs from 0; ``start_epoch`` counts from 1,
  so their default is 11 here.
- ``stable_genotype``: in the spirit of DARTS+ (Liang et al., 2019, which stops once the derived cell's
  ranking has been stable for several epochs): stop at the first epoch >= ``start_epoch`` at which the
  derived cell (normal and reduce) has not changed for ``stable_epochs`` epochs in which the architecture
  was updated (warm-up epochs, which leave the alphas untouched, do not count). The result is that epoch's
  cell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

RULES = ("none", "darts_es", "stable_genotype")
CELLS = ("normal", "reduce")


@dataclass(frozen=True)
class StopDecision:
    rule: str
    check_epoch: int  # the epoch after which the rule fired: the search's last epoch
    stop_epoch: int  # the epoch whose derived cell is the result
    reason: str  # one sentence with the numbers
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------ DARTS-ES

def darts_es(eigenvalues: Sequence[tuple[int, float]], ev_freq: int, total_epochs: int, window: int = 5,
             delta: int = 4, factor: float = 1.3, start_epoch: int = 11) -> StopDecision | None:
    """The first DARTS-ES stop over ``eigenvalues``: (1-based epoch, eigenvalue) at the epochs where it was
    computed, in order; None when the rule never fires."""
    values: list[float] = []
    local: list[float] = []
    half = int(math.ceil(window / 2))
    for epoch, value in eigenvalues:
        zero_based = epoch - 1
        if zero_based >= total_epochs - 1:  # the last epoch ends the search anyway: no check there
            break
        values.append(float(value))
        if len(values) < half:
            continue  # no local average yet
        local.append(float(np.mean(values[-window:])))  # all so far while fewer than `window`
        local_epoch = zero_based - ev_freq * (window // 2)  # 0-based epoch of the newest local average
        stop_zero_based = local_epoch - ev_freq * delta  # 0-based epoch of the local average compared with
        if stop_zero_based < start_epoch - 1 or len(local) <= delta:
            continue
        current, previous = local[-1], local[-1 - delta]
        if previous == 0 or not current / previous > factor:
            continue
        stop = stop_zero_based + 1
        reason = (f"darts_es: the local average of the Hessian eigenvalue grew from {previous:.4g} (epoch {stop}) "
                  f"to {current:.4g} (epoch {local_epoch + 1}), a ratio of {current / previous:.3f} > {factor:g}, "
                  f"seen at epoch {epoch}; the result is the cell of epoch {stop} (Zela et al., ICLR 2020)")
        return StopDecision("darts_es", epoch, stop, reason,
                            {"current_local_average": current, "previous_local_average": previous,
                             "ratio": current / previous, "factor": factor, "window": window, "delta": delta,
                             "ev_freq": ev_freq, "local_average_epoch": local_epoch + 1})
    return None


# ---------------------------------------------------------------------------------- stable cell

def last_changes(genotypes: Sequence[dict]) -> list[dict[str, int]]:
    """Per epoch (``genotypes[0]`` is the initial cell, ``genotypes[k]`` the cell after epoch k), the epoch at
    which each cell type last changed (0: never since the start)."""
    out, last = [], {cell: 0 for cell in CELLS}
    for epoch in range(1, len(genotypes)):
        for cell in CELLS:
            if genotypes[epoch].get(cell) != genotypes[epoch - 1].get(cell):
                last[cell] = epoch
        out.append(dict(last))
    return out


def stable_genotype(genotypes: Sequence[dict], stable_epochs: int = 3, start_epoch: int = 1,
                    warmup_epochs: int = 0) -> StopDecision | None:
    """The first epoch >= ``start_epoch`` after which both cell types have been unchanged for
    ``stable_epochs`` architecture-updating epochs; ``genotypes[0]`` is the initial cell."""
    for epoch, last in enumerate(last_changes(genotypes), start=1):
        since = max(max(last.values()), warmup_epochs)  # warm-up epochs cannot change the cell
        if epoch >= start_epoch and epoch - since >= stable_epochs:
            reason = (f"stable_genotype: the derived cell (normal and reduce) has not changed for "
                      f"{epoch - since} epochs (since epoch {since}) at epoch {epoch}, the required "
                      f"{stable_epochs} (in the spirit of DARTS+, Liang et al. 2019)")
            return StopDecision("stable_genotype", epoch, epoch, reason,
                                {"stable_epochs": epoch - since, "required": stable_epochs,
                                 "last_change_epoch": max(last.values())})
    return None


# ------------------------------------------------------------------------------------ dispatch

def decide(stop: dict[str, Any], rows: Sequence[dict], initial_genotype: dict, total_epochs: int,
           hessian_every: int, warmup_epochs: int) -> StopDecision | None:
    """The configured rule (``search.stop``) applied to the history rows so far (each with ``epoch``,
    ``genotype`` and ``hessian_eigenvalue``); None while the search goes on."""
    rule = stop["rule"]
    if rule == "darts_es":
        eigenvalues = [(int(r["epoch"]), float(r["hessian_eigenvalue"])) for r in rows
                       if r.get("hessian_eigenvalue") is not None]
        return darts_es(eigenvalues, hessian_every, total_epochs, **stop["darts_es"])
    if rule == "stable_genotype":
        return stable_genotype([initial_genotype, *[r["genotype"] for r in rows]], warmup_epochs=warmup_epochs,
                               **stop["stable_genotype"])
    if rule != "none":
        raise ValueError(f"unknown stop rule {rule!r}; expected one of {RULES}")
    return None


def conclusive(genotypes: Sequence[dict], decision: StopDecision | dict | None,
               warmup_epochs: int = 0) -> tuple[bool, str]:
    """Whether a search answered its question: a stop rule fired, or the derived cell did not change over the
    last 30% of its epochs (rounded up; epochs after the warm-up only). Returns (verdict, one sentence)."""
    if decision is not None:
        d = decision.to_dict() if isinstance(decision, StopDecision) else decision
        return True, (f"conclusive: the {d['rule']} rule stopped the search at epoch {d['check_epoch']} "
                      f"(the cell of epoch {d['stop_epoch']})")
    epochs = len(genotypes) - 1
    if epochs < 1:
        return False, "not conclusive: no search epoch was run"
    need = (3 * epochs + 9) // 10  # ceil(0.3 * epochs) in integers (0.3 * 10 is 3.0000000000000004)
    last = max(last_changes(genotypes)[-1].values())
    if epochs - need < warmup_epochs:
        return False, (f"not conclusive: the last {need} of {epochs} epochs (30%) include warm-up epochs, "
                       f"which do not update the architecture")
    if epochs - last >= need:
        return True, (f"conclusive: the derived cell did not change over the last {epochs - last} of {epochs} "
                      f"epochs (at least 30%, {need}, needed)")
    return False, (f"not conclusive: the derived cell last changed at epoch {last} of {epochs}; it has to stay "
                   f"unchanged over the last 30% of the epochs ({need})")
