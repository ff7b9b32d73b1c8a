"""The two data steps of the workflow: fetch (raw files + manifest) and prepare (prepared.npz + summary)."""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.stage import StageConfig
from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.fetch import DataError, DataUnavailableError
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.datasets.registry import get_dataset
from workflow_lib.datasets.splits import SPLIT_NAMES, split_for
from workflow_lib.io import write_json_atomic

log = logging.getLogger(__name__)

SPLIT_RULES = {
    "random": "numpy.random.default_rng(seed).permutation(N): first round(test_fraction*N) = test (2), next "
              "round(search_val_fraction*rest) = search-val (1), the rest search-train (0)",
    "sklearn": "sklearn.model_selection.train_test_split(range(N), test_size=test_fraction, random_state=seed) "
               "on the file's row order (the 2019 kirigami study); training rows in that order: the first part "
               "search-train, the last search_val_fraction search-val",
    "official": "the dataset's own test set; its training images in order: the first part search-train, the "
                "last search_val_fraction search-val (the DARTS code's train_portion split)",
}


def data_config(stage: StageConfig) -> DataConfig:
    """The DataConfig of a data stage (settings = the dataset block's kind/source/target/pad_rows/split)."""
    return DataConfig.from_dict(dict(stage.settings) | {"kind": stage.kind})


def _name_key(exc: Exception, dataset: str) -> str:
    return str(exc).replace("datasets.<name>.", f"datasets.{dataset}.")


def _reraise_with_name(exc: Exception, dataset: str) -> None:
    """Re-raise `exc` with "datasets.<name>." replaced by the dataset's real config key (same type)."""
    message = _name_key(exc, dataset)
    if message == str(exc):
        return
    try:
        new = type(exc)(message)
    except Exception:  # an exception type with another constructor: keep the original
        return
    raise new from exc


def fetch_step(stage: StageConfig, manifest_path: Path, threads: int = 1) -> None:
    """Fetch the raw data into manifest_path's folder and write the manifest JSON (atomically).

    `threads`: CPU workers a fetch may use (the kirigami surrogate simulates in parallel).
    """
    manifest_path = Path(manifest_path)
    cfg = data_config(stage)
    spec = get_dataset(cfg.kind)
    raw_dir = manifest_path.parent
    raw_dir.mkdir(parents=True, exist_ok=True)
    options = {"threads": max(1, int(threads))} if "threads" in inspect.signature(spec.fetch).parameters else {}
    try:
        manifest = spec.fetch(cfg, raw_dir, **options)
    except DataUnavailableError as exc:
        raise DataUnavailableError(f"dataset {stage.dataset!r}: {_name_key(exc, stage.dataset)}") from exc
    except ValueError as exc:
        _reraise_with_name(exc, stage.dataset)
        raise
    reused = manifest.pop("reused", False)
    # Deterministic content (no timestamps): a refetch that finds the same data writes the same bytes, and
    # Snakemake's input checksum then spares the downstream steps.
    document = {"dataset": stage.dataset, **manifest, "kind": cfg.kind, "settings": stage.settings}
    write_json_atomic(manifest_path, document)
    log.info("fetched %s (%s%s) at %s: %d file(s) -> %s", stage.dataset, cfg.kind, ", reused" if reused else "",
             _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), len(manifest.get("files", {})),
             manifest_path)


def read_manifest(manifest_path: Path) -> dict[str, Any]:
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise DataUnavailableError(f"fetch manifest {manifest_path} does not exist; run the fetch step first")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise DataError(f"fetch manifest {manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise DataError(f"fetch manifest {manifest_path} lacks 'kind'")
    return manifest


def prepare_step(stage: StageConfig, manifest_path: Path, out_path: Path) -> None:
    """Prepare the dataset, assign the split and write out_path (.npz) and out_path.with_suffix('.json')."""
    out_path = Path(out_path)
    cfg = data_config(stage)
    spec = get_dataset(cfg.kind)
    manifest = read_manifest(manifest_path)
    if manifest["kind"] != cfg.kind:
        raise DataError(
            f"fetch manifest {manifest_path} is for kind {manifest['kind']!r} but dataset "
            f"{stage.dataset!r} is {cfg.kind!r}; rerun the fetch step"
        )
    try:
        data = spec.prepare(cfg, manifest)
    except (DataUnavailableError, ValueError) as exc:
        _reraise_with_name(exc, stage.dataset)
        raise
    source = manifest.get("provenance", {}).get("path")
    split = split_for(cfg.split.method, data.n, cfg.split.test_fraction, cfg.split.seed,
                      cfg.split.search_val_fraction, data.official_test,
                      what=f"dataset {stage.dataset!r}" + (f" ({source})" if source else ""))
    provenance = dict(data.provenance)
    provenance.update({"dataset": stage.dataset, "kind": cfg.kind,
                       "split": {**cfg.split.to_dict(), "rule": SPLIT_RULES[cfg.split.method]}})
    data = PreparedData(
        x=data.x, y=data.y, task=data.task, target=data.target, targets=data.targets,
        target_names=data.target_names, class_names=data.class_names, split=split,
        coarse=data.coarse, provenance=provenance,
    )
    summary = summarise(data, stage.dataset)
    json.dumps(summary)  # fail before writing anything if the summary is not serialisable
    data.save(out_path)
    try:
        write_json_atomic(out_path.with_suffix(".json"), summary)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    log.info("prepared %s: %s %s, split %s -> %s", stage.dataset, data.task, data.x.shape, data.split_sizes(), out_path)


def _stats(values: np.ndarray) -> dict[str, float | int]:
    values = np.asarray(values)
    if values.size == 0:
        return {"n": 0}
    return {  # float64 accumulators, no float64 copy of (possibly large) x
        "n": int(values.size),
        "mean": float(values.mean(dtype=np.float64)),
        "std": float(values.std(dtype=np.float64)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def summarise(data: PreparedData, dataset: str = "") -> dict[str, Any]:
    """The human-readable summary written beside prepared.npz."""
    summary: dict[str, Any] = {
        "dataset": dataset,
        "n": data.n,
        "shape": list(data.x.shape),
        "input_shape": list(data.input_shape),
        "task": data.task,
        "target": data.target,
        "out_dim": data.out_dim,
        "split_sizes": data.split_sizes(),
        "digest": data.digest(),
        "x_stats": _stats(data.x),
        "provenance": data.provenance,
    }
    by_split = {name: data.split == code for code, name in SPLIT_NAMES.items()} if data.split is not None else {}
    if data.task == "regression":
        summary["target_names"] = list(data.target_names)
        summary["target_stats"] = {
            name: _stats(data.targets[:, i]) for i, name in enumerate(data.target_names)
        }
        summary["y_stats_by_split"] = {name: _stats(data.y[mask]) for name, mask in by_split.items()}
    else:
        k = data.num_classes
        summary["class_names"] = list(data.class_names)
        summary["class_counts"] = np.bincount(data.y, minlength=k).tolist()
        summary["class_counts_by_split"] = {
            name: np.bincount(data.y[mask], minlength=k).tolist() for name, mask in by_split.items()
        }
    return summary
