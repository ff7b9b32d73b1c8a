"""What one Hessian eigenvalue of the search diagnostics costs (search.diagnostics; workflow_lib.darts.hessian).

For each dataset of a config (default: config/config.yaml's kirigami and digits search proxies, on their real
data: the kirigami surrogate on a seeded subset of patterns, sklearn's digits) it builds the search exactly as
the workflow does, trains ``--train-epochs`` search epochs (timed, without the eigenvalue: the reference
cost), then computes the eigenvalue with the config's diagnostics settings (overridable), once with each
batch's gradient graph kept (``hessian_keep_graph: true``) and once rebuilt per product, and prints seconds
per eigenvalue, per Hessian-vector product, the products needed, the eigenvalue in units of a search epoch,
and one product on one batch in units of a search step (what transfers to another machine).

  python bench/hessian.py --threads 1
  python bench/hessian.py --datasets digits --samples 128 --max-iterations 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepared(config: dict, dataset: str, workdir: Path, n_patterns: int):
    """The dataset's prepared data, made by the workflow's own fetch and prepare steps (kirigami: a subset)."""
    from workflow_lib.config.stage import StageConfig, stage_document
    from workflow_lib.datasets.prepared import PreparedData
    from workflow_lib.datasets.run import fetch_step, prepare_step

    block = config["datasets"][dataset]
    if block["kind"] == "kirigami" and block["source"]["type"] == "surrogate":
        block["source"]["n_patterns"] = n_patterns  # the proxy reads 640 + 640 rows; a subset keeps this short
    raw = StageConfig.from_dict(stage_document(config, dataset, "raw_data"))
    prep = StageConfig.from_dict(stage_document(config, dataset, "prepare"))
    fetch_step(raw, workdir / dataset / "raw" / "manifest.json", threads=2)
    prepare_step(prep, workdir / dataset / "raw" / "manifest.json", workdir / dataset / "prepared.npz")
    return PreparedData.load(workdir / dataset / "prepared.npz")


def measure(config: dict, dataset: str, data, args) -> dict:
    from workflow_lib.config.stage import StageConfig, stage_document
    from workflow_lib.darts.search_run import SearchRun

    stage = StageConfig.from_dict(stage_document(config, dataset, "search"))
    run = SearchRun(stage, data, seed=0)
    every = run.diagnostics
    run.diagnostics = dataclasses.replace(every, hessian_every=0)  # the training epochs without the eigenvalue
    epoch_seconds = []
    for epoch in range(args.train_epochs):
        started = time.perf_counter()
        row = run.epoch(epoch)
        epoch_seconds.append(time.perf_counter() - started)
    overrides = {k: v for k, v in (("hessian_samples", args.samples), ("hessian_max_iterations", args.max_iterations),
                                   ("hessian_tol", args.tol)) if v is not None}
    settings = dataclasses.replace(every, hessian_every=1, **overrides)
    if "hessian_samples" in overrides:  # rebuild the fixed subset for another size
        cfg_settings = dict(stage.settings, diagnostics=settings.to_dict())
        run = _rebuilt(stage, cfg_settings, data, run)
    results = {}
    for keep in (True, False):
        run.diagnostics = dataclasses.replace(settings, hessian_keep_graph=keep)
        record = run.hessian(args.train_epochs)  # due: hessian_every 1
        results["keep_graph" if keep else "rebuild_graph"] = {
            "seconds": record["hessian_seconds"], "products": record["hessian_iterations"],
            "seconds_per_product": record["hessian_seconds"] / max(record["hessian_iterations"], 1),
            "eigenvalue": record["hessian_eigenvalue"], "converged": record["hessian_converged"]}
    epoch = statistics.median(epoch_seconds)
    return {"dataset": dataset, "input_shape": list(run.x.shape[1:]), "C": run.cfg.C, "layers": run.cfg.layers,
            "batch_size": run.cfg.batch_size, "steps_per_epoch": row["steps"], "method": run.cfg.method,
            "order": run.cfg.order, "hessian_rows": int(sum(len(r) for r in run.hessian_rows)),
            "hessian_batches": len(run.hessian_rows), "max_iterations": settings.hessian_max_iterations,
            "tol": settings.hessian_tol, "search_epoch_seconds": epoch, "epoch_seconds": epoch_seconds, **results,
            "eigenvalue_in_search_epochs": results["keep_graph"]["seconds"] / epoch,
            # what transfers across machines: one product on one batch, in search steps
            "product_batch_in_search_steps": results["keep_graph"]["seconds_per_product"] / len(run.hessian_rows)
            / (epoch / row["steps"])}


def _rebuilt(stage, settings: dict, data, trained):
    """A SearchRun with other diagnostics settings and the trained run's model state (the subset is built in
    __init__)."""
    from workflow_lib.config.stage import StageConfig
    from workflow_lib.darts.search_run import SearchRun

    other = SearchRun(StageConfig(stage.dataset, stage.kind, stage.stage, stage.device, settings, stage.augment),
                      data, seed=0)
    other.model.load_state_dict(trained.model.state_dict())
    return other


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--datasets", nargs="+", default=["kirigami", "digits"])
    parser.add_argument("--train-epochs", type=int, default=2, help="search epochs before the eigenvalue (timed)")
    parser.add_argument("--samples", type=int, default=None, help="override search.diagnostics.hessian_samples")
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--tol", type=float, default=None)
    parser.add_argument("--n-patterns", type=int, default=3000, help="kirigami surrogate patterns to prepare")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from workflow_lib.config import load_config_file

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config_file(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            data = prepared(config, dataset, Path(tmp), args.n_patterns)
            res = measure(config, dataset, data, args)
            if args.json:
                print(json.dumps(res), flush=True)
                continue
            keep, rebuild = res["keep_graph"], res["rebuild_graph"]
            print(f"{dataset}: search proxy {res['input_shape']} C={res['C']} {res['layers']} layers, batch "
                  f"{res['batch_size']}, {res['steps_per_epoch']} steps/epoch ({res['method']}, order {res['order']}): "
                  f"search epoch {res['search_epoch_seconds']:.2f} s (median of {args.train_epochs}); eigenvalue on "
                  f"{res['hessian_rows']} rows in {res['hessian_batches']} batches (max {res['max_iterations']} "
                  f"products, tol {res['tol']:g}): keep_graph {keep['seconds']:.2f} s = {keep['products']} products x "
                  f"{keep['seconds_per_product']:.3f} s (value {keep['eigenvalue']:.4g}, converged "
                  f"{keep['converged']}); rebuild_graph {rebuild['seconds']:.2f} s = {rebuild['products']} x "
                  f"{rebuild['seconds_per_product']:.3f} s; one eigenvalue = "
                  f"{res['eigenvalue_in_search_epochs']:.2f} search epochs; one product on one batch = "
                  f"{res['product_batch_in_search_steps']:.2f} search steps; threads {torch.get_num_threads()}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
