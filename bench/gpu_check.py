"""GPU check at paper scale (needs a CUDA device; about 5-8 minutes on one H100/H200).

1. Search steps (architect step + weight step) for configurations A (3x32x32, batch 64) and
   B (1x32x80, batch 24) of bench/search_step.py at the paper's size (C=16, 8 layers),
   first and second order, DARTS and PC-DARTS (K=4), for each layout and variant of
   ``--cases`` (``LAYOUT:KERNEL[+bf16][+recompute]``: default or channels_last layout; the
   mixed op's kernel eager, fused or compiled (torch.compile, whose first step includes
   compilation and is not timed); bf16 autocast (the finite-difference Hessian-vector product
   stays fp32: Architect disables autocast there); recomputation per cell).
2. One epoch of final training of the DARTS_V2 evaluation network at the paper's size
   (C=36, 20 layers, auxiliary head, drop path, batch 96, 50,000 random 3x32x32 images),
   fp32, plus a shorter run in bf16 + channels_last.

0. (first, on a machine with 2 or more GPUs; skipped with a message otherwise; 2-4 minutes)
   device.processes: the workflow's own command lines (``python -m workflow_lib train`` and
   ``search``) on synthetic CIFAR-shaped data, in 1 process and in one process per GPU (NCCL,
   SyncBatchNorm): the final training of DARTS_V2 (C=16, 8 layers, global batch 256) and a
   first-order DARTS search (C=16, 8 layers, global batch 128) with the Hessian eigenvalue
   (computed with plain BatchNorm in every process). Prints steps/s, the speed-up, and the
   first epoch's losses of both runs, which SyncBatchNorm makes agree to summation order.

Prints s/step, peak GPU memory (torch.cuda.max_memory_allocated) and the projected hours
of a full search (50 epochs over 25,000 search-train images) and a full training (600
epochs over 50,000 images).  Stops starting new cases after --budget seconds.

  python bench/gpu_check.py                 # everything (the multi-GPU case first)
  python bench/gpu_check.py --quick         # fewer steps, for a first look
  python bench/gpu_check.py --multi-gpu     # only the multi-GPU case
  python bench/gpu_check.py --list          # the cases, without running (works without a GPU)
  python bench/gpu_check.py --cases default:fused+bf16 default:fused+bf16+recompute --orders 1
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCH_EPOCHS, SEARCH_TRAIN = 50, 25_000
TRAIN_EPOCHS, TRAIN_IMAGES, TRAIN_BATCH = 600, 50_000, 96
# layout:variant, most informative first (the budget drops the last ones)
DEFAULT_CASES = ("default:eager", "default:eager+bf16", "default:fused", "default:fused+bf16",
                 "channels_last:fused+bf16", "default:fused+bf16+recompute", "default:compiled+bf16")


def parse_case(text: str) -> dict:
    """``LAYOUT:KERNEL[+bf16][+recompute]`` -> {"layout", "kernel", "bf16", "recompute"}."""
    sys.path.insert(0, str(ROOT / "bench"))
    import search_step as S
    layout, _, variant = text.partition(":")
    if layout not in S.LAYOUTS or not variant:
        raise argparse.ArgumentTypeError(f"case {text!r}: expected LAYOUT:KERNEL[+bf16][+recompute], "
                                         f"LAYOUT in {S.LAYOUTS}")
    return {"layout": layout, **S.parse_variant(variant)}


def case_name(case: dict) -> str:
    return (f"config {case['config']} {case['method']:8s} order {case['order']} {case['layout']:13s} "
            f"{case['kernel']}{'+bf16' if case['bf16'] else ''}{'+recompute' if case['recompute'] else ''}")


def search_case_list(args) -> list[dict]:
    return [dict(config=config, order=order, method=method, reference=False, steps=args.steps, warmup=args.warmup,
                 device="cuda", threads=0, k=4, **variant)
            for config in args.configs for method in ("darts", "pc_darts") for order in args.orders
            for variant in args.cases]


def need_cuda():
    import torch
    if not torch.cuda.is_available():
        sys.exit("bench/gpu_check.py needs a CUDA GPU, and none is visible (torch.cuda.is_available() is "
                 f"False; torch {torch.__version__}, CUDA build {torch.version.cuda}). Run it on a GPU node.")
    return torch


def search_cases(args):
    import torch
    sys.path.insert(0, str(ROOT / "bench"))
    import search_step as S
    started = time.perf_counter()
    print(f"search steps on {torch.cuda.get_device_name(0)} (median of {args.steps} after {args.warmup} warm-up)")
    for case in search_case_list(args):
        name = case_name(case)
        if time.perf_counter() - started > args.budget:
            print(f"  budget of {args.budget} s spent: skipping {name}")
            continue
        batch = S.CONFIGS[case["config"]]["batch"]
        try:
            res = S.run_case(case)
        except torch.cuda.OutOfMemoryError as exc:
            print(f"  {name}: OOM ({exc})")
            continue
        finally:
            gc.collect()
            torch.cuda.empty_cache()
        hours = res["median_s"] * SEARCH_EPOCHS * (SEARCH_TRAIN // batch) / 3600
        first = f", first step {res['first_step_s']:.1f} s" if res.get("first_step_s") is not None else ""
        print(f"  {name}: {res['median_s']:.4f} s/step{first}, peak {res['peak_mem_mb'] / 1024:.2f} GiB, "
              f"full search ({SEARCH_EPOCHS} epochs x {SEARCH_TRAIN // batch} steps) {hours:.2f} h", flush=True)


def train_epoch(args, bf16: bool, channels_last: bool, max_steps: int | None):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(ROOT))
    from workflow_lib.darts import GENOTYPES, build_eval_network
    from workflow_lib.engine.device import to_channels_last
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = to_channels_last(build_eval_network(GENOTYPES["DARTS_V2"], 3, 10, C=36, layers=20, auxiliary=True,
                                                drop_path_prob=0.2).to(dev), channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(TRAIN_BATCH * 8, 3, 32, 32, device=dev)  # a pool of random images, cycled
    y = torch.randint(0, 10, (TRAIN_BATCH * 8,), device=dev)
    steps = TRAIN_IMAGES // TRAIN_BATCH if max_steps is None else max_steps
    model.train()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps):
        sl = slice((i % 8) * TRAIN_BATCH, (i % 8 + 1) * TRAIN_BATCH)
        xb = to_channels_last(x[sl], channels_last)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits, aux = model(xb)
            loss = F.cross_entropy(logits, y[sl]) + 0.4 * F.cross_entropy(aux, y[sl])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[3:] or times)
    full = med * TRAIN_EPOCHS * (TRAIN_IMAGES // TRAIN_BATCH) / 3600
    print(f"  DARTS_V2 C=36 20 layers {'bf16' if bf16 else 'fp32'} {'channels_last' if channels_last else 'default'}: "
          f"{steps} steps in {sum(times):.1f} s, median {med:.4f} s/step, peak "
          f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, full training ({TRAIN_EPOCHS} epochs) {full:.1f} h",
          flush=True)
    del model, opt
    gc.collect()
    torch.cuda.empty_cache()


def multi_gpu_case(args) -> None:
    """device.processes on every visible GPU against 1 process (see the module docstring, case 0)."""
    import tempfile

    import torch
    count = torch.cuda.device_count()
    if count < 2:
        print(f"multi-GPU case skipped: {count} GPU visible (device.processes needs 2 or more)")
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from distributed_train import run_step, write_data
    steps = 10 if args.quick else 30
    train = {"genotype": "DARTS_V2", "epochs": 2, "batch_size": 256, "C": 16, "layers": 8, "auxiliary": True,
             "max_steps_per_epoch": steps, "drop_path_prob": 0.0}
    search = {"epochs": 2, "batch_size": 128, "C": 16, "layers": 8, "order": "first", "max_steps_per_epoch": steps,
              "diagnostics": {"hessian_every": 1, "hessian_samples": 256, "hessian_max_iterations": 5}}
    print(f"multi-GPU: 1 process against {count} (one per GPU, NCCL, SyncBatchNorm), {steps} steps an epoch")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_data(workdir / "data.npz", 12_000, shape=(3, 32, 32), classes=10)
        for step, settings in (("train", train), ("search", search)):
            runs = {}
            for processes in (1, count):
                device = {"type": "cuda", "processes": processes}
                runs[processes] = run_step(workdir, f"{step}{processes}", step, device, settings, threads=4 * processes)
            seconds = {p: (r["budget"]["train_seconds"], r["budget"]["optimizer_steps"]) for p, r in runs.items()}
            first = {p: (r["epochs"][0] if step == "search" else None) for p, r in runs.items()}
            for processes, (secs, done) in seconds.items():
                world = (runs[processes].get("run_info") or {}).get("world_size", processes)
                speedup = (done / secs) / (seconds[1][1] / seconds[1][0])
                print(f"  {step} in {processes} process(es) (world_size {world}): {done / secs:.2f} steps/s, "
                      f"speed-up {speedup:.2f}x, wall {runs[processes]['wall']:.0f} s")
            if step == "train":
                print(f"    test loss: 1 process {runs[1]['test']['loss']:.5f}, {count} processes "
                      f"{runs[count]['test']['loss']:.5f}")
            else:
                print(f"    epoch 1 train loss: 1 process {first[1]['train_loss']:.5f}, {count} processes "
                      f"{first[count]['train_loss']:.5f}; Hessian eigenvalue {first[1]['hessian_eigenvalue']:.4g} / "
                      f"{first[count]['hessian_eigenvalue']:.4g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=300.0, help="seconds for the search cases")
    p.add_argument("--quick", action="store_true", help="3 timed steps, 100 training steps")
    p.add_argument("--multi-gpu", action="store_true", help="only the multi-GPU case (device.processes)")
    p.add_argument("--configs", nargs="+", default=["A", "B"], choices=["A", "B", "C"])
    p.add_argument("--orders", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    p.add_argument("--cases", nargs="+", type=parse_case, default=[parse_case(c) for c in DEFAULT_CASES],
                   metavar="LAYOUT:VARIANT", help="search cases; default: " + " ".join(DEFAULT_CASES))
    p.add_argument("--list", action="store_true", help="print the search cases and exit (no GPU needed)")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(case_name(c) for c in search_case_list(args)))
        return 0
    torch = need_cuda()
    if args.quick:
        args.steps, args.warmup = 3, 1
    t0 = time.perf_counter()
    multi_gpu_case(args)
    if args.multi_gpu:
        return 0
    torch.backends.cudnn.benchmark = True
    search_cases(args)
    print("final training (one epoch fp32; 200 steps bf16 + channels_last)")
    train_epoch(args, bf16=False, channels_last=False, max_steps=100 if args.quick else None)
    train_epoch(args, bf16=True, channels_last=True, max_steps=100 if args.quick else 200)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
