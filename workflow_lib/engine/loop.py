"""EpochLoop: run epochs, checkpoint everything after each one, resume after a kill, log rate and ETA.

Usage::

    loop = EpochLoop(ckpt_dir / "ckpt.pt",
                     {"model": model, "optimizer": optimizer, "batches": batches},
                     total_epochs=cfg.epochs, log=logger)
    history = loop.run(epoch_fn)          # epoch_fn(epoch: int) -> dict of scalars

- ``epoch`` passed to ``epoch_fn`` is the **0-based** epoch index (0 .. total_epochs-1), as in the DARTS code
  (e.g. ``drop_path_prob * epoch / epochs``, cosine lr at ``epoch``). The loop appends
  ``{"epoch": epoch + 1, **scalars}`` to ``loop.history`` and adds ``"seconds"`` (wall time of epoch_fn)
  unless epoch_fn returned it.
- components: ``name -> object`` with ``state_dict()`` / ``load_state_dict(state)`` (models, optimizers,
  schedulers, ``Batches``, ``Task``, ...) or a ``torch.Generator`` (saved with get_state/set_state).
- after every epoch the checkpoint ``{"format", "epoch", "total_epochs", "history", "components",
  "rng", "extra"}`` is written atomically (temp file + rename), with Python/NumPy/torch(/CUDA) RNG states.
  ``loop.extra`` (a dict) is saved too: put small run-level state there.
- on ``run`` the checkpoint is loaded if it exists: components, history, RNG states, ``extra`` are restored
  and training continues at the next epoch. With the same code and seed, a resumed run ends bitwise
  identical on the CPU to an uninterrupted one (only the wall-clock "seconds" values differ).
  A checkpoint with ``epoch == total_epochs`` runs nothing (the work is done; components hold the result).
- logs one line per epoch: ``epoch k/n  train_loss .. val_metric ..  X.X steps/s  ETA mm:ss`` where rate and
  ETA use the epochs run in this process (``steps`` from epoch_fn's dict; epochs/s when absent).
- ``stop_after`` (testing / wall-time budgets): return after this many epochs *in this process*.
- an early stop (e.g. a search's stop rule): ``epoch_fn`` puts a truthy, JSON-able value under ``"stop"`` in
  its dict (the reason). The loop removes it from the row, records ``loop.stopped = {"epoch": k, "reason":
  value}`` in the checkpoint and ends; a resumed stopped run trains no further epoch (like a finished one).
- ``fingerprint`` (optional str: a hash of everything the result depends on: settings, the prepared data's
  digest including its split, genotype, seed): a checkpoint written with another fingerprint is ignored with a
  warning (and overwritten), so changed settings or data never resume stale state. A checkpoint that cannot
  be read is moved aside (``.unusable``) with a warning naming it, and the run starts afresh.

Several processes (``engine.distributed``): every process runs the loop; only rank 0 reads the checkpoint
file and sends what it holds to the others (so each restores the same state, and a file moved aside is moved
once), only rank 0 writes it and logs epochs, and the checkpoint keeps every rank's RNG states
(``rng_ranks``: each restores its own). Each epoch's row is rank 0's in every process, so an early stop
ends every process after the same epoch.

Checkpoints never run code. They are read with ``torch.load(weights_only=True)``, whose unpickler builds
tensors and plain data (dicts, lists, tuples, numbers, strings, None) only and refuses every other object
before creating it. So everything saved is plain: components' state_dicts (models, optimizers, ``Batches``,
``Task``, ``Architect``: tensors and numbers), RNG states in plain form (``engine.seeding``), and
``history`` / ``extra`` with NumPy scalars and arrays turned into Python numbers and lists (``plain``).
A file the safe loader refuses (e.g. a pickle planted in shared scratch space whose ``__reduce__`` would
run a command, or a checkpoint of an older version that held NumPy arrays) is moved aside to
``<name>.unusable`` with a warning that names it and says it was refused as not a plain checkpoint, and
the step starts afresh: the file is kept for inspection, nothing in it ran, and no result depends on it.
Failing instead would gain nothing in safety and would stop every later run until someone removed the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import pickle
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from workflow_lib.engine import distributed
from workflow_lib.engine.seeding import rng_state, set_rng_state
from workflow_lib.io import torch_save_atomic

CHECKPOINT_FORMAT = 2  # 2: plain data only (loads with weights_only=True)
STOP_KEY = "stop"  # epoch_fn's way to end the run early (see the module docstring)
LOG_KEYS = ("train_loss", "train_metric", "val_loss", "val_metric", "test_loss", "test_metric", "lr")

_default_log = logging.getLogger("workflow_lib.engine.loop")


def _state_of(component: Any) -> Any:
    if isinstance(component, torch.Generator):
        return component.get_state()
    return component.state_dict()


def _load_into(component: Any, state: Any) -> None:
    if isinstance(component, torch.Generator):
        component.set_state(state)
    else:
        component.load_state_dict(state)


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python numbers and lists (what the safe loader reads)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain data, never code (see the module docstring)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def refusal(error: pickle.UnpicklingError) -> str:
    """The one line of torch's weights_only error that says what was refused (its advice to load unsafely is left out)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "global" in line.lower() or "unsupported" in line.lower()]
    return (named or lines[-1:] or ["not plain data"])[0]


def fingerprint_of(*parts: Any) -> str:
    """A short hash of a run's settings (JSON-able parts), stored in its checkpoint."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class EpochLoop:
    def __init__(
        self,
        checkpoint_path: str | Path | None,
        components: dict[str, Any],
        total_epochs: int,
        log: logging.Logger | Callable[[str], None] | None = None,
        history_key: str = "history",
        name: str = "",
        fingerprint: str | None = None,
    ):
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.components = dict(components)
        self.total_epochs = int(total_epochs)
        self.history_key = history_key
        self.name = name
        self.fingerprint = fingerprint
        self._log = log if log is not None else _default_log
        self.history: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.epoch = 0  # epochs completed
        self.resumed_from = 0
        self.stopped: dict[str, Any] | None = None  # {"epoch", "reason"} once epoch_fn asked to stop
        self._restored_state: dict[str, Any] | None = None  # what rank 0 sends the other processes

    # -- logging ----------------------------------------------------------------------------------
    def log(self, message: str, warning: bool = False) -> None:
        if isinstance(self._log, logging.Logger):
            (self._log.warning if warning else self._log.info)(message)
        else:
            self._log(message)

    # -- checkpoint -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The checkpoint (with several processes a collective: every rank's RNG states are gathered)."""
        world = distributed.current()
        ranks = {"rng_ranks": distributed.gather_objects(rng_state(), world)} if world.distributed else {}
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            self.history_key: plain(self.history),
            "components": {name: _state_of(c) for name, c in self.components.items()},
            "rng": rng_state(),
            "extra": plain(self.extra),
            "fingerprint": self.fingerprint,
            "stopped": plain(self.stopped),
            **ranks,
        }

    def save(self) -> None:
        if self.checkpoint_path is not None:
            torch_save_atomic(self.checkpoint_path, self.state())  # rank 0 writes (workflow_lib.io)

    def load(self) -> bool:
        """Restore from the checkpoint when it exists and belongs to this run; return whether it did
        (several processes: rank 0 reads it and the others restore what rank 0 restored).

        A checkpoint of other settings or data (another fingerprint) is ignored; one that cannot be read
        (truncated by a kill during a copy, another format, components that no longer fit) is moved aside
        to ``<name>.unusable`` with a warning that names it, and the run starts afresh: a resume either
        continues exactly this run or does not happen.
        """
        world = distributed.current()
        if not world.distributed:
            return self._load_file()
        restored = self._load_file() if world.main else None
        state = distributed.broadcast_object(self._restored_state if restored else None, world)
        self._restored_state = None
        if state is None:
            return False
        if not world.main:
            self._restore(state)
        ranks = state.get("rng_ranks") or []
        if len(ranks) == world.size:
            set_rng_state(ranks[world.rank])
        return True

    def _load_file(self) -> bool:
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        try:
            state = load_checkpoint(path)
            problem = self._mismatch(state)
        except pickle.UnpicklingError as error:  # the safe loader refused an object: nothing was run
            problem = (f"refused as unsafe: not a plain checkpoint (the safe loader, torch.load weights_only=True, "
                       f"refused it: {refusal(error)}); nothing in it ran; check who wrote it")
            state = None
        except Exception as error:  # noqa: BLE001 - any unreadable checkpoint means: start afresh
            problem = f"unreadable ({type(error).__name__}: {error})"
            state = None
        if problem == "other run":
            self.log(f"WARNING {path} was written for other settings or data (fingerprint "
                     f"{state.get('fingerprint')} != {self.fingerprint}); starting afresh", warning=True)
            return False
        if problem is None:
            fresh = {name: copy.deepcopy(_state_of(c)) for name, c in self.components.items()}
            try:
                self._restore(state)
                self._restored_state = state
                return True
            except Exception as error:  # noqa: BLE001 - e.g. a model whose shapes changed with the code
                problem = f"does not fit this run ({type(error).__name__}: {error})"
                for name, component in self.components.items():  # undo a partial load: a fresh start is fresh
                    _load_into(component, fresh[name])
                self.history, self.extra, self.epoch, self.resumed_from, self.stopped = [], {}, 0, 0, None
        aside = path.with_name(path.name + ".unusable")
        path.replace(aside)
        self.log(f"WARNING checkpoint {path} is {problem}; moved it to {aside} and starting afresh", warning=True)
        return False

    def _mismatch(self, state: Any) -> str | None:
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            return f"of an unknown format ({state.get('format') if isinstance(state, dict) else type(state).__name__})"
        if self.fingerprint is not None and state.get("fingerprint") != self.fingerprint:
            return "other run"
        missing = sorted(set(self.components) - set(state["components"]))
        if missing:
            return f"missing component(s) {missing}"
        if state["epoch"] > self.total_epochs:
            return f"at epoch {state['epoch']} of a run with only {self.total_epochs} epochs"
        return None

    def _restore(self, state: dict[str, Any]) -> None:
        for name, component in self.components.items():
            _load_into(component, state["components"][name])
        self.history = list(state[self.history_key])
        self.extra = dict(state.get("extra", {}))
        self.epoch = int(state["epoch"])
        self.stopped = state.get("stopped")
        set_rng_state(state["rng"])
        self.resumed_from = self.epoch

    # -- run --------------------------------------------------------------------------------------
    def run(self, epoch_fn: Callable[[int], dict[str, Any]], stop_after: int | None = None) -> list[dict[str, Any]]:
        if self.load():
            self.log(f"{self.name + ': ' if self.name else ''}resumed from {self.checkpoint_path} "
                     f"at epoch {self.epoch}/{self.total_epochs}"
                     + (" (stopped early there: nothing left to run)" if self.stopped is not None else ""))
        started = time.perf_counter()
        steps_done = 0
        epochs_done = 0
        while self.epoch < self.total_epochs and self.stopped is None:
            if stop_after is not None and epochs_done >= stop_after:
                break
            t0 = time.perf_counter()
            scalars = distributed.broadcast_object(dict(epoch_fn(self.epoch)))  # rank 0's row everywhere
            elapsed = time.perf_counter() - t0
            stop = scalars.pop(STOP_KEY, None)
            scalars.setdefault("seconds", elapsed)
            row = {"epoch": self.epoch + 1, **scalars}
            self.history.append(row)
            self.epoch += 1
            epochs_done += 1
            steps_done += int(scalars.get("steps", 0) or 0)
            if stop:
                self.stopped = {"epoch": self.epoch, "reason": stop}
            self.save()
            self._log_epoch(row, started, epochs_done, steps_done)
            if self.stopped is not None:
                self.log(f"{self.name + ': ' if self.name else ''}stopped early after epoch "
                         f"{self.epoch}/{self.total_epochs}")
        return self.history

    def _log_epoch(self, row: dict[str, Any], started: float, epochs_done: int, steps_done: int) -> None:
        wall = max(time.perf_counter() - started, 1e-9)
        remaining = (self.total_epochs - self.epoch) * wall / epochs_done
        if steps_done and steps_done >= wall:
            rate = f"{steps_done / wall:.1f} steps/s"
        elif steps_done:
            rate = f"{wall / steps_done:.2f} s/step"
        else:
            rate = f"{epochs_done / wall:.2f} epochs/s"
        parts = [f"epoch {self.epoch}/{self.total_epochs}"]
        parts += [f"{key} {_fmt(row[key])}" for key in LOG_KEYS if key in row]
        parts += [rate, f"ETA {format_duration(remaining)}"]
        prefix = f"{self.name}: " if self.name else ""
        self.log(prefix + "  ".join(parts))
