"""One copy of a step per checkpoint folder: an exclusive ``fcntl.flock`` held for the life of the step.

After ``kill -9`` of Snakemake the running job's python keeps going (Snakemake does not reap it); after
``snakemake --unlock`` and a rerun, two copies of the same step would write the same checkpoint. So every
step that has a ``--checkpoint-dir`` runs inside ``step_lock(folder)`` (taken once, in ``workflow_lib.cli``):

- the lock is ``flock(LOCK_EX | LOCK_NB)`` on ``<folder>/step.lock``; after locking, the holder writes
  ``<pid> on <host>`` into the file, so a second copy fails at once with a ``StepLockedError`` (a
  ``UserError``: one line, exit status 2) naming the folder and the process that holds it;
- the kernel drops a flock when its process ends, however it ends, so a crash or a kill never leaves the
  folder locked; the lock file itself stays (removing it would let a third copy lock a fresh file while
  the second still holds the old one).

On a cluster the checkpoint folder is on a shared file system; Linux NFS clients turn flock into a
byte-range lock the server sees, so two nodes exclude each other too (Lustre needs its ``flock`` mount option).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from workflow_lib.errors import UserError

LOCK_NAME = "step.lock"


class StepLockedError(UserError, RuntimeError):
    """Another copy of the step holds this checkpoint folder."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return f"process {text}" if text else "a process that has not yet written its id"


@contextlib.contextmanager
def step_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if needed) until the block ends; yield the lock file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepLockedError(
                f"checkpoint folder {folder} is in use by another copy of this step ({_holder(path)}, lock file "
                f"{path}); two copies would overwrite each other's checkpoints. Wait for it to finish, or end it "
                "(e.g. a job left running after Snakemake was killed: kill that process id), then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the lock
