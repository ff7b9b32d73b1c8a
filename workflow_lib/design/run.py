"""Entry point of the design stage (issue 13): ML-guided search of the 29,791 kirigami designs.

``design_step(dataset, settings, data_path, genotype_path, out_dir, seed_list, threads, device=None,
table_path=None) -> dict``

- ``settings``: the dataset's validated ``design`` block (config/schema.yaml, $defs/design);
  ``seed_list``: the workflow's seeds, used when ``design.seeds`` is null; ``genotype_path``: the search's
  genotype.json, needed only when ``design.models`` holds ``darts`` and ``design.darts.genotype`` is null;
  ``threads``: random-forest jobs and surrogate workers; ``device``: a DeviceConfig-like object for the
  networks (None: the CPU with ``threads`` torch threads); ``table_path``: an optional ``candidates.npz``
  (``oracle.table_step``) holding every candidate's true target, so the surrogate runs once per dataset,
  not once per change of the design block (about 25 s for 29,791 patterns on one core).
- writes ``out_dir/design.json`` (see ``workflow_lib.design.document``) and ``out_dir/design.csv`` (one row
  per model, seed and generation), atomically; returns the document.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable

from workflow_lib.design.config import DesignConfig
from workflow_lib.design.document import design_document, records_csv
from workflow_lib.design.loop import GuidedPicker, RandomPicker, run_design
from workflow_lib.design.models import build_model_for, candidate_images, dataset_pad_rows
from workflow_lib.design.oracle import CandidateTable, candidate_table, load_table
from workflow_lib.design.score import Scorer
from workflow_lib.io import write_json_atomic, write_text_atomic

log = logging.getLogger("workflow_lib.design")


def cpu_device(threads: int) -> Any:
    """The device of callers without one: the CPU with ``threads`` torch threads."""
    from workflow_lib.config.types import DeviceConfig

    return DeviceConfig.from_dict({"type": "cpu", "threads": max(1, int(threads))})


def run_models(cfg: DesignConfig, table: CandidateTable, seeds: Iterable[int], pad_rows: int, genotype: Any,
               threads: int, device: Any) -> tuple[Scorer, list[dict[str, Any]]]:
    """Every model x seed run of the design loop on one candidate table (its oracle and scorer)."""
    scorer = Scorer(table.values, cfg.top_k)
    images: list = []

    def shared_images():  # built once, only when a network is asked for
        if not images:
            images.append(candidate_images(table.patterns, pad_rows, *cfg.input_stride))
        return images[0]

    def observe(known, predictions, unseen):
        return {**scorer.found(known), "r2_unseen": scorer.r2_unseen(predictions, unseen)}

    runs = []
    for name in cfg.models:
        model = None if name == "random" else build_model_for(name, cfg, table.patterns, shared_images, genotype,
                                                                threads, device)
        picker = RandomPicker() if model is None else GuidedPicker(model)
        for seed in seeds:
            t0 = time.perf_counter()
            oracle = table.oracle()
            run = run_design(picker, oracle, cfg.n_initial, cfg.per_generation, cfg.generations, int(seed), observe)
            last = run.records[-1]
            log.info("design %s seed %d: %d simulations, best %.4g (true best %.4g), %s, %.1f s", name, seed,
                     oracle.simulations, last["best_true"], scorer.best,
                     {k: v for k, v in last.items() if k.startswith("found_")}, time.perf_counter() - t0)
            runs.append({"model": name, "seed": int(seed), "simulations": oracle.simulations,
                         "seconds": time.perf_counter() - t0, "run": run})
    return scorer, runs


def design_from_table(dataset: str, cfg: DesignConfig, table: CandidateTable, pad_rows: int, seeds: list[int],
                      genotype: Any, threads: int, device: Any, out_dir: str | Path,
                      table_seconds: float = 0.0) -> dict[str, Any]:
    """Run every model and seed on a candidate table; write design.csv and design.json."""
    t0 = time.perf_counter()
    scorer, runs = run_models(cfg, table, seeds, pad_rows, genotype, threads, device)
    document = design_document(dataset, cfg, seeds, table, scorer, runs, table_seconds=table_seconds,
                               wall_seconds=table_seconds + time.perf_counter() - t0, genotype_path=genotype)
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "design.csv", records_csv(document))
    write_json_atomic(out_dir / "design.json", document)
    return document


def design_step(dataset: str, settings: dict[str, Any], data_path: str | Path, genotype_path: str | Path | None,
                out_dir: str | Path, seed_list: Iterable[int], threads: int, device: Any = None,
                table_path: str | Path | None = None) -> dict[str, Any]:
    from workflow_lib.datasets.prepared import PreparedData

    t0 = time.perf_counter()
    cfg = DesignConfig.from_dict(settings)
    seeds = [int(s) for s in (cfg.seeds if cfg.seeds is not None else seed_list)]
    threads = max(1, int(threads))
    device = device if device is not None else cpu_device(threads)
    data = PreparedData.load(data_path)
    table = load_table(table_path, data) if table_path is not None else candidate_table(data, threads)
    return design_from_table(dataset, cfg, table, dataset_pad_rows(data), seeds, genotype_path, threads, device,
                             out_dir, table_seconds=time.perf_counter() - t0)
