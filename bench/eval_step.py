"""Benchmark one training step (forward, backward, SGD) of the networks the workflow trains.

Two modes, each case in its own subprocess (a crash or a peak-RSS number stays in its case):

``--compare`` (default): the DARTS evaluation network (genotype DARTS_V2, C=16, 5 layers,
batch 128, 1x16x16 regression input) side by side with the Tiny ResNet on the same batch:
median s/step, parameters, forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``;
one multiply-add = 2 FLOPs) and the achieved GFLOP/s of the step (counted as 3x the
forward FLOPs: forward, input gradients, weight gradients).  Equal GFLOP/s would mean the
eval network costs what its FLOPs predict.

``--sweep``: every model the workflow builds (search supernet, PC-DARTS supernet, DARTS
evaluation network with DARTS_V2 and KIRIGAMI_2019, ResNet-18, Tiny ResNet) on inputs
1x32x80, 1x16x40, 1x8x8 and 3x32x32, in the default layout and in channels_last: the data
behind ``workflow_lib.engine.device.channels_last_policy``.

``--profile NAME``: the top ops (torch.profiler) of one model's step.

Examples:
  python bench/eval_step.py --threads 2
  python bench/eval_step.py --sweep --threads 2 --steps 3 --batch 32
  python bench/eval_step.py --sweep --models tiny_resnet resnet18 --inputs 1x32x80
  python bench/eval_step.py --profile darts_v2 --input 1x16x16 --batch 128
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import harness
from harness import time_steps

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("search", "pc_search", "darts_v2", "kirigami_2019", "resnet18", "tiny_resnet")
INPUTS = ("1x32x80", "1x16x40", "1x8x8", "3x32x32")


def build(name: str, in_ch: int, out_dim: int, C: int, layers: int):
    from workflow_lib.darts import build_eval_network, build_search_network
    from workflow_lib.darts.genotypes import GENOTYPES
    from workflow_lib.darts.pc_darts import build_pc_search_network
    from workflow_lib.models.resnet import resnet18, tiny_resnet
    if name == "search":
        return build_search_network(in_ch, out_dim, C=C, layers=layers)
    if name == "pc_search":
        return build_pc_search_network(in_ch, out_dim, C=C, layers=layers)
    if name in ("darts_v2", "kirigami_2019"):
        return build_eval_network(GENOTYPES[name.upper()], in_ch, out_dim, C=C, layers=layers, auxiliary=False,
                                  drop_path_prob=0.0)
    return {"resnet18": resnet18, "tiny_resnet": tiny_resnet}[name](in_ch, out_dim)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def forward_flops(model, x) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train()
    return int(counter.get_total_flops())


def run_case(case: dict) -> dict:
    import torch
    import torch.nn.functional as F
    from workflow_lib.engine.device import set_threads, to_channels_last
    set_threads(case["threads"])
    torch.manual_seed(0)
    shape = tuple(int(s) for s in case["input"].split("x"))
    bs, cl = case["batch"], case["channels_last"]
    model = to_channels_last(build(case["model"], shape[0], 1, case["C"], case["layers"]), cl)
    x = to_channels_last(torch.randn(bs, *shape), cl)
    y = torch.randn(bs)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=3e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(_first(model(x)).flatten(), y)
        loss.backward()
        opt.step()

    flops = forward_flops(model, x[:1]) * bs if case.get("flops") else None
    if case.get("profile"):
        from torch.profiler import ProfilerActivity, profile
        step()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            step()
        table = prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=28, max_shapes_column_width=70)
        return {"table": table}
    times = time_steps(step, case["steps"], case["warmup"])
    med = statistics.median(times)
    out = {**case, "median_s": med, "times_s": [round(t, 4) for t in times],
           "parameters": sum(p.numel() for p in params), "threads": torch.get_num_threads()}
    if flops is not None:
        out["forward_gflops"] = flops / 1e9
        out["step_gflops_per_s"] = 3 * flops / 1e9 / med
    return out


def spawn(case: dict) -> dict:
    return harness.spawn(__file__, case, stderr_tail=400)  # a crash (segfault: exit -11) is a result too


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--profile", choices=MODELS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--inputs", nargs="+", default=list(INPUTS))
    p.add_argument("--input", default="1x16x16", help="compare/profile input shape")
    p.add_argument("--layouts", nargs="+", default=["default", "channels_last"],
                   choices=["default", "channels_last"])
    p.add_argument("--batch", type=int, default=None, help="default: 128 (compare), 32 (sweep)")
    p.add_argument("--C", type=int, default=16, help="DARTS networks' C (search nets: C/2)")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--channels-last", action="store_true", help="compare/profile in channels_last")
    p.add_argument("--json", action="store_true")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args._child:
        print(json.dumps(run_case(json.loads(args._child))))
        return 0

    base = dict(C=args.C, layers=args.layers, steps=args.steps, warmup=args.warmup, threads=args.threads)
    if args.profile:
        case = dict(base, model=args.profile, input=args.input, batch=args.batch or 128,
                    channels_last=args.channels_last, profile=True)
        print(spawn(case).get("table"))
        return 0
    if not args.sweep:
        for name in ("darts_v2", "tiny_resnet"):
            res = spawn(dict(base, model=name, input=args.input, batch=args.batch or 128,
                             channels_last=args.channels_last, flops=True))
            _print(res, args.json)
        return 0
    for name in args.models:
        for inp in args.inputs:
            row = {}
            for layout in args.layouts:
                C = args.C // 2 if "search" in name else args.C
                res = spawn(dict(base, model=name, input=inp, batch=args.batch or 32, C=C,
                                 channels_last=layout == "channels_last"))
                row[layout] = res
                if args.json:
                    print(json.dumps(res), flush=True)
            if not args.json:
                cells = []
                for layout, res in row.items():
                    cells.append(f"{layout} {res['median_s']:.4f} s" if "error" not in res
                                 else f"{layout} {res['error']}")
                ratio = ""
                if all("median_s" in r for r in row.values()) and len(row) == 2:
                    speedup = row["default"]["median_s"] / row["channels_last"]["median_s"]
                    ratio = f"  default/channels_last {speedup:.2f}x"
                print(f"{name:14s} {inp:8s} " + "  ".join(cells) + ratio, flush=True)
    return 0


def _print(res: dict, as_json: bool) -> None:
    if as_json or "error" in res:
        print(json.dumps(res), flush=True)
        return
    print(f"{res['model']:12s} input {res['input']} batch {res['batch']}: median {res['median_s']:.4f} s/step "
          f"({res['times_s']}), {res['parameters']:,} parameters, {res['forward_gflops']:.3f} GFLOP forward, "
          f"{res['step_gflops_per_s']:.2f} GFLOP/s in the step, threads {res['threads']}, "
          f"channels_last {res['channels_last']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
