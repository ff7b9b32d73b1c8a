"""Device selection, thread count, bf16 autocast and channels_last helpers.

Public API
----------
- ``DeviceUnavailableError``: CUDA asked for, none visible, no fallback allowed.
- ``resolve_device(cfg: DeviceConfig | None = None) -> torch.device``: CUDA when ``cfg.type == 'cuda'`` and a GPU
  is visible; otherwise raises, or (``allow_cpu_fallback``) warns and returns CPU. Also applies
  ``cfg.threads`` (0 = leave torch's default, i.e. the job's OMP/MKL threads).
- ``set_threads(n)``: torch intra-op threads (n <= 0: unchanged). Returns the count in effect.
- ``autocast(device, enabled) -> context manager``: bf16 autocast on CUDA when enabled, else a no-op.
- ``autocast_factory(device, enabled) -> callable | None``: what ``steps.train_epoch(autocast=...)`` takes.
- ``to_channels_last(obj, enabled)``: a module or 4-D tensor in channels_last memory format (no-op when off).
- ``device_label(device) -> str``: "cpu" or "cuda:0 (NVIDIA H100 ...)" for metrics.json.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, ContextManager

import torch
from workflow_lib.errors import UserError

log = logging.getLogger(__name__)

CUDA_MISSING_MESSAGE = (
    "device.type is 'cuda' but no CUDA GPU is visible; set device.allow_cpu_fallback: true or device.type: cpu"
)


class DeviceUnavailableError(UserError, RuntimeError):
    """The configuration asks for a device that is not present."""


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count when threads > 0; return the count in effect."""
    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def resolve_device(cfg: Any = None) -> torch.device:
    """The torch.device a DeviceConfig asks for (see module docstring)."""
    kind = getattr(cfg, "type", "cpu") if cfg is not None else "cpu"
    fallback = bool(getattr(cfg, "allow_cpu_fallback", False))
    set_threads(getattr(cfg, "threads", 0) if cfg is not None else 0)
    if kind == "cuda":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if not fallback:
            raise DeviceUnavailableError(CUDA_MISSING_MESSAGE)
        log.warning("device.type is 'cuda' but no CUDA GPU is visible; falling back to the CPU "
                    "(device.allow_cpu_fallback is true)")
        return torch.device("cpu")
    if kind != "cpu":
        raise ValueError(f"device.type must be 'cpu' or 'cuda', got {kind!r}")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool) -> ContextManager:
    """bf16 autocast on CUDA when enabled; a no-op context otherwise (bf16 is ignored on the CPU)."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_factory(device: torch.device, enabled: bool) -> Callable[[], ContextManager] | None:
    """A zero-argument callable returning a fresh autocast context, or None when autocast is off."""
    if enabled and torch.device(device).type == "cuda":
        return functools.partial(autocast, device, True)
    return None


def to_channels_last(obj: Any, enabled: bool) -> Any:
    """Module or 4-D tensor in channels_last format when enabled; unchanged otherwise."""
    if not enabled:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.contiguous(memory_format=torch.channels_last) if obj.dim() == 4 else obj
    return obj.to(memory_format=torch.channels_last)


def device_label(device: torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
