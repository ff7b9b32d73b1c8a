"""A roofline for the step benchmarks: the machine's measured peaks, and a step's FLOPs and bytes.

- ``machine_peaks(threads)``: fp32 and bf16 matmul GFLOP/s (square n x n, 2 n^3 FLOPs) on the
  configured threads, and the memory bandwidth of a large tensor copy (GB/s, bytes read + written).
- ``step_counts(step)``: FLOPs of one call (``torch.utils.flop_counter.FlopCounterMode``: convolutions,
  matmuls and their backward; one multiply-add = 2 FLOPs; elementwise ops count 0) and an estimate of
  the bytes it moves: every aten op reads each input and writes each output once (views count 0).
  That overestimates for data reused in cache and underestimates kernels that read their input twice
  (batch norm: statistics, then normalisation), so it is an estimate; torch.compile'd regions are
  counted as their eager ops would be.
- ``roofline(flops, bytes, seconds, peaks, dtype)``: achieved GFLOP/s and GB/s, the time each roof
  allows (FLOPs / peak, bytes / bandwidth), and how far the step is from the nearer one.
"""
from __future__ import annotations

import time
from typing import Callable, Dict

MATMUL_N = 2048
COPY_BYTES = 512 * 2**20  # well above any last-level cache


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_peaks(threads: int = 0, repeats: int = 5) -> Dict[str, float]:
    """Best-of-``repeats`` fp32 / bf16 matmul GFLOP/s and copy GB/s on ``threads`` threads."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    n = MATMUL_N
    out = {"threads": torch.get_num_threads()}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        out[f"{name}_matmul_gflops"] = 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), repeats) / 1e9
    src = torch.empty(COPY_BYTES // 4).normal_()
    dst = torch.empty_like(src)
    out["copy_gbs"] = 2 * COPY_BYTES / _best_seconds(lambda: dst.copy_(src), repeats) / 1e9
    return out


def step_counts(step: Callable[[], object]) -> Dict[str, float]:
    """FLOPs and estimated bytes moved by one call of ``step`` (run twice: once per counter)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import FlopCounterMode

    class ByteCounter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.bytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not func.is_view:
                for t in tree_flatten((args, kwargs, out))[0]:
                    if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                        self.bytes += t.numel() * t.element_size()
            return out

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    bytes_counter = ByteCounter()
    with bytes_counter:
        step()
    return {"flops": float(counter.get_total_flops()), "bytes": float(bytes_counter.bytes)}


def roofline(flops: float, moved: float, seconds: float, peaks: Dict[str, float], dtype: str) -> Dict[str, float]:
    """Achieved rates and the distance to the roofs (``dtype`` picks the compute peak: fp32 | bf16)."""
    peak = peaks[f"{dtype}_matmul_gflops"] * 1e9
    bandwidth = peaks["copy_gbs"] * 1e9
    compute_s, memory_s = flops / peak, moved / bandwidth
    return {"gflops": flops / seconds / 1e9, "gbs": moved / seconds / 1e9,
            "compute_roof_s": compute_s, "memory_roof_s": memory_s,
            "x_from_roof": seconds / max(compute_s, memory_s)}


def describe_peaks(peaks: Dict[str, float]) -> str:
    return (f"machine peaks on {peaks['threads']} threads: fp32 matmul {peaks['fp32_matmul_gflops']:.0f} GFLOP/s, "
            f"bf16 matmul {peaks['bf16_matmul_gflops']:.0f} GFLOP/s, copy {peaks['copy_gbs']:.1f} GB/s "
            f"(read + write)")


def describe_roofline(flops: float, moved: float, r: Dict[str, float]) -> str:
    return (f"{flops / 1e9:.1f} GFLOP, ~{moved / 1e9:.1f} GB moved: {r['gflops']:.1f} GFLOP/s, {r['gbs']:.1f} GB/s; "
            f"roofs {r['compute_roof_s']:.2f} s (compute) / {r['memory_roof_s']:.2f} s (bandwidth): "
            f"{r['x_from_roof']:.1f}x the nearer roof's time")
