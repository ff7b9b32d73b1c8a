"""Download helper and file hashing shared by the dataset modules.

Every download goes to a temporary file beside the destination and is renamed into place only after it
finished (and, if asked, passed a validation callback), so an interrupted or bad download leaves nothing.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from workflow_lib.io import atomic_path, file_digest
from workflow_lib.errors import DataError, UserError  # noqa: F401 - DataError re-exported

DEFAULT_TIMEOUT = 60.0


class DataUnavailableError(UserError, RuntimeError):
    """The raw data is not on disk and cannot be downloaded (offline, download disabled, bad URL)."""


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def file_record(path: str | Path) -> dict[str, object]:
    """{"path", "sha256", "bytes"} of one file, as the fetch manifests list them."""
    path = Path(path)
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def download(
    url: str,
    dest: str | Path,
    timeout: float = DEFAULT_TIMEOUT,
    validate: Callable[[Path], None] | None = None,
    hint: str = "",
) -> Path:
    """Download `url` to `dest` atomically; raise DataUnavailableError (naming url, dest and `hint`) on failure.

    `validate(tmp_path)` runs on the finished temporary file before it is renamed into place; whatever it
    raises propagates and the partial file is removed.
    """
    dest = Path(dest)
    with atomic_path(dest, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:  # offline, refused, timeout, bad URL
            message = f"could not download {url} to {dest}: {exc}"
            if hint:
                message += f". {hint}"
            raise DataUnavailableError(message) from exc
        if validate is not None:
            validate(tmp)
    return dest


def manifest_file(manifest: dict, role: str) -> Path:
    """The path of file `role` of a fetch manifest, checked to exist and to be unchanged since the fetch."""
    try:
        record = manifest["files"][role]
    except (KeyError, TypeError):
        raise DataError(f"fetch manifest has no file {role!r} (files: {sorted(manifest.get('files', {}))}); rerun the fetch step") from None
    path = Path(record["path"])
    if not path.is_file():
        raise DataUnavailableError(f"{path} (listed in the fetch manifest as {role!r}) is gone; rerun the fetch step")
    expected = record.get("sha256")
    if expected and sha256_file(path) != expected:
        raise DataError(
            f"{path} changed since it was fetched (sha256 differs from the fetch manifest); rerun the fetch step"
        )
    return path
