"""Device selection, thread count, bf16 autocast and channels_last helpers.

Public API
----------
- ``DeviceUnavailableError``: CUDA asked for, none visible, no fallback allowed.
- ``resolve_device(cfg: DeviceConfig | None = None) -> torch.device``: CUDA when ``cfg.type == 'cuda'`` and a GPU
  is visible; otherwise raises, or (``allow_cpu_fallback``) warns and returns CPU. Also applies
  ``cfg.threads`` (0 = leave torch's default, i.e. the job's OMP/MKL threads).
- ``set_threads(n)``: torch intra-op threads (n <= 0: unchanged). Returns the count in effect.
- ``bf16_support(device) -> (bool, reason)``: whether the device computes bf16 natively (CPU: AMX or
  AVX-512 BF16; CUDA: ``torch.cuda.is_bf16_supported()``).
- ``bf16_active(device, setting) -> bool``: the ``device.bf16`` setting (true | false | "auto") resolved on this
  device (the one place of that rule; ``true`` without hardware support warns once and runs fp32).
- ``autocast(device, setting) -> context manager``: bf16 autocast when :func:`bf16_active`, else a no-op.
- ``autocast_factory(device, setting) -> callable | None``: what ``steps.train_epoch(autocast=...)`` takes.
- ``to_channels_last(obj, enabled)``: a module or 4-D tensor in channels_last memory format (no-op when off);
  modules get the strided-1x1-conv crash workaround (``guard_strided_pointwise_convs``) and the narrow
  batch-norm backward (``guard_narrow_batch_norms``).
- ``channels_last_policy(model_kind, input_shape, device, setting) -> (bool, reason)``: where the fast layout is
  used (the one place of that rule).
- ``device_label(device) -> str``: "cpu" or "cuda:0 (NVIDIA H100 ...)" for metrics.json.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, ContextManager, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
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


# -- bf16 autocast -----------------------------------------------------------------------------
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=None)
def _cpu_bf16_units() -> tuple[str, ...]:
    """The CPU's native bf16 units: torch's own probes (torch.cpu._is_amx_tile_supported,
    _is_avx512_bf16_supported: what oneDNN dispatches on), else the /proc/cpuinfo flags."""
    probes = (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"))
    try:
        return tuple(name for name, fn in probes if getattr(torch.cpu, fn)())
    except (AttributeError, RuntimeError):
        flags = _cpu_flags()
        return tuple(name for name, flag in zip(("AMX", "AVX-512 BF16"), CPU_BF16_FLAGS) if flag in flags)


def bf16_support(device: Any) -> Tuple[bool, str]:
    """Whether ``device`` runs bf16 natively, and what it has (or lacks)."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
        return ok, "CUDA bf16" if ok else "this GPU has no native bf16"
    units = _cpu_bf16_units()
    if units:
        return True, "CPU with " + " and ".join(units)
    return False, "this CPU has neither AMX nor AVX-512 BF16 (bf16 would be emulated, slower than fp32)"


_WARNED: set = set()


def bf16_active(device: Any, setting: Any) -> bool:
    """The ``device.bf16`` setting on this device: "auto" = on where :func:`bf16_support`; True = on, except
    on a device without native bf16, where it warns once and runs fp32 (emulated bf16 would be slower than
    fp32 and differ in results for no gain, and a config shared between machines should still run);
    False = off."""
    if setting is False or setting is None:
        return False
    if setting not in (True, "auto"):
        raise ValueError(f"device.bf16 must be true, false or 'auto', got {setting!r}")
    ok, why = bf16_support(device)
    if not ok and setting is True and why not in _WARNED:
        _WARNED.add(why)
        log.warning("device.bf16 is true but %s: running in fp32", why)
    return ok


def autocast(device: torch.device, setting: Any) -> ContextManager:
    """bf16 autocast on ``device`` when ``setting`` (device.bf16) is active there; a no-op context otherwise.

    Under autocast convolutions and linear layers run in bf16, losses (mse, cross-entropy) and softmax in fp32;
    BatchNorm keeps fp32 parameters and running statistics (its kernel accumulates in fp32) and reads and
    writes bf16 activations.  The architect's finite-difference Hessian-vector product turns autocast off."""
    if bf16_active(device, setting):
        kind = torch.device(device).type
        if ("autocast", kind) not in _WARNED:  # once per process: the run's log says it ran in bf16
            _WARNED.add(("autocast", kind))
            log.info("bf16 autocast on %s (device.bf16: %s; %s)", kind, setting, bf16_support(device)[1])
        return torch.autocast(device_type=kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_factory(device: torch.device, setting: Any) -> Callable[[], ContextManager] | None:
    """A zero-argument callable returning a fresh autocast context, or None when bf16 is not active."""
    if bf16_active(device, setting):
        return functools.partial(autocast, device, True)
    return None


def to_channels_last(obj: Any, enabled: bool) -> Any:
    """Module or 4-D tensor in channels_last format when enabled; unchanged otherwise.

    A module also gets :func:`guard_strided_pointwise_convs` (the CPU crash workaround) and
    :func:`guard_narrow_batch_norms` (a CPU slow path)."""
    if not enabled:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.contiguous(memory_format=torch.channels_last) if obj.dim() == 4 else obj
    return guard_narrow_batch_norms(guard_strided_pointwise_convs(obj.to(memory_format=torch.channels_last)))


# -- the channels_last crash (torch 2.14.1, oneDNN 3.12, CPU) ------------------------------
# Reproduction (bench and tests/test_channels_last.py): the weight gradient of a 1x1 conv
# with stride 2 on a channels_last input with few input channels corrupts the heap
# (segfault or "double free or corruption" in mkldnn_convolution_backward_weights), e.g.
#   x (32, 4, 32, 80) strides (10240, 1, 320, 4), weight (2, 4, 1, 1), stride 2, padding 0,
#   grad_output (32, 2, 16, 40): aten.convolution_backward(..., output_mask=[*, True, *]).
# On this AVX2 machine it fails for 2 <= C_in <= 7 and N >= 2 (not C_in = 1 or >= 8, not
# stride 1, not 3x3, not NCHW).  The ISA's channel block is 8 with AVX2 and 16 with AVX-512,
# which fits the earlier crashes on the reference machine (Tiny ResNet's 8 -> 16 stride-2
# downsample, the C=4 supernet's 8-channel FactorizedReduce; not C=8 or 16 supernets), so
# the guard covers C_in < 16.  The workaround picks another kernel: a 1x1 conv with stride
# s equals subsampling the input by s and a 1x1 conv with stride 1 (same parameters, same
# outputs); stride-1 1x1 backward is fine in channels_last.
POINTWISE_GUARD_MAX_CHANNELS = 16


class SubsampledPointwiseConv2d(nn.Conv2d):
    """A strided 1x1 ``nn.Conv2d`` computed as input[..., ::s, ::s] -> 1x1 conv, stride 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, self.dilation, self.groups)


def needs_pointwise_guard(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride != (1, 1)
            and conv.padding == (0, 0) and conv.in_channels < POINTWISE_GUARD_MAX_CHANNELS)


def guard_strided_pointwise_convs(model: nn.Module) -> nn.Module:
    """Switch every affected strided 1x1 conv of ``model`` (see above) to the subsampled form,
    in place (parameters, state_dict and outputs unchanged).  Returns ``model``."""
    for module in model.modules():
        if needs_pointwise_guard(module):
            module.__class__ = SubsampledPointwiseConv2d
    return model


# -- the narrow batch-norm backward (torch 2.14.1, CPU) ---------------------------------------
# native_batch_norm_backward on a channels_last input with fewer than 16 channels is 10-40x slower
# than on the same data in NCHW when it runs on 2 threads (32x8x32x80, training statistics: 4-6 ms
# against 0.17 ms; 0.65 ms on 1 thread; 16 or more channels: 0.5 ms): the search network's first
# cells at C=8 spent most of their backward there.  Guarded batch norms run their backward on NCHW
# copies (two copies in, one out: 0.55 ms), with the same kernel's numerics; the forward is unchanged.
NARROW_BATCH_NORM_CHANNELS = 16


class _NCHWBackwardBatchNorm(torch.autograd.Function):
    """Training-mode batch norm (batch statistics; running statistics updated in place by the
    native forward) whose backward runs on NCHW copies of a channels_last input."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum: float, eps: float):
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, weight, bias, running_mean, running_var, True,
                                                           momentum, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, weight, mean, invstd = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1],
                weight is not None and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            g.contiguous(), x.contiguous(), weight, None, None, mean, invstd, True, ctx.eps, mask)
        if gx is not None:
            gx = gx.contiguous(memory_format=torch.channels_last)
        return gx, gw, gb, None, None, None, None


class NarrowBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers, state_dict and outputs) whose training-mode
    backward on a channels_last CPU input runs in NCHW (see above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = (self.training and x.dim() == 4 and x.device.type == "cpu" and torch.is_grad_enabled()
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last))
        if not fast:
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:  # as nn.BatchNorm2d
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        running = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        return _NCHWBackwardBatchNorm.apply(x, self.weight, self.bias, *running, momentum, self.eps)


def guard_narrow_batch_norms(model: nn.Module) -> nn.Module:
    """Switch every ``nn.BatchNorm2d`` of ``model`` with fewer than 16 channels to
    :class:`NarrowBatchNorm2d`, in place.  Returns ``model``."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d and module.num_features < NARROW_BATCH_NORM_CHANNELS:
            module.__class__ = NarrowBatchNorm2d
    return model


# -- where channels_last is used ------------------------------------------------------------
def channels_last_policy(model_kind: str, input_shape: Sequence[int], device: Any,
                         setting: Any = "auto") -> Tuple[bool, str]:
    """Whether a model trains in channels_last, and why.  The one place of this rule.

    ``model_kind``: "search", "pc_search", "darts_eval", "resnet18" or "tiny_resnet";
    ``input_shape``: (C, H, W) of one sample; ``setting``: True / False force the layout,
    "auto" applies the measured rule below.  Train-step times, default / channels_last, from
    ``bench/eval_step.py --sweep --threads 2 --batch 32`` and ``bench/search_step.py``
    (torch 2.14.1, 2-core AMD EPYC, AVX2; > 1 means channels_last is faster):

    * DARTS search supernet: 1.3x (config C first order, 6.46 vs 4.95 s), 1.3x second order.
      Its time goes to depthwise convs, 3x3 pools and batch norm on few channels, whose NHWC
      kernels are 1.3-4x faster (max-pool 3x3 on 32x8x32x80: 4.3 vs 18.6 ms).
    * PC-DARTS supernet: 0.66x (2.88 vs 4.37 s): its ops read a channel slice of each node,
      which in NHWC is not dense and is copied before every op, and the channel shuffle
      moves every pixel.  Default layout.
    * DARTS evaluation networks (DARTS_V2, KIRIGAMI_2019; 1x32x80, 1x16x40, 1x8x8, 3x32x32):
      1.1-2.0x.  channels_last.
    * ResNet-18: 1.11x on 3x32x32, but 0.66-0.93x on 1-channel inputs (1x32x80, 1x16x40,
      1x8x8).  channels_last only for inputs with 3 or more channels.
    * Tiny ResNet: 0.90-1.10x (slower on 1x32x80 and 1x16x40): default layout.
    * CUDA: not measured here (bench/gpu_check.py measures both); off unless forced.

    Whatever the decision, :func:`to_channels_last` applies the crash workaround above.
    """
    if setting is True or setting is False:
        return bool(setting), "forced by device.channels_last"
    if setting != "auto":
        raise ValueError(f"device.channels_last must be true, false or 'auto', got {setting!r}")
    if torch.device(device).type != "cpu":
        return False, "auto: off on CUDA (not measured; bench/gpu_check.py compares both layouts)"
    if model_kind in ("search", "darts_eval"):
        return True, f"auto: {model_kind} trains 1.1-2x faster in channels_last on the CPU"
    if model_kind == "pc_search":
        return False, "auto: PC-DARTS's channel slices make channels_last slower on the CPU"
    if model_kind == "resnet18":
        on = int(input_shape[0]) >= 3
        return on, ("auto: ResNet-18 is faster in channels_last on 3-channel inputs" if on else
                    "auto: ResNet-18 is slower in channels_last on 1-channel inputs")
    if model_kind == "tiny_resnet":
        return False, "auto: the Tiny ResNet is not faster in channels_last on the CPU"
    return False, f"auto: no measurement for {model_kind!r}"


def device_label(device: torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
