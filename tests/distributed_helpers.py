"""Run a function in several CPU processes joined by gloo (``workflow_lib.engine.distributed``), from a test.

``in_processes(fn, n, *args)`` spawns ``n`` processes (torch.multiprocessing, start method spawn), each joins
the process group exactly as a process started by torchrun would (``distributed.init``), runs
``fn(rank, *args)`` and hands back its return value; the list of values comes back in rank order, or the
first process's error is raised with its traceback.
"""

from __future__ import annotations

import socket
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.multiprocessing as mp

NDARRAY = "__ndarray__"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _plain(obj: Any) -> Any:
    """``obj`` as data torch's safe loader reads (NumPy arrays as tagged tensors, NumPy scalars as numbers)."""
    if isinstance(obj, np.ndarray):
        return {NDARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {key: _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(value) for value in obj)
    return obj


def _unplain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return obj[NDARRAY].numpy() if set(obj) == {NDARRAY} else {k: _unplain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unplain(value) for value in obj)
    return obj


def _run(rank: int, n: int, port: int, out: str, fn: Callable, args: tuple) -> None:
    from workflow_lib.engine import distributed

    torch.set_num_threads(1)
    try:
        distributed.init(distributed.Rendezvous(rank, n, rank, n, "127.0.0.1", port, "test"), "cpu", n)
        result: Any = ("ok", fn(rank, *args))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        result = ("error", f"process {rank}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
    finally:
        distributed.shutdown()
    torch.save(_plain(result), Path(out, f"rank{rank}.pt"))


def in_processes(fn: Callable, n: int, *args: Any) -> list[Any]:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_run, args=(n, free_port(), out, fn, args), nprocs=n, join=True)
        results = [_unplain(torch.load(Path(out, f"rank{rank}.pt"), weights_only=True)) for rank in range(n)]
    errors = [value for status, value in results if status == "error"]
    if errors:
        raise AssertionError(errors[0])
    return [value for _, value in results]
