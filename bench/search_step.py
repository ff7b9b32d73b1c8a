"""Benchmark one architecture-search step (architect step + weight step).

For each configuration x order x method (darts, pc_darts) x layout (default, channels_last)
it prints the median seconds per step over ``--steps`` timed steps (after ``--warmup``
untimed ones) and the peak memory of the step, and, measured in the same run, the same
step of a faithful naive reference (``--no-reference`` skips it): every op of every edge
incl. ``none`` computed, each op applying its own ReLU, the stock dilated-conv backward,
first-order alpha gradients and weight steps by a full ``backward()`` (as common public
ports do it).  ``ratio`` = reference median / case median (> 1: faster than the reference).
The reference runs per configuration, order and method, in the default layout.

Variants (``--variants``, each ``KERNEL[+bf16][+recompute]``): the mixed op's weighted-sum
kernel (``search.kernel``: eager, fused, compiled), bf16 autocast (``device.bf16``) and
recomputation per cell (``search.recompute``).  ``compiled`` pays torch.compile on its warm-up
steps: ``first_step_s`` is the first (warm-up) step's time, compile included.

Memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the growth of the peak resident
set size (``ru_maxrss``) over the resident size just before the first step.  Every case runs
in its own subprocess, so peak-RSS numbers (and a crash) stay in their case.

Roofline (``--no-roofline`` skips it): the machine's peaks (fp32 and bf16 matmul GFLOP/s on the
configured threads, copy GB/s) are printed once; beside each case its FLOPs (FlopCounterMode,
one step), an estimate of the bytes it moves, achieved GFLOP/s and GB/s, and its time over the
nearer roof's (bench/roofline.py).

Configurations:
  A  3x32x32 classification (10 classes), batch 64, C=16, 8 layers (the paper's search)
  B  1x32x80 regression, batch 24, C=16, 8 layers
  C  1x32x80 regression, batch 32, C=8, 5 layers

Examples:
  python bench/search_step.py --configs C --threads 2
  python bench/search_step.py --configs C --orders 2 --methods darts --layouts channels_last --steps 5
  python bench/search_step.py --configs C --orders 1 --methods darts --layouts channels_last \
      --variants eager fused fused+bf16 fused+recompute fused+bf16+recompute compiled --no-reference
  python bench/search_step.py --configs A B --device cuda --no-reference
  python bench/search_step.py --configs C --passes --methods darts --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
from pathlib import Path

import harness
import roofline
from harness import time_steps

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "A": dict(shape=(3, 32, 32), out_dim=10, batch=64, C=16, layers=8, task="classification"),
    "B": dict(shape=(1, 32, 80), out_dim=1, batch=24, C=16, layers=8, task="regression"),
    "C": dict(shape=(1, 32, 80), out_dim=1, batch=32, C=8, layers=5, task="regression"),
}
METHODS = ("darts", "pc_darts")
LAYOUTS = ("default", "channels_last")
KERNELS = ("eager", "fused", "compiled")
DEFAULT_VARIANTS = ("eager", "fused", "fused+bf16", "fused+recompute", "fused+bf16+recompute")


def parse_variant(text: str) -> dict:
    """``KERNEL[+bf16][+recompute]`` -> {"kernel", "bf16", "recompute"}."""
    kernel, *flags = text.split("+")
    if kernel not in KERNELS or not set(flags) <= {"bf16", "recompute"}:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected KERNEL[+bf16][+recompute], KERNEL in {KERNELS}")
    return {"kernel": kernel, "bf16": "bf16" in flags, "recompute": "recompute" in flags}


def variant_name(case: dict) -> str:
    return case.get("kernel", "eager") + ("+bf16" if case.get("bf16") else "") + (
        "+recompute" if case.get("recompute") else "")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def patch_reference() -> None:
    """Turn this process's DARTS code into the naive reference (see the module docstring)."""
    import torch
    import torch.nn as nn
    from workflow_lib.darts import architect as A
    from workflow_lib.darts import ops
    from workflow_lib.darts.search_cells import MixedOp

    MixedOp.forward = lambda self, x, weights, xr=None, live=None: sum(w * op(x) for w, op in zip(weights, self._ops))
    ops.DepthwiseConv2d.forward = nn.Conv2d.forward

    def first_order_grad(self, x_val, y_val):
        for p in self.model.parameters():
            p.grad = None
        self._loss(x_val, y_val).backward()
        return [a.grad.clone() for a in self.model.alphas()]

    def weight_step(model, optimizer, x, y, loss_fn, grad_clip=5.0):
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.weights()), grad_clip)
        optimizer.step()
        return loss.detach(), out.detach()

    A.Architect.first_order_grad = first_order_grad
    A.weight_step = weight_step


def build(method: str, cfg: dict, k: int, kernel: str = "eager", recompute: bool = False):
    from workflow_lib.darts import build_search_network
    from workflow_lib.darts.pc_darts import build_pc_search_network
    if method == "pc_darts":
        return build_pc_search_network(cfg["shape"][0], cfg["out_dim"], C=cfg["C"], layers=cfg["layers"], k=k,
                                       kernel=kernel, recompute=recompute)
    return build_search_network(cfg["shape"][0], cfg["out_dim"], C=cfg["C"], layers=cfg["layers"], kernel=kernel,
                                recompute=recompute)


def make_step(case: dict):
    """(step function, device) of one case: architect step + weight step on fixed random batches."""
    import torch
    if case["threads"]:
        torch.set_num_threads(case["threads"])
    if case["reference"]:
        patch_reference()
    else:  # what the workflow's steps do at start (workflow_lib.cli)
        from workflow_lib.engine.allocator import keep_freed_memory
        keep_freed_memory()
    if case.get("stock_dilated_conv"):  # A/B of the dilated depthwise-conv input-gradient kernel
        import torch.nn as nn
        from workflow_lib.darts import ops
        ops.DepthwiseConv2d.forward = nn.Conv2d.forward
    from workflow_lib.darts import architect as A
    from workflow_lib.engine.device import to_channels_last

    cfg = CONFIGS[case["config"]]
    device = torch.device(case["device"])
    cl = case["layout"] == "channels_last"
    torch.manual_seed(0)
    model = to_channels_last(build(case["method"], cfg, case["k"], case.get("kernel", "eager"),
                                   case.get("recompute", False)).to(device), cl)
    bs = cfg["batch"]
    xt = to_channels_last(torch.randn(bs, *cfg["shape"], device=device), cl)
    xv = to_channels_last(torch.randn(bs, *cfg["shape"], device=device), cl)
    if cfg["task"] == "classification":
        yt, yv = (torch.randint(0, cfg["out_dim"], (bs,), device=device) for _ in range(2))
        loss_fn = A.classification_loss
    else:
        yt, yv = (torch.randn(bs, device=device) for _ in range(2))
        loss_fn = A.regression_loss
    opt = A.make_weight_optimizer(model)
    arch = A.Architect(model, loss_fn, second_order=case["order"] == 2)
    amp = (torch.autocast(device.type, dtype=torch.bfloat16) if case.get("bf16")
           else torch.autocast(device.type, enabled=False))

    def step():
        with amp:
            arch.step(xt, yt, xv, yv, xi=opt.param_groups[0]["lr"], weight_optimizer=opt)
            A.weight_step(model, opt, xt, yt, loss_fn, 5.0)

    return step, device


def run_case(case: dict) -> dict:
    import torch
    step, device = make_step(case)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rss0 = _rss_bytes()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    first = time_steps(step, 1, 0, sync)[0] if case["warmup"] > 0 else None  # compile (if any) included
    times = time_steps(step, case["steps"], case["warmup"] - 1 if first is not None else 0, sync)
    if cuda:
        peak, mem_kind = torch.cuda.max_memory_allocated(), "cuda_max_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
        mem_kind = "rss_peak_delta"
    res = {**case, "median_s": statistics.median(times), "times_s": [round(t, 3) for t in times],
           "first_step_s": first, "peak_mem_mb": round(peak / 2**20, 1), "mem_kind": mem_kind,
           "threads": torch.get_num_threads(), "torch": torch.__version__}
    if case.get("peaks"):  # the roofline: counted on one more step, after time and memory were taken
        res.update(roofline.step_counts(step))
        res["roofline"] = roofline.roofline(res["flops"], res["bytes"], res["median_s"], case["peaks"],
                                            "bf16" if case.get("bf16") else "fp32")
    return res


def run_passes(case: dict) -> dict:
    """Median seconds of the passes a search step is made of (explains the order-2/order-1
    ratio): forward + backward to the weights, to the alphas only, to both; and the steps."""
    import torch
    from workflow_lib.darts import architect as A
    from workflow_lib.engine.device import to_channels_last
    if case["threads"]:
        torch.set_num_threads(case["threads"])
    cfg, cl = CONFIGS[case["config"]], case["layout"] == "channels_last"
    torch.manual_seed(0)
    model = to_channels_last(build(case["method"], cfg, case["k"]), cl)
    x = to_channels_last(torch.randn(cfg["batch"], *cfg["shape"]), cl)
    y = (torch.randint(0, cfg["out_dim"], (cfg["batch"],)) if cfg["task"] == "classification"
         else torch.randn(cfg["batch"]))
    loss_fn = A.classification_loss if cfg["task"] == "classification" else A.regression_loss
    weights, alphas = list(model.weights()), list(model.alphas())
    opt = A.make_weight_optimizer(model)
    archs = {o: A.Architect(model, loss_fn, second_order=o == 2) for o in (1, 2)}

    def step(order):
        archs[order].step(x, y, x, y, xi=0.025, weight_optimizer=opt)
        A.weight_step(model, opt, x, y, loss_fn)

    parts = {"fwd+bwd(weights)": lambda: torch.autograd.grad(loss_fn(model(x), y), weights),
             "fwd+bwd(alphas)": lambda: torch.autograd.grad(loss_fn(model(x), y), alphas),
             "fwd+bwd(both)": lambda: torch.autograd.grad(loss_fn(model(x), y), weights + alphas),
             "step order 1": lambda: step(1), "step order 2": lambda: step(2)}
    out = {}
    for name, fn in parts.items():
        out[name] = statistics.median(time_steps(fn, case["steps"], warmup=1))
    w, a, b = out["fwd+bwd(weights)"], out["fwd+bwd(alphas)"], out["fwd+bwd(both)"]
    out["predicted order 1 (a + w)"] = a + w
    out["predicted order 2 (3w + b + 2a)"] = 3 * w + b + 2 * a
    return {**case, "passes": out}


def spawn(case: dict) -> dict:
    return harness.spawn(__file__, case)


def describe(res: dict, ref: dict | None) -> str:
    head = (f"config {res['config']} order {res['order']} {res['method']:8s} {res['layout']:13s}"
            + (" REFERENCE" if res["reference"] else f" {variant_name(res):21s}")
            + (" stock-dilated-conv" if res.get("stock_dilated_conv") and not res["reference"] else ""))
    if "error" in res:
        return f"{head}: FAILED ({res['error']}) {res.get('stderr', '')[-200:]}"
    ratio = ""
    if ref is not None and "median_s" in ref and not res["reference"]:
        ratio = f", ratio vs reference {ref['median_s'] / res['median_s']:.2f}x"
    first = f", first step {res['first_step_s']:.1f} s" if res.get("first_step_s") is not None else ""
    text = (f"{head}: median {res['median_s']:.3f} s/step (steps {res['times_s']}{first}), peak mem "
            f"{res['peak_mem_mb']} MB ({res['mem_kind']}){ratio}, threads {res['threads']}, {res['device']}")
    if "roofline" in res:
        text += "\n    roofline: " + roofline.describe_roofline(res["flops"], res["bytes"], res["roofline"])
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["A", "B", "C"], choices=sorted(CONFIGS))
    p.add_argument("--orders", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    p.add_argument("--k", type=int, default=4, help="PC-DARTS channel proportion 1/K")
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", nargs="+", type=parse_variant, default=[parse_variant(v) for v in DEFAULT_VARIANTS],
                   metavar="KERNEL[+bf16][+recompute]",
                   help=f"kernel ({', '.join(KERNELS)}), bf16 autocast (the HVP stays fp32), recomputation per "
                        f"cell; default: {' '.join(DEFAULT_VARIANTS)}")
    p.add_argument("--no-roofline", action="store_true", help="skip the machine peaks and the per-case roofline")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--no-reference", action="store_true", help="skip the naive reference runs")
    p.add_argument("--reference-only", action="store_true", help="only the naive reference runs")
    p.add_argument("--stock-dilated-conv", action="store_true",
                   help="use oneDNN's dilated depthwise-conv backward (A/B of ops.DepthwiseConv2d)")
    p.add_argument("--passes", action="store_true",
                   help="time the passes a step is made of instead (why order 2 costs what it does)")
    p.add_argument("--json", action="store_true", help="print one JSON object per case")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args._child:
        case = json.loads(args._child)
        print(json.dumps(run_passes(case) if case.get("passes") else run_case(case)))
        return 0

    base = dict(steps=args.steps, warmup=args.warmup, device=args.device, threads=args.threads, k=args.k,
                stock_dilated_conv=args.stock_dilated_conv)
    if not args.passes and not args.no_roofline and args.device == "cpu":
        base["peaks"] = harness.spawn_call(roofline.__file__, "machine_peaks", args.threads)
        print(roofline.describe_peaks(base["peaks"]), flush=True)
    if args.passes:
        for name in args.configs:
            for method in args.methods:
                for layout in args.layouts:
                    res = spawn(dict(base, config=name, order=0, method=method, layout=layout, reference=False,
                                     passes=True))
                    text = ", ".join(f"{k} {v:.3f} s" for k, v in res.get("passes", {}).items())
                    print(json.dumps(res) if args.json else
                          f"config {name} {method} {layout}: {text or res.get('error')}", flush=True)
        return 0
    for name in args.configs:
        for order in args.orders:
            for method in args.methods:
                ref = None
                if not args.no_reference:
                    ref = spawn(dict(base, config=name, order=order, method=method, layout="default",
                                     reference=True))
                    print(json.dumps(ref) if args.json else describe(ref, None), flush=True)
                if args.reference_only:
                    continue
                for layout in args.layouts:
                    for variant in args.variants:
                        res = spawn(dict(base, config=name, order=order, method=method, layout=layout,
                                         reference=False, **variant))
                        if ref is not None and "median_s" in ref and "median_s" in res:
                            res["ratio_vs_reference"] = ref["median_s"] / res["median_s"]
                        print(json.dumps(res) if args.json else describe(res, ref), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
