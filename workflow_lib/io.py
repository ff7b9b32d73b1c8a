"""Atomic writes: a temporary file in the target folder, then os.replace, so no half-written outputs.

In a training of several processes (``workflow_lib.engine.distributed``) only rank 0 writes: on the other
ranks every writer here returns at once (``set_writer``), so results, checkpoints and records are written once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


_WRITER = [True]  # False on ranks > 0 of a multi-process training


def set_writer(writes: bool) -> None:
    """Whether this process writes files (engine.distributed: rank 0 only)."""
    _WRITER[0] = bool(writes)


def writes_files() -> bool:
    return _WRITER[0]


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it into place, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_with(path: str | Path, writer: Callable[[Path], None], suffix: str = "") -> Path:
    if not writes_files():
        return Path(path)
    with atomic_path(path, suffix) as tmp:
        writer(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return _write_with(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, document: Any) -> Path:
    text = json.dumps(document, indent=2, sort_keys=False, default=json_default) + "\n"
    return write_text_atomic(path, text)


def savez_atomic(path: str | Path, **arrays: Any) -> Path:
    # np.savez appends .npz to names without it, so the temporary name must end in .npz.
    return _write_with(path, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")


def torch_save_atomic(path: str | Path, obj: Any) -> Path:
    """torch.save, atomically and byte-reproducibly.

    torch.save names the records inside its zip archive after the file it writes to, so saving straight
    to the temporary file put a random name into every .pt; saving to memory first gives identical bytes
    for identical objects.
    """
    import io

    import torch

    if not writes_files():
        return Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return _write_with(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def npz_array_shape(path: str | Path, key: str) -> tuple[int, ...] | None:
    """The shape of array ``key`` in an .npz file from its header alone (no data read); None when unreadable."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as handle:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = reader(handle)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    return tuple(int(s) for s in shape)


def read_json(path: str | Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


def json_default(value: Any) -> Any:
    """json.dumps default= for NumPy scalars and arrays and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def file_digest(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (data files can be large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
