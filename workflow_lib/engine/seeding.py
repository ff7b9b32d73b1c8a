"""Seeding and RNG-state capture (the loop checkpoints these so that a resumed run is bitwise identical).

- ``seed_everything(seed, deterministic=True)``: Python, NumPy, torch (CPU and CUDA) seeds; cuDNN deterministic
  and benchmark off when ``deterministic``. CPU kernels used here are deterministic already; we do not call
  ``torch.use_deterministic_algorithms`` (process-global, and it makes some CUDA ops raise).
- ``rng_state() -> dict`` / ``set_rng_state(dict)``: Python, NumPy, torch CPU and (when present) CUDA states,
  as plain data only (tuples and lists of ints, numbers, strings, tensors), so that a checkpoint holding them
  loads with ``torch.load(weights_only=True)``, which refuses anything that could run code (e.g. the NumPy
  arrays of ``np.random.get_state()``).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _numpy_state() -> dict[str, Any]:
    """NumPy's global MT19937 state with its key as a list of ints instead of an ndarray."""
    state = np.random.get_state(legacy=False)
    return {
        "bit_generator": str(state["bit_generator"]),
        "key": [int(v) for v in state["state"]["key"]],
        "pos": int(state["state"]["pos"]),
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    np.random.set_state({
        "bit_generator": state["bit_generator"],
        "state": {"key": np.asarray(state["key"], dtype=np.uint32), "pos": int(state["pos"])},
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    })


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),  # (version, tuple of 625 ints, None): plain data
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
