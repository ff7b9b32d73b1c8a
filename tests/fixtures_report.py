"""A synthetic but format-exact results tree (docs/DESIGN.md, "Artifacts") for the report tests.

Two datasets, two seeds, five methods:

* ``kirigami`` - regression (yield strain), provenance source "surrogate" (the banner must show);
  its architecture weights stay near 1/8 (as the 2019 study found for graphene kirigami);
* ``digits``  - classification (10 classes), provenance "sklearn"; its weights spread out.

The module is self-contained (no import of the producers) so it also checks the report against an
independent reading of the format.  ``write_results_tree(root)`` returns a ``FixtureTree`` with the
paths and the exact metric values written, for the assertions.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
METHODS = ["darts", "random_forest", "resnet18", "tiny_resnet", "random_search"]
SEEDS = [0, 1]
PARAMETERS = {"darts": 123_456, "random_forest": 48_210, "resnet18": 11_172_342,
              "tiny_resnet": 77_521, "random_search": 98_765}
# Per-method prediction noise (regression) / accuracy (classification): darts is best on both.
NOISE = {"darts": 0.004, "random_forest": 0.012, "resnet18": 0.006, "tiny_resnet": 0.008,
         "random_search": 0.007}
ACCURACY = {"darts": 0.97, "random_forest": 0.90, "resnet18": 0.95, "tiny_resnet": 0.93,
            "random_search": 0.94}
DATASETS = {
    "kirigami": {"task": "regression", "n": 160, "shape": (1, 32, 80), "epochs": 6, "spread": False},
    "digits": {"task": "classification", "n": 180, "shape": (1, 8, 8), "epochs": 8, "spread": True},
}
# The search diagnostics (history.json): eigenvalue every 2nd epoch from the first and at the last (kirigami),
# every epoch (digits); digits seed 0 stopped by a rule after 8 of 12 epochs; digits seed 1 is an older result
# written before the diagnostics existed (none of their keys).
HESSIAN_EVERY = {"kirigami": 2, "digits": 1}
ALPHA_LR = 3e-4
STEPS_PER_EPOCH = 100  # Adam moves a logit by at most about ALPHA_LR per step
OLD_RESULT = ("digits", 1)
RULE_STOPPED = ("digits", 0)
# The names the rules give their benchmark files (rules/*.smk) and the stage each belongs to.
STAGE_FILES = {"raw_data": "raw_data", "prepare": "prepare", "search_seed{s}": "search",
               "train_darts_seed{s}": "train", "random_forest_seed{s}": "random_forest",
               "resnet18_seed{s}": "resnet18", "tiny_resnet_seed{s}": "tiny_resnet",
               "random_search_seed{s}": "random_search", "search_advantage_seed{s}": "search_advantage"}
BENCH_SECONDS = {"raw_data": 1.5, "prepare": 2.5, "search": 100.0, "train": 60.0, "random_forest": 3.0,
                 "resnet18": 40.0, "tiny_resnet": 20.0, "random_search": 80.0, "search_advantage": 90.0}
# The search advantage (advantage.json): the found cell's test score and 8 random cells' scores per seed.
# kirigami: the found cell beats most random cells; digits: it is no better (one tie on seed 0).
ADVANTAGE = {
    "kirigami": {0: (0.957, [0.951, 0.948, 0.955, 0.953, 0.946, 0.952, 0.960, 0.950]),
                 1: (0.955, [0.949, 0.956, 0.958, 0.947, 0.951, 0.953, 0.950, 0.944])},
    "digits": {0: (0.950, [0.962, 0.955, 0.950, 0.971, 0.958, 0.945, 0.966, 0.960]),
               1: (0.940, [0.957, 0.961, 0.935, 0.969, 0.952, 0.948, 0.964, 0.959])},
}


@dataclass
class FixtureTree:
    root: Path
    results_dir: Path
    benchmarks: list[Path]
    datasets: list[str]
    seeds: list[int]
    # expected[dataset][method][seed] = the metrics.json document written
    metrics: dict[str, dict[str, dict[int, dict]]] = field(default_factory=dict)
    # genotype_changes[dataset][seed] = epochs (1-based) at which the derived genotype changed
    genotype_changes: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    # eigenvalues[dataset][seed] = [(epoch, value)] written; histories[dataset][seed] = the history.json document
    eigenvalues: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    histories: dict[str, dict[int, dict]] = field(default_factory=dict)
    # stage_seconds[stage] = total seconds written into the benchmark files
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # advantage[dataset][seed] = the advantage.json document written
    advantage: dict[str, dict[int, dict]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- small helpers

def _write_json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def derive(weights: np.ndarray) -> list[list]:
    """The search's own DARTS derivation (what history.json records)."""
    from workflow_lib.darts.derive import derive_cell

    return [list(pair) for pair in derive_cell(weights)]


def _genotype(w_normal: np.ndarray, w_reduce: np.ndarray) -> dict:
    return {"normal": derive(w_normal), "normal_concat": [2, 3, 4, 5],
            "reduce": derive(w_reduce), "reduce_concat": [2, 3, 4, 5]}


def _entropy(weights: np.ndarray) -> list[float]:
    return [float(-(row * np.log(row)).sum()) for row in weights]


def _run_info(seed: int, device: str) -> dict:
    return {
        "config": {"seed": seed},
        "seed": seed,
        "versions": {"python": "3.11.2", "torch": "2.14.1", "numpy": "2.4.6", "snakemake": "9.27.1",
                     "matplotlib": "3.11.2"},
        "hardware": {"machine": "x86_64", "processor": "x86_64", "cpu_count": 16, "hostname": "node-a",
                     "device": device, **({"gpu": "NVIDIA H100 80GB HBM3"} if device.startswith("cuda") else {})},
        "git_commit": "abc1234",
        "finished_utc": "2025-01-02T03:04:05+00:00",
    }


# ---------------------------------------------------------------------------------- the tree

def _alphas(rng: np.random.Generator, epochs: int, spread: bool) -> np.ndarray:
    logits = 1e-3 * rng.standard_normal((14, 8))
    favourite = rng.integers(1, 8, size=14)
    rows = [_softmax(logits)]
    for _ in range(epochs):
        if spread:
            logits = logits + 0.12 * rng.standard_normal((14, 8))
            logits[np.arange(14), favourite] += 0.45
            logits[:, 0] -= 0.2
        else:
            logits = logits + 0.012 * rng.standard_normal((14, 8))
        rows.append(_softmax(logits))
    return np.stack(rows)


def _margins(values: np.ndarray) -> list[float]:
    top = np.sort(values, axis=1)
    return [float(v) for v in top[:, -1] - top[:, -2]]


def _diagnostics(name: str, seed: int, epoch: int, epochs: int, logits: dict, last_change: dict) -> dict:
    """The per-epoch diagnostic keys of history.json (workflow_lib.darts.search_run's docstring)."""
    every = HESSIAN_EVERY[name]
    due = (epoch - 1) % every == 0 or epoch == epochs
    row = {"hessian_eigenvalue": 0.05 * epoch * (1 + seed) if due else None,
           "hessian_iterations": 12 if due else 0, "hessian_seconds": 1.5 if due else 0.0,
           "hessian_converged": True if due else None,
           "last_change_epoch": max(last_change.values()),
           "arch_steps": STEPS_PER_EPOCH * epoch, "max_logit_drift": ALPHA_LR * STEPS_PER_EPOCH * epoch}
    for cell in ("normal", "reduce"):
        row[f"stable_epochs_{cell}"] = epoch - last_change[cell]
        margins = _margins(logits[cell])
        row[f"logit_margin_{cell}"] = margins
        row[f"logit_margin_median_{cell}"] = float(np.median(margins))
        row[f"logit_margin_max_{cell}"] = max(margins)
    return row


def _stop_fields(name: str, seed: int, epochs: int, last_change: int) -> dict:
    if (name, seed) == RULE_STOPPED:
        return {"stop_rule": "stable_genotype", "stop_epoch": epochs, "epochs_run": epochs, "max_epochs": epochs + 4,
                "stop_reason": f"stable_genotype: the derived cell (normal and reduce) has not changed for 2 epochs "
                               f"(since epoch {epochs - 2}) at epoch {epochs}, the required 2",
                "stop_details": {"stable_epochs": 2, "required": 2}, "conclusive": True,
                "conclusive_reason": f"conclusive: the stable_genotype rule stopped the search at epoch {epochs} "
                                     f"(the cell of epoch {epochs})"}
    need = (3 * epochs + 9) // 10
    verdict = epochs - last_change >= need
    reason = (f"conclusive: the derived cell did not change over the last {epochs - last_change} of {epochs} epochs"
              if verdict else f"not conclusive: the derived cell last changed at epoch {last_change} of {epochs}")
    return {"stop_rule": None, "stop_reason": "max_epochs", "stop_epoch": epochs, "stop_details": None,
            "epochs_run": epochs, "max_epochs": epochs, "conclusive": verdict, "conclusive_reason": reason}


def _write_dataset(results: Path, name: str, spec: dict, tree: FixtureTree) -> None:
    rng = np.random.default_rng(len(name))
    n, task = spec["n"], spec["task"]
    ds = results / name
    split = np.zeros(n, dtype=np.int8)
    split[n // 2: 3 * n // 4] = 1
    split[3 * n // 4:] = 2
    rng.shuffle(split)
    x = (rng.random((n, *spec["shape"])) > 0.5).astype(np.float32)
    arrays: dict = {"x": x, "split": split, "task": np.array(task)}
    if task == "regression":
        targets = np.stack([rng.uniform(0.05, 0.6, n), rng.uniform(1, 30, n), rng.uniform(10, 90, n)],
                           axis=1).astype(np.float32)
        y = targets[:, 0].copy()
        provenance = {"source": "surrogate", "description": "lattice spring surrogate of MD tensile tests",
                      "path": "data/raw/kirigami_surrogate.txt", "sha256": "0" * 64, "url": "",
                      "n_samples": n}
        arrays.update(y=y, targets=targets, target_names=np.array(["yield_strain", "toughness", "yield_stress"]),
                      target=np.array("yield_strain"),
                      coarse=(rng.random((n, 3, 5)) > 0.5).astype(np.uint8))
        _write_json(ds / "data" / "prepared.json", {"task": task, "n_samples": n, "provenance": provenance})
    else:
        y = rng.integers(0, 10, n).astype(np.int64)
        provenance = {"source": "sklearn", "description": "sklearn.datasets.load_digits", "path": "",
                      "sha256": "1" * 64, "url": "", "n_samples": n}
        arrays.update(y=y, target=np.array(""), class_names=np.array([str(k) for k in range(10)]))
    arrays["provenance"] = np.array(json.dumps(provenance))
    (ds / "data").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(ds / "data" / "prepared.npz", **arrays)
    test_index = np.flatnonzero(split == 2)
    metric = "r2" if task == "regression" else "accuracy"

    tree.metrics[name] = {m: {} for m in METHODS}
    tree.genotype_changes[name] = {}
    tree.eigenvalues[name] = {}
    tree.histories[name] = {}
    for seed in tree.seeds:
        srng = np.random.default_rng(1000 * len(name) + seed)
        epochs = spec["epochs"]
        a_normal = _alphas(srng, epochs, spec["spread"])
        a_reduce = _alphas(srng, epochs, spec["spread"])
        history_epochs, changes, previous = [], [], None
        last_change = {"normal": 0, "reduce": 0}
        for e in range(1, epochs + 1):
            genotype = _genotype(a_normal[e], a_reduce[e])
            if previous is not None and genotype != previous:
                changes.append(e)
            for cell in ("normal", "reduce"):
                if previous is not None and genotype[cell] != previous[cell]:
                    last_change[cell] = e
            previous = genotype
            frac = e / epochs
            metric_value = (0.2 + 0.6 * frac) if task == "regression" else (0.3 + 0.6 * frac)
            history_epochs.append({
                "epoch": e, "train_loss": 1.0 - 0.7 * frac + 0.01 * seed, "train_metric": metric_value + 0.05,
                "val_loss": 1.1 - 0.6 * frac, "val_metric": metric_value, "lr": 0.025 * (1 - frac / 2),
                "seconds": 10.0 + seed, "genotype": genotype,
                "skip_count_normal": sum(op == "skip_connect" for op, _ in genotype["normal"]),
                "skip_count_reduce": sum(op == "skip_connect" for op, _ in genotype["reduce"]),
                "entropy_normal": _entropy(a_normal[e]), "entropy_reduce": _entropy(a_reduce[e]),
            })
            if (name, seed) != OLD_RESULT:
                logits = {"normal": np.log(a_normal[e]), "reduce": np.log(a_reduce[e])}
                history_epochs[-1].update(_diagnostics(name, seed, e, epochs, logits, last_change))
        tree.genotype_changes[name][seed] = changes
        tree.eigenvalues[name][seed] = [(row["epoch"], row["hessian_eigenvalue"]) for row in history_epochs
                                        if row.get("hessian_eigenvalue") is not None]
        sdir = ds / "search" / f"seed{seed}"
        history = {"primitives": PRIMITIVES, "metric": metric, "epochs": history_epochs,
                   "wall_seconds": 10.0 * epochs + seed}
        if (name, seed) != OLD_RESULT:
            history.update(_stop_fields(name, seed, epochs, max(last_change.values())))
        tree.histories[name][seed] = history
        _write_json(sdir / "history.json", history)
        sdir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(sdir / "alphas.npz", normal=a_normal.astype(np.float32),
                            reduce=a_reduce.astype(np.float32))
        final_genotype = history_epochs[-1]["genotype"]
        _write_json(sdir / "genotype.json", final_genotype)
        (sdir / "supernet.pt").write_bytes(b"not a real checkpoint")
        _write_json(sdir / "run_info.json", _run_info(seed, "cpu"))
        advantage = _advantage_document(name, seed, metric, final_genotype)
        _write_json(ds / "search_advantage" / f"seed{seed}" / "advantage.json", advantage)
        tree.advantage.setdefault(name, {})[seed] = advantage

        for method in METHODS:
            mrng = np.random.default_rng(zlib.crc32(f"{name}-{method}-{seed}".encode()))
            y_true = y[test_index]
            if task == "regression":
                y_pred = y_true + NOISE[method] * (1 + 0.3 * seed) * 10 * mrng.standard_normal(len(y_true))
                resid = y_pred - y_true
                test = {"r2": float(1 - (resid ** 2).sum() / ((y_true - y_true.mean()) ** 2).sum()),
                        "mae": float(np.abs(resid).mean()), "rmse": float(math.sqrt((resid ** 2).mean())),
                        "loss": float((resid ** 2).mean() / y_true.var())}
            else:
                correct = mrng.random(len(y_true)) < ACCURACY[method] - 0.02 * seed
                y_pred = np.where(correct, y_true, (y_true + mrng.integers(1, 10, len(y_true))) % 10)
                test = {"accuracy": float((y_pred == y_true).mean()), "loss": float(1 - ACCURACY[method])}
            device = "cpu" if method == "random_forest" else "cuda:0"
            n_epochs = 1 if method == "random_forest" else 5
            doc = {"method": method, "dataset": name, "seed": seed, "task": task,
                   "parameters": PARAMETERS[method], "train_seconds": 12.5 * (1 + METHODS.index(method)) + seed,
                   "device": device, "epochs": n_epochs, "test": test, "config": {"epochs": n_epochs},
                   "run_info": _run_info(seed, device)}
            if method in ("darts", "random_search"):
                doc["genotype"] = final_genotype
            mdir = ds / "methods" / method / f"seed{seed}"
            _write_json(mdir / "metrics.json", doc)
            tree.metrics[name][method][seed] = doc
            curve_rows = []
            for e in range(1, n_epochs + 1):
                frac = e / n_epochs
                curve_rows.append([e, 1 - 0.5 * frac, test[metric] * (0.7 + 0.3 * frac), 1.1 - 0.5 * frac,
                                   test[metric] * (0.6 + 0.4 * frac), 0.01, 3.0 * e])
            if method == "random_forest":
                curve_rows = [[1, "", "", test["loss"], test[metric], "", 3.0]]
            _write_csv(mdir / "curves.csv",
                       ["epoch", "train_loss", "train_metric", "test_loss", "test_metric", "lr", "seconds"],
                       curve_rows)
            if task == "regression":
                pred_rows = [[int(i), float(t), float(p)] for i, t, p in zip(test_index, y_true, y_pred)]
            else:
                pred_rows = [[int(i), int(t), int(p)] for i, t, p in zip(test_index, y_true, y_pred)]
            _write_csv(mdir / "predictions.csv", ["index", "y_true", "y_pred"], pred_rows)

    summary = {"dataset": name, "task": task, "methods": {}}
    for method in METHODS:
        docs = list(tree.metrics[name][method].values())
        summary["methods"][method] = {
            "parameters": PARAMETERS[method], "seeds": tree.seeds,
            "test": {k: {"mean": float(np.mean([d["test"][k] for d in docs])),
                         "std": float(np.std([d["test"][k] for d in docs]))} for k in docs[0]["test"]},
            "train_seconds": {"mean": float(np.mean([d["train_seconds"] for d in docs])),
                              "std": float(np.std([d["train_seconds"] for d in docs]))},
        }
    _write_json(ds / "summary.json", summary)


def _advantage_document(name: str, seed: int, metric: str, genotype: dict) -> dict:
    """advantage.json, its statistics worked out here independently of the producer."""
    found, scores = ADVANTAGE[name][seed]
    beaten = sum(s < found for s in scores)
    ties = sum(s == found for s in scores)
    mean = float(np.mean(scores))
    std = float(np.std(scores, ddof=1))
    budget = {"epochs": 3, "optimizer_steps": 30, "samples_seen": 3000, "train_seconds": 4.0,
              "input_shape": [1, 16, 10], "batch_size": 128, "optimizer": "sgd"}
    cell = {"genotype": genotype, "parameters": 20_000, "seconds": 4.0, "budget": budget}
    return {"dataset": name, "seed": seed, "metric": metric, "higher_is_better": True,
            "found": {**cell, "score": found},
            "random": [{"index": i, **cell, "score": s} for i, s in enumerate(scores)],
            "percentile": 100.0 * (beaten + 0.5 * ties) / len(scores), "beaten": beaten, "ties": ties,
            "n": len(scores), "random_mean": mean, "random_std": std,
            "relative_improvement": 100.0 * (found - mean) / mean, "z_score": (found - mean) / std,
            "protocol": {"epochs": 3, "max_steps_per_epoch": 10, "train_samples": 1000, "input_shape": [1, 16, 10],
                         "batch_size": 128, "C": 8, "layers": 5, "final_training_epochs": 10, "metric": metric,
                         "scored_on": "test"},
            "random_stream": f"search_advantage/seed{seed}"}


def _write_benchmarks(root: Path, tree: FixtureTree) -> None:
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for name in tree.datasets:
        for pattern, stage in STAGE_FILES.items():
            for seed in (tree.seeds if "{s}" in pattern else [None]):
                stem = pattern.format(s=seed)
                seconds = BENCH_SECONDS[stage] + (seed or 0)
                path = root / "benchmarks" / name / f"{stem}.tsv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(header + f"{seconds:.4f}\t0:00:{int(seconds):02d}\t100\t200\t90\t95\t1\t2\t50\t{seconds}\n")
                tree.benchmarks.append(path)
                tree.stage_seconds[stage] = tree.stage_seconds.get(stage, 0.0) + seconds


def write_results_tree(root: Path | str, seeds: list[int] | None = None) -> FixtureTree:
    root = Path(root)
    tree = FixtureTree(root=root, results_dir=root / "results", benchmarks=[],
                       datasets=list(DATASETS), seeds=list(seeds or SEEDS))
    for name, spec in DATASETS.items():
        _write_dataset(tree.results_dir, name, spec, tree)
    _write_benchmarks(root, tree)
    return tree


# ------------------------------------------------------------------- one rendered report per process

@dataclass
class RenderedReport:
    tree: FixtureTree
    html_path: Path
    html: str
    manifest: dict
    figures_dir: Path


_RENDERED: dict[str, RenderedReport] = {}


def rendered_report(tmp_path_factory) -> RenderedReport:
    """Write the fixture tree and render its report once per test process (shared by test modules)."""
    if "report" not in _RENDERED:
        from workflow_lib.report.run import report_step

        root = tmp_path_factory.mktemp("report_fixture")
        tree = write_results_tree(root)
        html_path = tree.results_dir / "report.html"
        figures_dir = tree.results_dir / "report" / "figures"
        manifest = report_step(tree.results_dir, tree.datasets, tree.seeds, html_path, "Fixture report",
                               stage_times=tree.benchmarks, figures_dir=figures_dir)
        _RENDERED["report"] = RenderedReport(tree, html_path, html_path.read_text(), manifest, figures_dir)
    return _RENDERED["report"]
