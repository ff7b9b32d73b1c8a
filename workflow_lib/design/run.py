"""Entry points of the design stage (the rules in rules/design.smk call these through the CLI).

- lookup oracle: ``design_step`` runs every generation of every run in one job (the oracle is a table).
- command oracle, one job per step, so Snakemake (and ``--profile profiles/slurm``) runs the simulations:
  ``pick_step`` (generation g: settle g-1's simulations, pick g, write one slot file per simulation job),
  ``simulate_step`` (one slot: ``command.simulate_batch``), ``finish_step`` (settle the last generation,
  write the documents). The DAG is static: generations and slot counts follow from the config
  (``config.slot_counts``), and the slots a generation does not need stay empty.

Inputs: ``kind`` (kirigami | npz); ``candidates``: kirigami's prepared.npz, or the npz dataset's fetch
manifest (the user's file, checked against its recorded sha256); ``table``: kirigami lookup's candidates.npz.
Outputs in ``out_dir``: design.json (``document``), design.csv, simulations.csv; all written atomically.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from workflow_lib.design.config import DesignConfig, DesignError, slot_counts
from workflow_lib.design.document import design_document, records_csv, table_rows
from workflow_lib.design.loop import LoopState, PickContext, close, new_state, pick, run_in_process, settle
from workflow_lib.design.score import Scorer
from workflow_lib.design.table import Journal, write_table
from workflow_lib.io import read_json, savez_atomic, write_json_atomic, write_text_atomic

log = logging.getLogger("workflow_lib.design")


def cpu_device(threads: int) -> Any:
    """The device of callers without one: the CPU with ``threads`` torch threads."""
    from workflow_lib.config.types import DeviceConfig

    return DeviceConfig.from_dict({"type": "cpu", "threads": max(1, int(threads))})


def load_space(kind: str, candidates: str | Path, oracle: str, table: str | Path | None = None) -> Any:
    from workflow_lib.design.space import kirigami_space, npz_space

    if kind == "kirigami":
        from workflow_lib.datasets.prepared import PreparedData
        from workflow_lib.design.oracle import load_table

        data = PreparedData.load(candidates)
        return kirigami_space(data, oracle, load_table(table, data) if table is not None else None)
    if kind == "npz":
        from workflow_lib.datasets.fetch import manifest_file

        return npz_space(manifest_file(read_json(candidates), "data"), oracle)
    raise DesignError(f"design: the design loop needs a kirigami or npz dataset, not {kind!r}")


def pick_context(cfg: DesignConfig, space: Any, threads: int, device: Any) -> PickContext:
    """The pickers' models, built once each (a network's images only when a network is asked for)."""
    from workflow_lib.design.models import picker_model

    models: dict[tuple[str, int], Any] = {}
    images: list = []

    def shared_images():
        if not images:
            import torch

            images.append(torch.from_numpy(space.images(*cfg.input_stride)))
        return images[0]

    def model(name: str, ensemble: int) -> Any:
        if (name, ensemble) not in models:
            models[(name, ensemble)] = picker_model(name, ensemble, cfg, space, shared_images, threads, device)
        return models[(name, ensemble)]

    return PickContext(cfg=cfg, space=space, model=model, log=log.info)


def _settings(settings: dict[str, Any], seed_list: Iterable[int]) -> tuple[DesignConfig, list[int]]:
    """The typed design block; keys a step's slice leaves out (the pick step's oracle.resources and retries,
    which never change a pick) take the schema's defaults."""
    from workflow_lib.config.load import SCHEMA_PATH, _schema_at, fill_defaults, schema_node

    root = _schema_at(str(SCHEMA_PATH))
    cfg = DesignConfig.from_dict(fill_defaults(dict(settings), schema_node("#/$defs/design", root), root))
    return cfg, [int(s) for s in (cfg.seeds if cfg.seeds is not None else seed_list)]


def _run_info(cfg: DesignConfig, device: Any) -> dict[str, Any]:
    from workflow_lib.provenance import run_info

    return run_info(cfg.to_dict(), None, getattr(device, "type", None))


def _write(out_dir: Path, document: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    write_table(out_dir / "simulations.csv", rows)
    write_text_atomic(out_dir / "design.csv", records_csv(document))
    write_json_atomic(out_dir / "design.json", document)
    return document


# ---- lookup: the whole loop in one job --------------------------------------------------------------------
def design_from_space(dataset: str, cfg: DesignConfig, space: Any, seeds: list[int], threads: int, device: Any,
                      out_dir: str | Path, setup_seconds: float = 0.0) -> dict[str, Any]:
    """Every picker and seed on a lookup space; writes design.json, design.csv and simulations.csv."""
    t0 = time.perf_counter()
    scorer = Scorer(space.truth, cfg.top_k)
    truth = space.truth

    def observe(known, predictions, unseen):
        return {**scorer.found(known), "r2_unseen": scorer.r2_unseen(predictions, unseen)}

    def lookup(ids):
        return {int(i): (float(truth[i]), "ok") for i in ids}

    state = run_in_process(new_state(cfg, seeds, space.given), pick_context(cfg, space, threads, device), lookup,
                           observe)
    for run in state.runs:
        last = run.records[-1]
        log.info("design %s: %d simulations, best %.4g (true best %.4g), %s", run.name, last["simulations"],
                 last["best"], scorer.best, {k: v for k, v in last.items() if k.startswith("found_")})
    rows = table_rows(state, None)
    oracle = {"type": "lookup", "command": None, "batch": None, "retries": None, "table": "simulations.csv",
              "designs": len(rows), "ok": len(rows), "failed": 0, "reused": 0, "sent": len(rows),
              "sent_distinct": len(rows), "seconds": setup_seconds}
    document = design_document(dataset, cfg, seeds, space, state, scorer, oracle,
                               setup_seconds + time.perf_counter() - t0, _run_info(cfg, device))
    return _write(Path(out_dir), document, rows)


def design_step(dataset: str, kind: str, settings: dict[str, Any], candidates: str | Path, out_dir: str | Path,
                seed_list: Iterable[int], threads: int, device: Any = None,
                table: str | Path | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    cfg, seeds = _settings(settings, seed_list)
    if cfg.oracle.type != "lookup":
        raise DesignError("design: the command oracle runs as pick and simulation jobs (rules/design.smk)")
    space = load_space(kind, candidates, "lookup", table)
    device = device if device is not None else cpu_device(threads)
    return design_from_space(dataset, cfg, space, seeds, max(1, int(threads)), device, out_dir,
                             setup_seconds=time.perf_counter() - t0)


# ---- command: one job per step ----------------------------------------------------------------------------
def _settle_batches(state: LoopState, batches: Iterable[str | Path], generation: int) -> None:
    results = {}
    for path in batches:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                results[int(row["id"])] = (float(row["y"]) if row["y"] else None, row["status"])
    settle(state, results, generation)


def _load_state(path: str | Path) -> LoopState:
    return LoopState.from_dict(read_json(path))


def pick_step(dataset: str, kind: str, settings: dict[str, Any], candidates: str | Path, generation: int,
              state_in: str | Path | None, batches_in: list[str], state_out: str | Path, slots_out: list[str],
              journal_dir: str | Path, seed_list: Iterable[int], threads: int, device: Any = None) -> LoopState:
    """Generation ``generation`` of the command oracle: settle the previous one, pick, fill the slot files."""
    cfg, seeds = _settings(settings, seed_list)
    expected = slot_counts(cfg.to_dict(), len(seeds))[generation]
    if len(slots_out) != expected:
        raise DesignError(f"design: generation {generation} has {expected} simulation slots, {len(slots_out)} given")
    space = load_space(kind, candidates, "command")
    journal = Journal(journal_dir)
    journal.bind(cfg.oracle.command, space.digest, space.n)
    if generation == 0:
        state = new_state(cfg, seeds, space.given)
    else:
        state = _load_state(state_in)
        _settle_batches(state, batches_in, generation - 1)
        close(state, generation - 1)
    device = device if device is not None else cpu_device(threads)
    requested = pick(state, generation, pick_context(cfg, space, max(1, int(threads)), device))
    earlier = journal.settled()
    settle(state, {i: (earlier[i].y, earlier[i].status) for i in requested if i not in state.known and i in earlier},
           generation, reused=True)
    new = [i for i in requested if i not in state.known]
    size = cfg.oracle.batch
    if len(new) > size * len(slots_out):
        raise AssertionError(f"design: {len(new)} new designs do not fit {len(slots_out)} slots of {size}")
    for b, path in enumerate(slots_out):
        ids = np.asarray(new[b * size:(b + 1) * size], dtype=np.int64)
        savez_atomic(path, **space.designs(ids))
    document = state.to_dict()
    document["requested"], document["new"] = requested, new
    write_json_atomic(state_out, document)
    log.info("design generation %d: %d designs asked for, %d known, %d to simulate in %d of %d jobs", generation,
             len(requested), len(requested) - len(new), len(new), -(-len(new) // size), len(slots_out))
    return state


def simulate_step(settings: dict[str, Any], slot: str | Path, journal_dir: str | Path, out: str | Path,
                  generation: int, batch: int, attempt: int) -> None:
    from workflow_lib.design.command import simulate_batch

    oracle = settings["oracle"]
    simulate_batch(slot, journal_dir, out, oracle["command"], generation, batch, attempt, oracle["retries"] + 1)


def finish_step(dataset: str, kind: str, settings: dict[str, Any], candidates: str | Path,
                state_in: str | Path, batches_in: list[str], journal_dir: str | Path, out_dir: str | Path,
                seed_list: Iterable[int]) -> dict[str, Any]:
    """The command oracle's last step: settle the last generation, write design.json, design.csv, simulations.csv."""
    t0 = time.perf_counter()
    cfg, seeds = _settings(settings, seed_list)
    space = load_space(kind, candidates, "command")
    state = _load_state(state_in)
    if state.generation != cfg.generations:
        raise DesignError(f"design: {state_in} holds generation {state.generation}, not the last ({cfg.generations})")
    _settle_batches(state, batches_in, cfg.generations)
    close(state, cfg.generations)
    journal = Journal(journal_dir)
    outcomes = journal.settled()
    rows = table_rows(state, outcomes)
    sent, distinct = journal.sends()
    reused = sum(1 for e in state.known.values() if e["reused"])
    oracle = {"type": "command", "command": cfg.oracle.command, "batch": cfg.oracle.batch,
              "retries": cfg.oracle.retries, "table": "simulations.csv", "designs": len(rows),
              "ok": sum(r["status"] == "ok" for r in rows), "failed": sum(r["status"] == "failed" for r in rows),
              "reused": reused, "sent": sent, "sent_distinct": distinct,
              "seconds": float(sum(o.seconds / max(o.designs, 1) for o in outcomes.values()))}
    document = design_document(dataset, cfg, seeds, space, state, None, oracle, time.perf_counter() - t0,
                               _run_info(cfg, None))
    return _write(Path(out_dir), document, rows)
