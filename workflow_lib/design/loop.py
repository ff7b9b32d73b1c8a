"""The design loop as a sequence of generations (Hanakata et al., PRL 121, 255304, 2018 ran it by hand).

One *run* = one picker x one seed. Generation 0: every run of a seed reveals the same ``n_initial`` designs,
drawn uniformly from the candidates (``default_rng([seed, 0])``). Generation g >= 1: each run fits its
model on the designs *it* revealed (and the ``given`` ones), scores its unseen candidates with its
acquisition and picks ``per_generation`` of them with its batch rule (ties broken by
``default_rng([seed, 1, g])``, models seeded with ``seed * 1000 + g``); the random picker draws uniformly.

A generation is three steps, so the same code runs in one process (lookup oracle) and as Snakemake jobs,
one process per step (command oracle, ``run.py``):

1. ``pick(state, g)``: every run's picks of generation g; returns the designs requested (their union).
2. ``settle(state, results)``: the oracle's answers enter ``state.known`` (id -> value and status), shared by
   all runs: a design revealed by several runs, seeds or generations is simulated once.
3. ``close(state, g)``: each run's record of generation g (its simulations, failures, best value, scores).

Budget: a run *reveals* exactly ``n_initial + generations * per_generation`` distinct designs, whether the
table already held them or not (its ``simulations``); a design whose simulation failed counts and is never
picked again by any run (its status is ``failed``); ``given`` designs (simulated before, from the npz's y)
are known to every run from the start and count in no budget. Unseen for a run = every candidate it has not
revealed, not given and not failed.

The loop never reads a label it was not given: ``pick`` passes a model only the ids and values of the run's
known designs (``models.py``); the scorer (``observe``) sees the truth but is called after the picks are fixed
and its answer goes only into the records.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from workflow_lib.design.acquisition import Distances, acquisition, rank, select
from workflow_lib.design.config import DesignConfig, DesignError

OK, FAILED, GIVEN = "ok", "failed", "given"
Observe = Callable[[np.ndarray, np.ndarray | None, np.ndarray], dict[str, Any]]


@dataclass
class RunState:
    """What one run revealed, in order: id, generation, the prediction (mean, std) that picked it."""

    picker: str
    seed: int
    revealed: list[int] = field(default_factory=list)
    generation: list[int] = field(default_factory=list)
    predicted: list[float | None] = field(default_factory=list)
    std: list[float | None] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # pick time per generation
    filled: list[int] = field(default_factory=list)  # diverse batch rule: picks below min_distance per generation

    @property
    def name(self) -> str:
        return f"{self.picker}/seed{self.seed}"


@dataclass
class LoopState:
    runs: list[RunState]
    known: dict[int, dict[str, Any]]  # id -> {"y": float | None, "status", "generation", "reused"}
    generation: int = -1  # the last generation picked
    predictions: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)  # in memory

    def to_dict(self) -> dict[str, Any]:
        runs = [{k: v for k, v in vars(run).items()} for run in self.runs]
        known = [[i, *(entry[k] for k in ("y", "status", "generation", "reused"))]
                 for i, entry in sorted(self.known.items())]
        return {"generation": self.generation, "runs": runs, "known": known}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "LoopState":
        runs = [RunState(**run) for run in document["runs"]]
        known = {int(i): {"y": y, "status": status, "generation": g, "reused": reused}
                 for i, y, status, g, reused in document["known"]}
        return cls(runs=runs, known=known, generation=int(document["generation"]))

    def value(self, i: int) -> float | None:
        entry = self.known.get(int(i))
        return None if entry is None else entry["y"]

    def failed(self) -> set[int]:
        return {i for i, entry in self.known.items() if entry["status"] == FAILED}


def new_state(cfg: DesignConfig, seeds: list[int], given: np.ndarray) -> LoopState:
    runs = [RunState(picker=name, seed=int(seed)) for name in cfg.pickers for seed in seeds]
    known = {int(i): {"y": float(given[i]), "status": GIVEN, "generation": -1, "reused": False}
             for i in np.flatnonzero(np.isfinite(given))}
    return LoopState(runs=runs, known=known)


@dataclass
class PickContext:
    """What picking needs besides the state: the space, the settings and a model per (model, ensemble)."""

    cfg: DesignConfig
    space: Any
    model: Callable[[str, int], Any]  # (model name, ensemble) -> an object with fit_predict(known, values, seed)
    distances: Distances | None = None
    log: Callable[[str], None] = lambda message: None

    def __post_init__(self) -> None:
        if any(p.batch == "diverse" for p in self.cfg.pickers.values()) and self.distances is None:
            self.distances = Distances(self.space.features, self.space.binary)


def check_budget(cfg: DesignConfig, n_candidates: int, n_given: int) -> None:
    if cfg.simulations > n_candidates - n_given:
        raise DesignError(f"design: budget n_initial + generations * per_generation = {cfg.simulations} exceeds "
                          f"the {n_candidates - n_given} candidates not simulated before")


def pick(state: LoopState, generation: int, ctx: PickContext) -> list[int]:
    """Every run's picks of ``generation`` (appended to its revealed list); the union of the designs asked for."""
    if generation != state.generation + 1:
        raise DesignError(f"design: generation {generation} picked after generation {state.generation}")
    cfg, space = ctx.cfg, ctx.space
    given = np.flatnonzero(np.isfinite(space.given))
    if generation == 0:
        check_budget(cfg, space.n, given.size)
        eligible = np.setdiff1d(np.arange(space.n), given)
        for run in state.runs:
            initial = np.random.default_rng([run.seed, 0]).choice(eligible, size=cfg.n_initial, replace=False)
            _add(run, initial, None, None, 0, 0.0, 0)
    else:
        cache: dict[tuple, Any] = {}
        excluded = np.union1d(given, np.fromiter(state.failed(), dtype=np.int64))
        for index, run in enumerate(state.runs):
            _pick_run(state, index, run, generation, excluded, cache, ctx)
    state.generation = generation
    return sorted({i for run in state.runs for i, g in zip(run.revealed, run.generation) if g == generation})


def _known_values(state: LoopState, run: RunState) -> tuple[np.ndarray, np.ndarray]:
    """The run's training set: its revealed designs with a value, and every given design."""
    ids = [i for i in run.revealed if state.known[i]["status"] == OK]
    ids += [i for i, entry in state.known.items() if entry["status"] == GIVEN]
    ids = np.asarray(ids, dtype=np.int64)
    return ids, np.asarray([state.known[int(i)]["y"] for i in ids], dtype=np.float64)


def _pick_run(state: LoopState, index: int, run: RunState, generation: int, excluded: np.ndarray,
              cache: dict, ctx: PickContext) -> None:
    t0 = time.perf_counter()
    picker, k = ctx.cfg.pickers[run.picker], ctx.cfg.per_generation
    unseen = np.setdiff1d(np.arange(ctx.space.n), np.union1d(np.asarray(run.revealed, np.int64), excluded))
    if unseen.size < k:
        raise DesignError(f"design: run {run.name} has {unseen.size} unseen candidates left, generation "
                          f"{generation} needs {k}")
    rng = np.random.default_rng([run.seed, 1, generation])
    if not picker.guided:
        _add(run, rng.choice(unseen, size=k, replace=False), None, None, generation, time.perf_counter() - t0, 0)
        return
    known, values = _known_values(state, run)
    if known.size == 0:
        raise DesignError(f"design: run {run.name} has no design with a value to learn from: every simulation it "
                          "asked for failed (simulations.csv lists them with the simulator's logs)")
    key = (picker.model, picker.ensemble, run.seed, generation, _fingerprint(known, values))
    if key not in cache:
        cache[key] = ctx.model(picker.model, picker.ensemble).fit_predict(known, values, run.seed * 1000 + generation)
    prediction = cache[key]
    scores = acquisition(picker.acquisition, prediction.mean, prediction.std, float(values.max()), picker.kappa,
                         picker.xi)
    selection = select(rank(scores, unseen, rng), k, picker.batch, picker.min_distance, ctx.distances)
    state.predictions[index] = (prediction.mean, unseen)
    _add(run, selection.picks, prediction.mean, prediction.std, generation, time.perf_counter() - t0,
         selection.filled)
    ctx.log(f"design {run.name} generation {generation}: picked {k} of {unseen.size} unseen "
            f"({picker.acquisition}, {picker.batch}) in {time.perf_counter() - t0:.1f} s")


def _fingerprint(known: np.ndarray, values: np.ndarray) -> str:
    return hashlib.sha256(known.tobytes() + values.tobytes()).hexdigest()


def _add(run: RunState, picks: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None, generation: int,
         seconds: float, filled: int) -> None:
    picks = [int(i) for i in picks]
    run.revealed += picks
    run.generation += [generation] * len(picks)
    run.predicted += [None if mean is None else float(mean[i]) for i in picks]
    run.std += [None if std is None else float(std[i]) for i in picks]
    run.seconds.append(seconds)
    run.filled.append(int(filled))


def settle(state: LoopState, results: dict[int, tuple[float | None, str]], generation: int,
           reused: bool = False) -> None:
    """Record the oracle's answers: id -> (value or None, "ok" | "failed")."""
    for i, (y, status) in results.items():
        if status not in (OK, FAILED):
            raise DesignError(f"design: design {i} has status {status!r}")
        if int(i) in state.known:
            continue
        value = None if y is None or not math.isfinite(float(y)) else float(y)
        state.known[int(i)] = {"y": value if status == OK else None, "status": status if value is not None else FAILED,
                               "generation": generation, "reused": bool(reused)}


def close(state: LoopState, generation: int, observe: Observe | None = None) -> None:
    """Each run's record of ``generation``, once every design it asked for has an answer."""
    for index, run in enumerate(state.runs):
        missing = [i for i in run.revealed if i not in state.known]
        if missing:
            raise DesignError(f"design: run {run.name} waits for designs {missing[:5]} of generation {generation}")
        values = [state.known[i]["y"] for i in run.revealed]
        picked = [v for v, g in zip(values, run.generation) if g == generation and v is not None]
        finite = [v for v in values if v is not None] + [e["y"] for e in state.known.values() if e["status"] == GIVEN]
        record = {"generation": generation, "simulations": len(run.revealed),
                  "failed": sum(v is None for v in values),
                  "best": max(finite) if finite else None,
                  "picked_mean": float(np.mean(picked)) if picked else None}
        if observe is not None:
            predictions, unseen = state.predictions.pop(index, (None, np.empty(0, np.int64)))
            record.update(observe(np.asarray(run.revealed, dtype=np.int64), predictions, unseen))
        record["seconds"] = run.seconds[generation] if generation < len(run.seconds) else 0.0
        run.records.append(record)


def run_in_process(state: LoopState, ctx: PickContext, oracle: Callable[[list[int]], dict[int, tuple]],
                   observe: Observe | None = None) -> LoopState:
    """All generations in this process (the lookup oracle): pick, ask the oracle for new designs, close."""
    for generation in range(ctx.cfg.generations + 1):
        requested = pick(state, generation, ctx)
        settle(state, oracle([i for i in requested if i not in state.known]), generation)
        close(state, generation, observe)
    return state
