"""Files that run a shell command when they are unpickled unsafely: the command creates a marker file.

``write_malicious(path, marker, form)`` plants one where the workflow loads a file from: ``form`` "pickle" is a
bare pickle (what a CIFAR-10 batch is), "torch" a ``torch.save`` archive (what a checkpoint is). Both name
``os.system`` in their ``__reduce__``; a safe loader refuses them before anything runs, so the marker never
appears (tests/test_untrusted_files.py shows, as a control, that a plain ``pickle.loads`` does run it).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path


class Payload:
    def __init__(self, marker: str | Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def malicious_bytes(marker: str | Path, form: str = "torch") -> bytes:
    document = {"format": 2, "epoch": 1, "payload": Payload(marker)}
    if form == "pickle":
        return pickle.dumps(document, protocol=2)
    import torch

    buffer = io.BytesIO()
    torch.save(document, buffer)
    return buffer.getvalue()


def write_malicious(path: str | Path, marker: str | Path, form: str = "torch") -> bytes:
    """Write the file (folders created) and return its bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = malicious_bytes(marker, form)
    path.write_bytes(data)
    return data
