"""Command line of the workflow steps. Thin: parse paths, read the step's settings, call one function.

Every step gets its settings as one JSON document (``--settings``, the rule's ``params``: see
workflow_lib.config.stage), never as a farm of flags, so the rules stay declarative, Snakemake reruns a step
exactly when its settings change, and the settings are recorded beside the results.
A ``workflow_lib.errors.UserError`` (bad config, data or device) ends with one line and exit status 2.
Before a step that reads prepared data starts, its input strides are checked against the images (the config
check can only do so where the config tells the image size). A step with a ``--checkpoint-dir`` runs holding
that folder's lock (``workflow_lib.engine.step_lock``): a second copy of the step on the same folder stops at
once, naming the process that holds it.

Training steps (``DISTRIBUTED_STEPS``) whose settings ask for ``device.processes`` P > 1 run in P processes:
started by hand or by a rule, the command starts them with torchrun or srun and holds the lock
(``workflow_lib.engine.launch``); started by torchrun or srun (by it, or by a user), it is one of them
(``workflow_lib.engine.distributed``), and rank 0 holds the lock unless the launcher does. A process's error
is one line naming its rank; the launcher ends with the failing process's line. The design loop, the
learning curves and the random forest always run in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from workflow_lib.config.stage import StageConfig
from workflow_lib.errors import EXIT_USER_ERROR, UserError

log = logging.getLogger("workflow_lib")

DISTRIBUTED_STEPS = ("search", "train", "search-advantage", "select", "baseline")  # steps device.processes covers
SINGLE_PROCESS_METHODS = ("random_forest",)  # baselines that train no network


def _configure(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from workflow_lib.engine.allocator import keep_freed_memory

    keep_freed_memory()  # freed tensors' memory reused, not page-faulted afresh every step
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _fetch(args: argparse.Namespace) -> None:
    from workflow_lib.datasets.run import fetch_step

    fetch_step(StageConfig.from_json(args.settings), Path(args.out), threads=max(args.threads, 1))


def _prepare(args: argparse.Namespace) -> None:
    from workflow_lib.datasets.run import prepare_step

    prepare_step(StageConfig.from_json(args.settings), Path(args.manifest), Path(args.out))


def _search(args: argparse.Namespace) -> None:
    from workflow_lib.darts.search_run import search_step_cli as search_step

    search_step(StageConfig.from_json(args.settings), Path(args.data), Path(args.out), Path(args.checkpoint_dir), args.seed)


def _train(args: argparse.Namespace) -> None:
    from workflow_lib.training.run import train_step

    genotype = Path(args.genotype) if args.genotype else None
    train_step(
        StageConfig.from_json(args.settings), Path(args.data), genotype, Path(args.out), Path(args.checkpoint_dir), args.seed
    )


def _search_advantage(args: argparse.Namespace) -> None:
    from workflow_lib.darts.advantage import advantage_step

    advantage_step(StageConfig.from_json(args.settings), Path(args.data), Path(args.genotype), Path(args.out),
                   Path(args.checkpoint_dir), args.seed)


def _baseline(args: argparse.Namespace) -> None:
    from workflow_lib.baselines.registry import baseline_step
    
    baseline_step(
        args.method, StageConfig.from_json(args.settings), Path(args.data), Path(args.out), Path(args.checkpoint_dir), args.seed
    )


def _select(args: argparse.Namespace) -> None:
    from workflow_lib.darts.selection import select_cell
    from workflow_lib.datasets.prepared import PreparedData

    if len(args.genotypes) != len(args.seeds):
        raise SystemExit("select: give one --genotypes file per --seeds entry")
    select_cell(StageConfig.from_json(args.settings), PreparedData.load(args.data),
                {seed: Path(path) for seed, path in zip(args.seeds, args.genotypes)}, Path(args.out).parent,
                Path(args.checkpoint_dir))


def _design_table(args: argparse.Namespace) -> None:
    from workflow_lib.design.oracle import table_step

    StageConfig.from_json(args.settings)  # validated like every step's settings
    table_step(Path(args.data), Path(args.out), max(args.threads, 1))


def _design(args: argparse.Namespace) -> None:
    from workflow_lib.design.run import design_step, finish_step

    stage = StageConfig.from_json(args.settings)
    out_dir = Path(args.out).parent
    if args.state:  # the command oracle's last step
        finish_step(stage.dataset, stage.kind, stage.settings, Path(args.candidates), Path(args.state),
                    args.batches, Path(args.journal), out_dir, args.seeds)
        return
    design_step(stage.dataset, stage.kind, stage.settings, Path(args.candidates), out_dir, args.seeds,
                max(args.threads, 1), device=stage.device, table=Path(args.table) if args.table else None)


def _design_pick(args: argparse.Namespace) -> None:
    from workflow_lib.design.run import pick_step

    stage = StageConfig.from_json(args.settings)
    pick_step(stage.dataset, stage.kind, stage.settings, Path(args.candidates), args.generation, args.state,
              args.batches, Path(args.out), args.slots, Path(args.journal), args.seeds, max(args.threads, 1),
              device=stage.device)


def _design_simulate(args: argparse.Namespace) -> None:
    from workflow_lib.design.command import SimulationRetry
    from workflow_lib.design.run import simulate_step

    stage = StageConfig.from_json(args.settings)
    try:
        simulate_step(stage.settings, Path(args.slot), Path(args.journal), Path(args.out), args.generation,
                      args.batch, args.attempt)
    except SimulationRetry as retry:  # exit status 1: Snakemake runs the job again (its retries)
        raise SystemExit(f"error in step 'design-simulate': {retry}") from None


def _simulate_kirigami(args: argparse.Namespace) -> None:
    from workflow_lib.kirigami.command import simulate_designs

    simulate_designs(Path(args.designs), Path(args.out), args.target, max(args.threads, 1))


def _learning_curves(args: argparse.Namespace) -> None:
    from workflow_lib.learning_curves import learning_curve_step

    stage = StageConfig.from_json(args.settings)
    learning_curve_step(stage.dataset, stage.kind, stage.settings, Path(args.data), args.genotype,
                        Path(args.out).parent, Path(args.checkpoint_dir), args.seeds, max(args.threads, 1),
                        device=stage.device, augment=stage.augment)


def _summarize(args: argparse.Namespace) -> None:
    from workflow_lib.results.summary import write_summary

    write_summary(Path(args.out), args.dataset, [Path(p) for p in args.metrics],
                  [Path(p) for p in args.advantage or []])


def _report(args: argparse.Namespace) -> None:
    import json

    from workflow_lib.report.run import report_step

    plan = json.loads(args.plan)
    report_step(
        results_dir=Path(args.results_dir),
        datasets=list(plan["datasets"]),
        seeds=plan["seeds"],
        out_html=Path(args.out),
        title=plan["title"],
        figures_dir=Path(args.figures_dir),
        benchmarks=plan["benchmarks"],
        plan=plan,
    )


def _step_parser(sub: argparse._SubParsersAction, name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (the rule's threads)")
    return parser


def _settings_parser(sub: argparse._SubParsersAction, name: str, handler: Callable, help_text: str,
                     data: bool = True) -> argparse.ArgumentParser:
    """A step that reads its settings (the rule's params, JSON) and, unless ``data`` is False, prepared.npz."""
    parser = _step_parser(sub, name, handler, help_text)
    parser.add_argument("--settings", required=True, help="the step's settings (JSON)")
    if data:
        parser.add_argument("--data", required=True, help="prepared.npz")
    return parser


def _run_parser(sub: argparse._SubParsersAction, name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
    """A step that trains on prepared data for one seed."""
    parser = _settings_parser(sub, name, handler, help_text)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint-dir", required=True, help="per-epoch checkpoints (resume after a kill)")
    parser.add_argument("--seed", type=int, required=True)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workflow_lib", description=__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    fetch = _settings_parser(sub, "fetch", _fetch, "fetch or generate a dataset's raw data", data=False)
    fetch.add_argument("--out", required=True, help="manifest JSON (raw files go beside it)")
    prepare = _settings_parser(sub, "prepare", _prepare, "tile/scale, split and save prepared.npz", data=False)
    prepare.add_argument("--manifest", required=True)
    prepare.add_argument("--out", required=True)
    _run_parser(sub, "search", _search, "DARTS architecture search")
    train = _run_parser(sub, "train", _train, "final training of a cell's evaluation network")
    train.add_argument("--genotype", default=None, help="genotype JSON (default: the named genotype in the settings)")
    advantage = _run_parser(sub, "search-advantage", _search_advantage,
                            "the found cell against random cells of the same space (test split)")
    advantage.add_argument("--genotype", required=True, help="the found cell's genotype JSON (search or selection)")
    baseline = _run_parser(sub, "baseline", _baseline, "a baseline method")
    baseline.add_argument("--method", required=True)
    select = _settings_parser(sub, "select", _select, "the paper's selection of one cell over the search seeds")
    select.add_argument("--genotypes", nargs="+", required=True, help="each search seed's genotype.json")
    select.add_argument("--seeds", nargs="+", type=int, required=True, help="the search seeds, in that order")
    select.add_argument("--out", required=True, help="selected_genotype.json (selection.json goes beside it)")
    select.add_argument("--checkpoint-dir", required=True, help="per-candidate checkpoints")
    table = _settings_parser(sub, "design-table", _design_table, "every kirigami candidate's true target (oracle)")
    table.add_argument("--out", required=True, help="candidates.npz")
    design = _settings_parser(sub, "design", _design, "ML-guided design: the loop (lookup) or its documents (command)",
                              data=False)
    design.add_argument("--candidates", required=True, help="prepared.npz (kirigami) or the fetch manifest (npz)")
    design.add_argument("--table", default=None, help="kirigami lookup: candidates.npz (design-table)")
    design.add_argument("--state", default=None, help="command oracle: the last generation's state.json")
    design.add_argument("--batches", nargs="*", default=[], help="command oracle: the last generation's batch CSVs")
    design.add_argument("--journal", default=None, help="command oracle: the simulations folder")
    design.add_argument("--out", required=True, help="design.json (design.csv and simulations.csv go beside it)")
    design.add_argument("--seeds", nargs="+", type=int, required=True, help="the workflow's seeds")
    pick = _settings_parser(sub, "design-pick", _design_pick, "command oracle: one generation's picks", data=False)
    pick.add_argument("--candidates", required=True, help="prepared.npz (kirigami) or the fetch manifest (npz)")
    pick.add_argument("--generation", type=int, required=True)
    pick.add_argument("--state", default=None, help="the previous generation's state.json")
    pick.add_argument("--batches", nargs="*", default=[], help="the previous generation's batch CSVs")
    pick.add_argument("--slots", nargs="+", required=True, help="this generation's slot files (one per job)")
    pick.add_argument("--journal", required=True, help="the simulations folder (design/simulations)")
    pick.add_argument("--out", required=True, help="this generation's state.json")
    pick.add_argument("--seeds", nargs="+", type=int, required=True, help="the workflow's seeds")
    simulate = _settings_parser(sub, "design-simulate", _design_simulate, "command oracle: one simulation job",
                                data=False)
    simulate.add_argument("--slot", required=True, help="the slot file of this job (designs to simulate)")
    simulate.add_argument("--journal", required=True, help="the simulations folder (design/simulations)")
    simulate.add_argument("--out", required=True, help="batch CSV: the slot's designs with their results")
    simulate.add_argument("--generation", type=int, required=True)
    simulate.add_argument("--batch", type=int, required=True)
    simulate.add_argument("--attempt", type=int, required=True, help="Snakemake's attempt (1 = first)")
    kirigami = _step_parser(sub, "simulate-kirigami", _simulate_kirigami,
                            "the kirigami surrogate as a design-loop simulator (designs npz -> id,y CSV)")
    kirigami.add_argument("--designs", required=True, help="npz with id and pattern (k,3,5) or x (k,1,3,5)")
    kirigami.add_argument("--out", required=True, help="CSV to write (id,y)")
    kirigami.add_argument("--target", required=True, help="yield_strain, toughness or yield_stress")
    curves = _settings_parser(sub, "learning-curves", _learning_curves, "test score against training-set size")
    curves.add_argument("--genotype", default=None, help="the search's genotype.json (darts)")
    curves.add_argument("--out", required=True, help="learning_curves.json (the CSV goes beside it)")
    curves.add_argument("--checkpoint-dir", required=True, help="per-point artifacts and checkpoints")
    curves.add_argument("--seeds", nargs="+", type=int, required=True, help="the workflow's seeds")
    summarize = _step_parser(sub, "summarize", _summarize, "aggregate one dataset's metrics over seeds")
    summarize.add_argument("--dataset", required=True)
    summarize.add_argument("--metrics", nargs="+", required=True)
    summarize.add_argument("--advantage", nargs="*", default=[], help="each seed's advantage.json (search advantage)")
    summarize.add_argument("--out", required=True)
    report = _step_parser(sub, "report", _report, "render the HTML report")
    report.add_argument("--results-dir", required=True)
    report.add_argument("--plan", required=True,
                        help="JSON: datasets with their methods and searches, seeds, title, benchmark files")
    report.add_argument("--out", required=True)
    report.add_argument("--figures-dir", required=True)
    return parser


def _check_input_strides(args: argparse.Namespace) -> None:
    """A step that reads prepared data: its input strides must fit the images (the key is named otherwise)."""
    if getattr(args, "settings", None) is None or getattr(args, "data", None) is None:
        return
    from workflow_lib.config.checks import check_step_input_strides

    check_step_input_strides(StageConfig.from_json(args.settings), Path(args.data))


def _checkpoint_lock(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The step's checkpoint folder lock (one copy per folder), or nothing for steps without checkpoints."""
    if getattr(args, "checkpoint_dir", None) is None:
        return contextlib.nullcontext()
    from workflow_lib.engine.step_lock import step_lock

    return step_lock(Path(args.checkpoint_dir))


def _processes(args: argparse.Namespace) -> int:
    """How many processes this step runs in: ``device.processes`` for the training steps, else 1."""
    if args.step not in DISTRIBUTED_STEPS or getattr(args, "method", None) in SINGLE_PROCESS_METHODS:
        return 1
    return StageConfig.from_json(args.settings).device.processes


def _worker(args: argparse.Namespace, rendezvous, processes: int) -> int:
    """One of the step's processes: join the others, run the step (rank 0 holds the lock unless the launcher
    does), report an error with this process's rank."""
    import torch

    from workflow_lib.engine import distributed
    from workflow_lib.engine.launch import record_error

    where = f"(process {rendezvous.rank} of {rendezvous.size})"
    try:
        device = StageConfig.from_json(args.settings).device
        world = distributed.init(rendezvous, device.type, processes, device.allow_cpu_fallback)
        if not world.main:  # rank 0 logs the epochs
            logging.getLogger().setLevel(logging.WARNING)
        if args.threads:
            torch.set_num_threads(max(1, args.threads // world.size))
        lock = world.main and not os.environ.get(distributed.LAUNCHER_ENV)
        with _checkpoint_lock(args) if lock else contextlib.nullcontext():
            args.handler(args)
    except (UserError, FileNotFoundError) as err:
        print(f"error in step '{args.step}' {where}: {err}", file=sys.stderr)
        record_error(rendezvous.rank, err, user_error=True)
        return EXIT_USER_ERROR
    except BaseException as err:
        record_error(rendezvous.rank, err, user_error=False)
        raise
    finally:
        distributed.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _configure(args)
    try:
        _check_input_strides(args)
        processes = _processes(args)
        if processes > 1:
            from workflow_lib.engine import distributed, launch

            rendezvous = distributed.rendezvous()
            if rendezvous is not None:
                return _worker(args, rendezvous, processes)
            with _checkpoint_lock(args):
                return launch.launch(args.step, argv, processes, args.threads, Path(args.checkpoint_dir))
        with _checkpoint_lock(args):
            args.handler(args)
    except (UserError, FileNotFoundError) as err:  # bad input: one clear line; bugs keep their traceback
        print(f"error in step '{args.step}': {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0
