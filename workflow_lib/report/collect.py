"""Read the workflow's artifacts (docs/DESIGN.md, "Artifacts") into a typed model for the report.

Only JSON / CSV / NPZ files are read (never checkpoints or torch files), and nothing is imported
from the producers, so the report renders from a copied results tree on a machine without torch.
Missing or unreadable artifacts never abort the report: they are recorded in ``DatasetResults.notes``
and shown on the page.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from workflow_lib.methods import DARTS, STEPS

# The DARTS search space (workflow_lib.darts.ops.PRIMITIVES); history.json carries its own copy,
# this is only the fallback, so the report does not need to import torch.
PRIMITIVES = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)

# history.json's top-level keys on how a search ended (workflow_lib.darts.search_diagnostics.stop_summary)
STOP_KEYS = ("stop_rule", "stop_reason", "stop_epoch", "stop_details", "epochs_run", "max_epochs", "conclusive",
             "conclusive_reason")

# The workflow's steps, in pipeline order (benchmark times are shown per step in this order).
STAGES = STEPS

REGRESSION_METRICS = ("r2", "mae", "rmse")
CLASSIFICATION_METRICS = ("accuracy",)
# True when larger is better.
HIGHER_IS_BETTER = {"r2": True, "accuracy": True, "mae": False, "rmse": False, "loss": False,
                    "train_seconds": False, "parameters": False}
METRIC_LABELS = {"r2": "R²", "mae": "MAE", "rmse": "RMSE", "accuracy": "Accuracy", "loss": "Loss"}

# Units of the kirigami targets (MD: strain is dimensionless, stress and toughness in GPa).
# A dataset's provenance may override them with {"units": {target: unit}}.
TARGET_UNITS = {"yield_strain": "dimensionless", "yield_stress": "GPa", "toughness": "GPa"}


@dataclass
class DatasetInfo:
    """What the report needs from prepared.npz / prepared.json (never the images themselves)."""

    name: str
    task: str = "unknown"  # "regression" | "classification" | "unknown"
    target: str = ""
    target_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    n_samples: int | None = None
    split_counts: dict[str, int] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None

    @property
    def source(self) -> str:
        return str(self.provenance.get("source", "unknown"))

    @property
    def is_surrogate(self) -> bool:
        return self.source == "surrogate"

    @property
    def unit(self) -> str:
        units = self.provenance.get("units")
        if isinstance(units, dict) and self.target in units:
            return str(units[self.target])
        if isinstance(units, str):
            return units
        unit = TARGET_UNITS.get(self.target, "")
        if self.is_surrogate and unit and unit != "dimensionless":
            return "surrogate model units"
        return unit


@dataclass
class SearchRun:
    seed: int
    primitives: list[str]
    metric: str
    epochs: list[dict[str, Any]]
    wall_seconds: float | None
    alphas_normal: np.ndarray | None  # (E+1, 14, 8) softmax weights, row 0 = initial
    alphas_reduce: np.ndarray | None
    genotype: dict[str, Any] | None
    run_info: dict[str, Any]
    budget: dict[str, Any] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)  # PC-DARTS: cell -> (E+1, 14) edge weights
    method: str = "darts"
    # how the search ended and whether it is conclusive (history.json's STOP_KEYS; empty in older results)
    stop: dict[str, Any] = field(default_factory=dict)

    @property
    def n_epochs(self) -> int:
        return len(self.epochs)


@dataclass
class MethodRun:
    method: str
    seed: int
    metrics: dict[str, Any]
    curves: list[dict[str, float]]  # rows of curves.csv
    predictions: dict[str, np.ndarray] | None  # index, y_true, y_pred
    candidates: dict[str, Any] | None = None  # random search: candidates.json (candidates, best, budget)

    @property
    def test(self) -> dict[str, Any]:
        return self.metrics.get("test") or {}


@dataclass
class DatasetResults:
    name: str
    info: DatasetInfo
    searches: dict[int, SearchRun] = field(default_factory=dict)
    methods: dict[str, dict[int, MethodRun]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    design: dict[str, Any] | None = None   # design/design.json (the kirigami design loop)
    selection: dict[str, Any] | None = None  # search/selection/selection.json (the paper's selection step)
    curves: dict[str, Any] | None = None   # learning_curves/learning_curves.json
    advantage: dict[int, dict[str, Any]] = field(default_factory=dict)  # search_advantage/seed{s}/advantage.json
    advantage_planned: bool | None = None  # the plan runs the search advantage (None: no plan)

    @property
    def task(self) -> str:
        if self.info.task != "unknown":
            return self.info.task
        for runs in self.methods.values():
            for run in runs.values():
                if run.metrics.get("task"):
                    return str(run.metrics["task"])
        return "unknown"

    @property
    def metric_names(self) -> tuple[str, ...]:
        return REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS


@dataclass
class StageTime:
    stage: str
    seconds: float
    per_dataset: dict[str, float]
    files: int


@dataclass
class ReportData:
    results_dir: Path
    datasets: list[DatasetResults]
    seeds: list[int]
    stage_times: list[StageTime]
    stage_time_notes: list[str]

    def run_infos(self) -> list[dict[str, Any]]:
        infos = []
        for ds in self.datasets:
            for search in ds.searches.values():
                if search.run_info:
                    infos.append(search.run_info)
            for runs in ds.methods.values():
                for run in runs.values():
                    if isinstance(run.metrics.get("run_info"), dict):
                        infos.append(run.metrics["run_info"])
        return infos


# --------------------------------------------------------------------------------------------- readers

def _read_json(path: Path, notes: list[str], what: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        notes.append(f"{what}: missing ({path})")
    except (OSError, ValueError) as error:
        notes.append(f"{what}: unreadable ({path}: {error})")
    return None


def _to_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a numeric CSV file as dicts of floats (empty cells become NaN)."""
    with open(path, newline="") as handle:
        return [{key: _to_float(value) for key, value in row.items() if key is not None}
                for row in csv.DictReader(handle)]


def _npz_str(value: np.ndarray) -> str:
    return str(value.item() if value.shape == () else value)


def _parse_provenance(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, (str, bytes)):
        try:
            parsed = json.loads(raw)
            return parsed if isinstance(parsed, dict) else {"description": str(parsed)}
        except ValueError:
            return {"description": str(raw)}
    return {}


def read_dataset_info(data_dir: Path, name: str, notes: list[str]) -> DatasetInfo:
    """Provenance and shape facts from prepared.json (if written) and prepared.npz (lazily, no `x`)."""
    info = DatasetInfo(name=name)
    npz_path = data_dir / "prepared.npz"
    json_path = data_dir / "prepared.json"
    if npz_path.exists():
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                keys = set(npz.files)
                if "task" in keys:
                    info.task = _npz_str(npz["task"])
                if "target" in keys:
                    info.target = _npz_str(npz["target"])
                if "target_names" in keys:
                    info.target_names = [str(v) for v in npz["target_names"]]
                if "class_names" in keys:
                    info.class_names = [str(v) for v in npz["class_names"]]
                if "provenance" in keys:
                    info.provenance = _parse_provenance(_npz_str(npz["provenance"]))
                if "split" in keys:
                    split = np.asarray(npz["split"])
                    info.n_samples = int(split.shape[0])
                    info.split_counts = {
                        "search-train": int((split == 0).sum()),
                        "search-val": int((split == 1).sum()),
                        "test": int((split == 2).sum()),
                    }
                if "x" in keys:
                    # Only the header is needed; NpzFile reads members lazily, so read the shape
                    # from the .npy header without loading the array.
                    info.input_shape = _npz_member_shape(npz_path, "x")
        except (OSError, ValueError, KeyError) as error:
            notes.append(f"prepared data: unreadable ({npz_path}: {error})")
    if json_path.exists():
        doc = _read_json(json_path, notes, "prepared.json")
        if isinstance(doc, dict):
            prov = doc.get("provenance")
            if prov is None and "source" in doc:
                prov = doc
            if prov is not None:
                info.provenance = {**info.provenance, **_parse_provenance(prov)}
            for key in ("task", "target"):
                if isinstance(doc.get(key), str) and getattr(info, key) in ("", "unknown"):
                    setattr(info, key, doc[key])
            if info.n_samples is None and isinstance(doc.get("n_samples"), int):
                info.n_samples = doc["n_samples"]
            if not info.class_names and isinstance(doc.get("class_names"), list):
                info.class_names = [str(v) for v in doc["class_names"]]
    if not npz_path.exists() and not json_path.exists():
        notes.append(f"prepared data: missing ({npz_path})")
    if info.n_samples is None and isinstance(info.provenance.get("n_samples"), int):
        info.n_samples = info.provenance["n_samples"]
    return info


def _npz_member_shape(path: Path, member: str) -> tuple[int, ...] | None:
    import zipfile

    from numpy.lib import format as npformat

    try:
        with zipfile.ZipFile(path) as archive, archive.open(member + ".npy") as handle:
            version = npformat.read_magic(handle)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _, _ = reader(handle)
            return tuple(int(s) for s in shape)
    except Exception:  # pragma: no cover - shape is decoration only
        return None


def read_search(search_dir: Path, seed: int, notes: list[str]) -> SearchRun | None:
    history = _read_json(search_dir / "history.json", notes, f"search seed {seed} history")
    if not isinstance(history, dict):
        return None
    alphas_normal = alphas_reduce = None
    edges: dict[str, np.ndarray] = {}
    alphas_path = search_dir / "alphas.npz"
    if alphas_path.exists():
        try:
            with np.load(alphas_path, allow_pickle=False) as npz:
                alphas_normal = np.asarray(npz["normal"], dtype=float)
                alphas_reduce = np.asarray(npz["reduce"], dtype=float)
                edges = {cell: np.asarray(npz[f"edges_{cell}"], dtype=float) for cell in ("normal", "reduce")
                         if f"edges_{cell}" in npz.files}
        except (OSError, ValueError, KeyError) as error:
            notes.append(f"search seed {seed} alphas: unreadable ({alphas_path}: {error})")
    else:
        notes.append(f"search seed {seed} alphas: missing ({alphas_path})")
    genotype = None
    if (search_dir / "genotype.json").exists():
        genotype = _read_json(search_dir / "genotype.json", notes, f"search seed {seed} genotype")
    epochs = [e for e in history.get("epochs", []) if isinstance(e, dict)]
    if genotype is None and epochs and isinstance(epochs[-1].get("genotype"), dict):
        genotype = epochs[-1]["genotype"]
    run_info = {}
    if (search_dir / "run_info.json").exists():
        run_info = _read_json(search_dir / "run_info.json", notes, f"search seed {seed} run_info") or {}
    return SearchRun(
        seed=seed,
        primitives=list(history.get("primitives") or PRIMITIVES),
        metric=str(history.get("metric", "")),
        epochs=epochs,
        wall_seconds=history.get("wall_seconds"),
        alphas_normal=alphas_normal,
        alphas_reduce=alphas_reduce,
        genotype=genotype if isinstance(genotype, dict) else None,
        run_info=run_info if isinstance(run_info, dict) else {},
        budget=history.get("budget") if isinstance(history.get("budget"), dict) else {},
        edges=edges,
        method=str(history.get("method", "darts")),
        stop={key: history[key] for key in STOP_KEYS if key in history},
    )


def read_method_run(run_dir: Path, method: str, seed: int, notes: list[str]) -> MethodRun | None:
    metrics = _read_json(run_dir / "metrics.json", notes, f"{method} seed {seed} metrics")
    if not isinstance(metrics, dict):
        return None
    curves: list[dict[str, float]] = []
    if (run_dir / "curves.csv").exists():
        try:
            curves = read_csv_rows(run_dir / "curves.csv")
        except (OSError, ValueError, csv.Error) as error:
            notes.append(f"{method} seed {seed} curves: unreadable ({error})")
    predictions = None
    if (run_dir / "predictions.csv").exists():
        try:
            rows = read_csv_rows(run_dir / "predictions.csv")
            predictions = {key: np.array([row.get(key, math.nan) for row in rows], dtype=float)
                           for key in ("index", "y_true", "y_pred")}
        except (OSError, ValueError, csv.Error) as error:
            notes.append(f"{method} seed {seed} predictions: unreadable ({error})")
    candidates = None
    if (run_dir / "candidates.json").exists():
        candidates = _read_json(run_dir / "candidates.json", notes, f"{method} seed {seed} candidates")
    return MethodRun(method=method, seed=seed, metrics=metrics, curves=curves, predictions=predictions,
                     candidates=candidates if isinstance(candidates, dict) else None)


ADVANTAGE_KEYS = ("found", "random", "percentile", "beaten", "n", "random_mean", "random_std",
                  "relative_improvement", "protocol")


def read_advantage(ds_dir: Path, seeds: Iterable[int], planned: bool | None, notes: list[str]) -> dict[int, dict]:
    """Each seed's advantage.json: all that the plan asks for (missing ones noted), else those that exist."""
    documents = {}
    for seed in seeds if planned is not False else []:
        path = ds_dir / "search_advantage" / f"seed{seed}" / "advantage.json"
        if planned is None and not path.exists():
            continue
        document = _read_json(path, notes, f"search advantage seed {seed}")
        if isinstance(document, dict) and all(key in document for key in ADVANTAGE_KEYS):
            documents[seed] = document
        elif document is not None:
            notes.append(f"search advantage seed {seed}: unreadable ({path}: keys missing)")
    return documents


def _seed_of(name: str) -> int | None:
    match = re.fullmatch(r"seed(\d+)", name)
    return int(match.group(1)) if match else None


def _method_names(ds_dir: Path, methods: Iterable[str] | None, notes: list[str]) -> list[str]:
    """The methods to report: those the config asks for; listing folders is only for a bare results tree."""
    if methods is not None:
        return list(methods)
    methods_dir = ds_dir / "methods"
    if not methods_dir.is_dir():
        notes.append(f"methods: missing ({methods_dir})")
        return []
    return sorted(p.name for p in methods_dir.iterdir() if p.is_dir())


def collect_dataset(results_dir: Path, name: str, seeds: Iterable[int], methods: Iterable[str] | None = None,
                    search: bool = True, stages: dict[str, bool] | None = None) -> DatasetResults:
    """One dataset's artifacts: the search (when ``search``), every method of ``methods`` for every seed, and
    the design loop, learning curves and search advantage where ``stages`` says so (without a plan: where they
    exist)."""
    stages = stages or {}
    seeds = list(seeds)
    ds_dir = results_dir / name
    notes: list[str] = []
    info = read_dataset_info(ds_dir / "data", name, notes)
    result = DatasetResults(name=name, info=info, notes=notes)
    for seed in seeds if search else []:
        search_dir = ds_dir / "search" / f"seed{seed}"
        if search_dir.exists():
            run = read_search(search_dir, seed, notes)
            if run is not None:
                result.searches[seed] = run
    selection_path = ds_dir / "search" / "selection" / "selection.json"
    if search and selection_path.exists():
        document = _read_json(selection_path, notes, "cell selection")
        result.selection = document if isinstance(document, dict) else None
    for method in _method_names(ds_dir, methods, notes):
        runs: dict[int, MethodRun] = {}
        for seed in seeds:
            run_dir = ds_dir / "methods" / method / f"seed{seed}"
            if not run_dir.exists():
                notes.append(f"{method} seed {seed}: missing ({run_dir})")
                continue
            run = read_method_run(run_dir, method, seed, notes)
            if run is not None:
                runs[seed] = run
        if runs:
            result.methods[method] = runs
    if DARTS in result.methods:  # the paper's method first, then the baselines
        result.methods = {DARTS: result.methods.pop(DARTS), **result.methods}
    for key, path, what in (("design", ds_dir / "design" / "design.json", "design loop"),
                            ("learning_curves", ds_dir / "learning_curves" / "learning_curves.json",
                             "learning curves")):
        if stages.get(key, path.exists()):
            document = _read_json(path, notes, what)
            setattr(result, "design" if key == "design" else "curves", document if isinstance(document, dict) else None)
    result.advantage_planned = stages.get("search_advantage") if search else False
    result.advantage = read_advantage(ds_dir, seeds, result.advantage_planned, notes)
    if (ds_dir / "summary.json").exists():
        summary = _read_json(ds_dir / "summary.json", notes, "summary")
        result.summary = summary if isinstance(summary, dict) else None
    if info.task == "unknown" and result.task != "unknown":
        info.task = result.task
    return result


# ------------------------------------------------------------------------------------- benchmarks

def _stage_from_name(text: str) -> str:
    for stage in sorted(STAGES, key=len, reverse=True):
        if text == stage or re.match(rf"{re.escape(stage)}(?:[._\-]|$)", text):
            return stage
    text = re.sub(r"[._\-]?seed\d+.*$", "", text)
    return re.sub(r"[._\-]\d+$", "", text) or "unknown"


def parse_benchmark_path(path: Path) -> tuple[str, str]:
    """(dataset, stage) of a benchmark file: benchmarks/{dataset}/{stage}[...].tsv or .../{stage}/....tsv."""
    parts = list(path.parts)
    if "benchmarks" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("benchmarks") + 1:]
    else:
        rest = parts[-2:]
    if len(rest) == 1:
        return "all", _stage_from_name(Path(rest[0]).name.split(".tsv")[0])
    dataset = rest[0]
    if len(rest) >= 3:
        return dataset, _stage_from_name(rest[1])
    return dataset, _stage_from_name(Path(rest[-1]).name.split(".tsv")[0])


def read_benchmark_seconds(path: Path) -> float:
    """Wall seconds of a Snakemake benchmark TSV (column `s`; the mean when it holds repeats)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    values = [_to_float(row.get("s", "")) for row in rows]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        raise ValueError("no numeric `s` column")
    return float(sum(values) / len(values))


def _benchmark_entries(items: Iterable[Any]) -> list[tuple[str, str, Path]]:
    """(dataset, step, path) of each benchmark: given explicitly by the plan, or parsed from a path/folder."""
    entries = []
    for item in items:
        if isinstance(item, dict):
            entries.append((str(item["dataset"]), str(item["step"]), Path(item["path"])))
            continue
        path = Path(item)
        for candidate in sorted(path.rglob("*.tsv")) if path.is_dir() else [path]:
            dataset, stage = parse_benchmark_path(candidate)
            entries.append((dataset, stage, candidate))
    return entries


def collect_stage_times(items: Iterable[Any] | None) -> tuple[list[StageTime], list[str]]:
    """Total wall time per step over the given benchmark files (missing or unreadable ones are noted)."""
    notes: list[str] = []
    totals: dict[str, StageTime] = {}
    for dataset, stage, path in _benchmark_entries(items or []):
        try:
            seconds = read_benchmark_seconds(path)
        except FileNotFoundError:
            notes.append(f"benchmark missing: {path}")
            continue
        except (OSError, ValueError, csv.Error) as error:
            notes.append(f"benchmark unreadable: {path} ({error})")
            continue
        entry = totals.setdefault(stage, StageTime(stage, 0.0, {}, 0))
        entry.seconds += seconds
        entry.per_dataset[dataset] = entry.per_dataset.get(dataset, 0.0) + seconds
        entry.files += 1
    order = {stage: k for k, stage in enumerate(STAGES)}
    return sorted(totals.values(), key=lambda s: (order.get(s.stage, len(order)), s.stage)), notes


def collect(results_dir: Path | str, datasets: Iterable[str], seeds: Iterable[int],
            stage_times: Iterable[Any] | None = None, plan: dict[str, Any] | None = None) -> ReportData:
    """Read the artifacts of ``datasets``; with a ``plan`` (the rule's, from the config) only the methods and
    searches it names, so a results folder shared by several configs never leaks into this report."""
    results_dir = Path(results_dir)
    seeds = [int(s) for s in seeds]
    per_dataset = (plan or {}).get("datasets", {})
    data = [collect_dataset(results_dir, name, seeds, per_dataset.get(name, {}).get("methods"),
                            per_dataset.get(name, {}).get("search", True),
                            {key: value for key, value in per_dataset.get(name, {}).items()
                             if key in ("design", "learning_curves", "search_advantage")}) for name in datasets]
    times, time_notes = collect_stage_times(stage_times)
    return ReportData(results_dir=results_dir, datasets=data, seeds=seeds,
                      stage_times=times, stage_time_notes=time_notes)
