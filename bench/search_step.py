"""Benchmark one DARTS search step (architect step + weight step).

Prints, per configuration and order, the median seconds per step over ``--steps`` timed
steps (after ``--warmup`` untimed ones) and the peak memory of the step: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the growth of the peak resident set size
(``ru_maxrss``) over the resident size just before the first step.  Each case runs in
its own subprocess so peak-RSS numbers do not leak between cases.

Configurations:
  A  3x32x32 classification (10 classes), batch 64, C=16, 8 layers
  B  1x32x80 regression, batch 24, C=16, 8 layers
  C  1x32x80 regression, batch 32, C=8, 5 layers

Examples:
  python bench/search_step.py --configs C --orders 1 --steps 3 --threads 2
  python bench/search_step.py --configs A B C --orders 1 2 --device cuda
  python bench/search_step.py --configs C --reference   # naive variant for comparison
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "A": dict(shape=(3, 32, 32), out_dim=10, batch=64, C=16, layers=8, task="classification"),
    "B": dict(shape=(1, 32, 80), out_dim=1, batch=24, C=16, layers=8, task="regression"),
    "C": dict(shape=(1, 32, 80), out_dim=1, batch=32, C=8, layers=5, task="regression"),
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _patch_reference():
    """Naive variant (as common public ports do it): every op incl. ``none`` is computed,
    each op applies its own ReLU, first-order alpha grads via a full ``backward()``."""
    import torch
    from workflow_lib.darts import architect as A
    from workflow_lib.darts.search_cells import MixedOp

    def mixed_forward(self, x, weights, xr=None):
        return sum(w * op(x) for w, op in zip(weights, self._ops))

    MixedOp.forward = mixed_forward

    def first_order_grad(self, x_val, y_val):
        for p in self.model.parameters():
            p.grad = None
        self._loss(x_val, y_val).backward()
        return [a.grad.clone() for a in self.model.alphas()]

    A.Architect.first_order_grad = first_order_grad

    def weight_step(model, optimizer, x, y, loss_fn, grad_clip=5.0):
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.weights()), grad_clip)
        optimizer.step()
        return loss.detach(), out.detach()

    A.weight_step = weight_step


def run_case(name: str, order: int, args) -> dict:
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.reference:
        _patch_reference()
    from workflow_lib.darts import architect as A
    from workflow_lib.darts import build_search_network

    cfg = CONFIGS[name]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_search_network(cfg["shape"][0], cfg["out_dim"], C=cfg["C"], layers=cfg["layers"]).to(device)
    mf = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    bs = cfg["batch"]
    xt = torch.randn(bs, *cfg["shape"], device=device).contiguous(memory_format=mf)
    xv = torch.randn(bs, *cfg["shape"], device=device).contiguous(memory_format=mf)
    if cfg["task"] == "classification":
        yt = torch.randint(0, cfg["out_dim"], (bs,), device=device)
        yv = torch.randint(0, cfg["out_dim"], (bs,), device=device)
        loss_fn = A.classification_loss
    else:
        yt = torch.randn(bs, device=device)
        yv = torch.randn(bs, device=device)
        loss_fn = A.regression_loss
    opt = A.make_weight_optimizer(model)
    arch = A.Architect(model, loss_fn, second_order=(order == 2))

    def step():
        lr = opt.param_groups[0]["lr"]
        arch.step(xt, yt, xv, yv, xi=lr, weight_optimizer=opt)
        A.weight_step(model, opt, xt, yt, loss_fn, 5.0)

    cuda = device.type == "cuda"
    rss0 = _rss_bytes()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        mem_kind = "cuda_max_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
        mem_kind = "rss_peak_delta"
    return {"config": name, "order": order, "median_s": statistics.median(times),
            "times_s": [round(t, 3) for t in times], "peak_mem_mb": round(peak / 2**20, 1),
            "mem_kind": mem_kind, "threads": torch.get_num_threads(), "device": str(device),
            "channels_last": bool(args.channels_last), "reference": bool(args.reference),
            "torch": torch.__version__}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["A", "B", "C"], choices=sorted(CONFIGS))
    p.add_argument("--orders", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--reference", action="store_true",
                   help="naive mixed op (computes 'none', per-op ReLU), full backward: for comparison")
    p.add_argument("--json", action="store_true", help="print one JSON object per case")
    p.add_argument("--in-process", action="store_true", help="no subprocess per case")
    p.add_argument("--_child", nargs=2, metavar=("CONFIG", "ORDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    if args._child:
        print(json.dumps(run_case(args._child[0], int(args._child[1]), args)))
        return 0

    for name in args.configs:
        for order in args.orders:
            if args.in_process:
                res = run_case(name, order, args)
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", name, str(order),
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
                       "--threads", str(args.threads)]
                if args.channels_last:
                    cmd.append("--channels-last")
                if args.reference:
                    cmd.append("--reference")
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root).stdout
                res = json.loads(out.strip().splitlines()[-1])
            if args.json:
                print(json.dumps(res), flush=True)
            else:
                print(f"config {res['config']} order {res['order']}: median {res['median_s']:.3f} s/step "
                      f"(steps {res['times_s']}), peak mem {res['peak_mem_mb']} MB ({res['mem_kind']}), "
                      f"threads {res['threads']}, device {res['device']}, channels_last "
                      f"{res['channels_last']}{', REFERENCE' if res['reference'] else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
