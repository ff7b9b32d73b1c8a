"""Command line of the workflow steps. Thin: parse paths, read the stage config, call one function.

Every step reads its settings from a stage config file (results/{dataset}/config/{stage}.json), never from
command-line flags, so the rules stay declarative and the settings are recorded beside the results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

log = logging.getLogger("workflow_lib")


def _configure(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _fetch(args: argparse.Namespace) -> None:
    from workflow_lib.config import read_stage_config
    from workflow_lib.datasets.run import fetch_step

    fetch_step(read_stage_config(args.stage), Path(args.out), threads=max(args.threads, 1))


def _prepare(args: argparse.Namespace) -> None:
    from workflow_lib.config import read_stage_config
    from workflow_lib.datasets.run import prepare_step

    prepare_step(read_stage_config(args.stage), Path(args.manifest), Path(args.out))


def _search(args: argparse.Namespace) -> None:
    from workflow_lib.config import read_stage_config
    from workflow_lib.darts.search_run import search_step_cli as search_step

    search_step(read_stage_config(args.stage), Path(args.data), Path(args.out), Path(args.checkpoint_dir), args.seed)


def _train(args: argparse.Namespace) -> None:
    from workflow_lib.config import read_stage_config
    from workflow_lib.training.run import train_step

    genotype = Path(args.genotype) if args.genotype else None
    train_step(
        read_stage_config(args.stage), Path(args.data), genotype, Path(args.out), Path(args.checkpoint_dir), args.seed
    )


def _baseline(args: argparse.Namespace) -> None:
    from workflow_lib.baselines.registry import baseline_step
    from workflow_lib.config import read_stage_config

    baseline_step(
        args.method, read_stage_config(args.stage), Path(args.data), Path(args.out), Path(args.checkpoint_dir), args.seed
    )


def _summarize(args: argparse.Namespace) -> None:
    from workflow_lib.results.summary import write_summary

    write_summary(Path(args.out), args.dataset, [Path(p) for p in args.metrics])


def _report(args: argparse.Namespace) -> None:
    from workflow_lib.report.run import report_step

    report_step(
        results_dir=Path(args.results_dir),
        datasets=args.datasets,
        seeds=args.seeds,
        out_html=Path(args.out),
        title=args.title,
        figures_dir=Path(args.figures_dir),
        benchmarks=[Path(p) for p in args.benchmarks],
    )


def _step_parser(sub: argparse._SubParsersAction, name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (the rule's threads)")
    return parser


def _run_parser(sub: argparse._SubParsersAction, name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
    """A step that trains on prepared data for one seed."""
    parser = _step_parser(sub, name, handler, help_text)
    parser.add_argument("--stage", required=True, help="stage config JSON")
    parser.add_argument("--data", required=True, help="prepared.npz")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint-dir", required=True, help="per-epoch checkpoints (resume after a kill)")
    parser.add_argument("--seed", type=int, required=True)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workflow_lib", description=__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    fetch = _step_parser(sub, "fetch", _fetch, "fetch or generate a dataset's raw data")
    fetch.add_argument("--stage", required=True)
    fetch.add_argument("--out", required=True, help="manifest JSON (raw files go beside it)")
    prepare = _step_parser(sub, "prepare", _prepare, "tile/scale, split and save prepared.npz")
    prepare.add_argument("--stage", required=True)
    prepare.add_argument("--manifest", required=True)
    prepare.add_argument("--out", required=True)
    _run_parser(sub, "search", _search, "DARTS architecture search")
    train = _run_parser(sub, "train", _train, "final training of a cell's evaluation network")
    train.add_argument("--genotype", default=None, help="genotype JSON (default: the named genotype in the stage config)")
    baseline = _run_parser(sub, "baseline", _baseline, "a baseline method")
    baseline.add_argument("--method", required=True)
    summarize = _step_parser(sub, "summarize", _summarize, "aggregate one dataset's metrics over seeds")
    summarize.add_argument("--dataset", required=True)
    summarize.add_argument("--metrics", nargs="+", required=True)
    summarize.add_argument("--out", required=True)
    report = _step_parser(sub, "report", _report, "render the HTML report")
    report.add_argument("--results-dir", required=True)
    report.add_argument("--datasets", nargs="+", required=True)
    report.add_argument("--seeds", nargs="+", type=int, required=True)
    report.add_argument("--title", default="DARTS architecture search: results")
    report.add_argument("--out", required=True)
    report.add_argument("--figures-dir", required=True)
    report.add_argument("--benchmarks", nargs="*", default=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure(args)
    try:
        args.handler(args)
    except Exception as err:  # noqa: BLE001 - user-facing errors end with one clear line
        if _is_user_error(err):
            print(f"error in step '{args.step}': {err}", file=sys.stderr)
            return 2
        raise
    return 0


def _is_user_error(err: Exception) -> bool:
    """Bad input (config, data, device) is reported in one line; bugs keep their traceback."""
    names = {
        "ConfigError", "DataUnavailableError", "KirigamiFormatError", "DeviceUnavailableError",
        "PreparedDataError", "NpzFormatError", "GenotypeError",
    }
    return type(err).__name__ in names or isinstance(err, FileNotFoundError)
