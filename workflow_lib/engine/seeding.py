"""Seeding and RNG-state capture (the loop checkpoints these so that a resumed run is bitwise identical).

- ``seed_everything(seed, deterministic=True)``: Python, NumPy, torch (CPU and CUDA) seeds; cuDNN deterministic
  and benchmark off when ``deterministic``. CPU kernels used here are deterministic already; we do not call
  ``torch.use_deterministic_algorithms`` (process-global, and it makes some CUDA ops raise).
- ``rng_state() -> dict`` / ``set_rng_state(dict)``: Python, NumPy, torch CPU and (when present) CUDA states.
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


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
