"""The graphene-kirigami dataset (Hanakata et al., PRL 121, 255304, 2018): MD data or the offline surrogate.

source.type "md": the published molecular-dynamics file 15grid_shuffled.dat (source.path, else downloaded
from source.url into the raw folder). source.type "surrogate": a lattice-spring stand-in generated
offline by workflow_lib.kirigami.surrogate (NOT molecular dynamics; for testing the workflow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.config.types import DataConfig
from workflow_lib.datasets.fetch import DataUnavailableError, download, file_record, manifest_file, sha256_file
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.io import write_json_atomic

DESCRIPTION = "graphene kirigami: 3x5 cut patterns -> yield strain / toughness / yield stress (regression)"
SURROGATE_FILE = "kirigami_surrogate.dat"
MD_FILE = "15grid_shuffled.dat"
MD_REFERENCE = "P. Z. Hanakata, E. D. Cubuk, D. K. Campbell, H. S. Park, Phys. Rev. Lett. 121, 255304 (2018)"
MD_DESCRIPTION = "Molecular-dynamics data of Hanakata et al. 2018 (graphene kirigami, 15grid_shuffled.dat)"
SURROGATE_DESCRIPTION = (
    "Lattice-spring SURROGATE, not MD: targets computed by workflow_lib.kirigami.surrogate, an offline "
    "stand-in for the molecular-dynamics data of Hanakata et al. 2018; numbers are not comparable to the paper"
)
SOURCE_TYPES = ("md", "surrogate")


def image_size(block: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the prepared images: the 30x80 tiling with pad_rows zero rows above and below."""
    from workflow_lib.kirigami.tiling import FINE_COLS, FINE_ROWS

    return (FINE_ROWS + 2 * int(block["pad_rows"]), FINE_COLS)


def _k():
    # Imported lazily so the registry loads even while workflow_lib.kirigami is being written.
    import workflow_lib.kirigami as kirigami_science

    return kirigami_science


def fetch(cfg: DataConfig, raw_dir: Path, threads: int = 1) -> dict[str, Any]:
    """Locate / download (md) or generate (surrogate, with `threads` workers) the raw 18-column file."""
    source = cfg.source
    if source.type == "surrogate":
        return _fetch_surrogate(cfg, Path(raw_dir), threads)
    if source.type == "md":
        return _fetch_md(cfg, Path(raw_dir))
    raise ValueError(f"kirigami: source.type must be one of {SOURCE_TYPES}, got {source.type!r}")


# ---------------------------------------------------------------------------------------------- surrogate
def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _expected_sidecar(n_patterns: int | None, seed: int) -> dict[str, Any]:
    """What the surrogate's provenance sidecar must say for a file to be reused (JSON-normalised)."""
    from workflow_lib.kirigami import surrogate
    from workflow_lib.kirigami.patterns import N_VALID

    expected: dict[str, Any] = {
        "source": "surrogate",
        "model": surrogate.MODEL,
        "parameters": surrogate.parameters(),
        "n_patterns": N_VALID if n_patterns is None else int(n_patterns),
    }
    if n_patterns is not None:  # the seed only picks the subset
        expected["seed"] = int(seed)
    return json.loads(json.dumps(expected))


def _surrogate_reusable(path: Path, sidecar_path: Path, n_patterns: int | None, seed: int) -> bool:
    if not (path.is_file() and sidecar_path.is_file()):
        return False
    sidecar = _read_json(sidecar_path)
    if sidecar is None or sidecar.get("sha256") != sha256_file(path):
        return False
    expected = _expected_sidecar(n_patterns, seed)
    return all(sidecar.get(key) == value for key, value in expected.items())


def _fetch_surrogate(cfg: DataConfig, raw_dir: Path, threads: int = 1) -> dict[str, Any]:
    source = cfg.source
    path = raw_dir / SURROGATE_FILE
    sidecar_path = Path(str(path) + ".provenance.json")
    request = {"n_patterns": source.n_patterns, "seed": source.seed}
    reused = _surrogate_reusable(path, sidecar_path, source.n_patterns, source.seed)
    if not reused:
        from workflow_lib.kirigami.surrogate import generate_raw_file

        raw_dir.mkdir(parents=True, exist_ok=True)
        generate_raw_file(path, n_patterns=source.n_patterns, seed=source.seed, workers=max(1, int(threads)))
    sidecar = _read_json(sidecar_path) or {}
    record = file_record(path)
    return {
        "kind": "kirigami",
        "files": {"raw": record},
        "reused": reused,
        "provenance": {
            "source": "surrogate",
            "description": SURROGATE_DESCRIPTION,
            "path": str(path),
            "sha256": record["sha256"],
            "url": None,
            "request": request,
            "surrogate": sidecar,
        },
    }


# ---------------------------------------------------------------------------------------------- md
def _md_hint(url: str, dest: Path) -> str:
    return (
        f"Download {url} yourself and put it at {dest}, or set the config key "
        f"datasets.<name>.source.path to a local copy of {MD_FILE} "
        f"(or use source.type: surrogate for the offline stand-in)"
    )


def _download_record(dest: Path) -> Path:
    return Path(str(dest) + ".download.json")


def _downloaded_from(dest: Path) -> str | None:
    record = _read_json(_download_record(dest))
    return None if record is None else record.get("url")


def _fetch_md(cfg: DataConfig, raw_dir: Path) -> dict[str, Any]:
    source = cfg.source
    url = source.url
    dest = raw_dir / MD_FILE
    origin: dict[str, Any] = {"url": url}
    if source.path:
        path = Path(source.path)
        if not path.is_file():
            raise DataUnavailableError(
                f"kirigami MD file {path} (config key datasets.<name>.source.path) does not exist; "
                f"download it from {url} or fix the path"
            )
        _k().read_raw(path)  # validation errors (file:line:col) propagate
        origin = {"url": None, "local_copy_of": url}
    elif dest.is_file() and _downloaded_from(dest) in (None, url):
        # a previous download of this URL, or a copy the user put there as the error message suggests
        _k().read_raw(dest)
        path = dest
        origin = _read_json(_download_record(dest)) or {"url": url, "note": f"found at {dest}, provided by the user"}
    elif source.download:
        def validate(tmp: Path) -> None:
            try:
                _k().read_raw(tmp)
            except _k().KirigamiFormatError as exc:
                raise DataUnavailableError(f"the file downloaded from {url} is not valid kirigami MD data: {exc}") from exc

        path = download(url, dest, validate=validate, hint=_md_hint(url, dest))
        origin = {"url": url, "sha256": sha256_file(path)}
        write_json_atomic(_download_record(dest), origin)
    else:
        raise DataUnavailableError(
            f"kirigami MD data from {url} is not at {dest} and source.download is false. {_md_hint(url, dest)}"
        )
    record = file_record(path)
    return {
        "kind": "kirigami",
        "files": {"raw": record},
        "provenance": {
            "source": "md",
            "description": MD_DESCRIPTION,
            "reference": MD_REFERENCE,
            "path": str(path),
            "sha256": record["sha256"],
            "url": origin.get("url"),
            "origin": origin,
        },
    }


# ---------------------------------------------------------------------------------------------- prepare
def prepare(cfg: DataConfig, manifest: dict[str, Any]) -> PreparedData:
    k = _k()
    path = manifest_file(manifest, "raw")
    raw = k.read_raw(path)  # KirigamiFormatError names file:line:col
    names = tuple(k.TARGET_NAMES)
    if cfg.target not in names:
        raise ValueError(f"kirigami: target {cfg.target!r} is not one of {names} (config key datasets.<name>.target)")
    patterns = np.asarray(raw.patterns, dtype=np.uint8)
    targets = np.asarray(raw.targets, dtype=np.float32)
    n = len(patterns)
    images = k.tile(patterns)
    if cfg.pad_rows:
        images = k.pad(images, cfg.pad_rows)
    x = np.asarray(images, dtype=np.float32)[:, None]
    provenance = dict(manifest.get("provenance", {}))
    provenance.update(
        {
            "sha256": sha256_file(path),
            "path": str(path),
            "n_samples": int(n),
            "target": cfg.target,
            "pad_rows": int(cfg.pad_rows),
            "image_shape": list(x.shape[1:]),
        }
    )
    return PreparedData(
        x=x,
        y=targets[:, names.index(cfg.target)],
        task="regression",
        target=cfg.target,
        targets=targets,
        target_names=names,
        coarse=patterns.reshape(n, 3, 5),
        provenance=provenance,
    )
