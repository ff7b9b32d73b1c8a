"""Our DARTS search step side by side with the public PyTorch port khanrc/pt.darts, in one run.

Config C of bench/search_step.py (1x32x80 inputs, batch 32, C=8, 5 layers, 4 nodes), FIRST ORDER,
regression: pt.darts builds a classifier with ``n_classes`` outputs; here it gets ``n_classes=1`` and
``nn.MSELoss`` on (N, 1) targets, as our network gets one output and MSE.

* pt.darts' step, built from its own modules (its files are imported from the checkout given on the
  command line, never edited or copied): ``SearchCNNController(1, 8, 1, 5, nn.MSELoss(),
  device_ids=[0])`` (one device id, so its forward never scatters and needs no GPU), in its own NCHW
  layout, fp32.  Alpha step: its ``architect.py`` has only the unrolled (second-order) step; its
  first-order step is the same code path with the virtual step skipped, i.e. a plain backward of the
  validation loss through its network (``model.loss(val_X, val_y).backward()``) and
  ``alpha_optim.step()`` with its Adam settings.  Weight step: exactly its ``search.py`` ``train()``:
  ``w_optim.zero_grad()``, ``model.criterion(model(trn_X), trn_y).backward()``,
  ``clip_grad_norm_(model.weights(), 5)``, ``w_optim.step()``.  Its ``Architect`` (which deep-copies the
  network for the virtual step) is not built, so its memory is not counted.
* ours: ``Architect`` first order + ``weight_step`` (bench/search_step.py's ``run_case``), for each
  layout and variant (kernel eager | fused | compiled, bf16 autocast, recomputation per cell).

Every case runs in a fresh process; ``--rounds`` alternates all cases round after round (A B C A B C
...), and the table reports per case the median over rounds of each process's median step time, and
the median peak memory: the growth of the peak resident set (``ru_maxrss``) over the resident size
just before the first step, the method of bench/search_step.py.  Ratios are ours / pt.darts.
``--profile CASE`` prints the top ops (torch.profiler) of one step of one case instead.

  git -C /work/.mirror/khanrc+pt.darts/repo archive HEAD | tar -x -C /tmp/ptdarts
  python bench/vs_ptdarts.py /tmp/ptdarts --threads 2 --rounds 3
  python bench/vs_ptdarts.py /tmp/ptdarts --cases ptdarts ours:channels_last:fused+bf16 --rounds 5
  python bench/vs_ptdarts.py /tmp/ptdarts --profile ours:channels_last:fused
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from pathlib import Path

import harness
import search_step
from harness import time_steps

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "C"
DEFAULT_CASES = ("ptdarts", "ours:channels_last:eager", "ours:channels_last:fused", "ours:channels_last:fused+bf16",
                 "ours:channels_last:fused+recompute", "ours:channels_last:fused+bf16+recompute")


def parse_case(text: str) -> dict:
    """``ptdarts[:LAYOUT]`` or ``ours:LAYOUT:VARIANT`` (VARIANT as in bench/search_step.py)."""
    parts = text.split(":")
    if parts[0] == "ptdarts" and len(parts) <= 2:
        layout = parts[1] if len(parts) == 2 else "default"
        if layout not in search_step.LAYOUTS:
            raise argparse.ArgumentTypeError(f"case {text!r}: layout must be one of {search_step.LAYOUTS}")
        return {"impl": "ptdarts", "layout": layout, "name": text}
    if parts[0] == "ours" and len(parts) == 3 and parts[1] in search_step.LAYOUTS:
        return {"impl": "ours", "layout": parts[1], "name": text, **search_step.parse_variant(parts[2])}
    raise argparse.ArgumentTypeError(f"case {text!r}: expected ptdarts[:LAYOUT] or ours:LAYOUT:VARIANT")


def ptdarts_step(case: dict):
    """(step function, model) of pt.darts' first-order search step on config C (module docstring)."""
    import torch
    import torch.nn as nn
    sys.path.insert(0, str(Path(case["ptdarts"]).resolve()))
    from models.search_cnn import SearchCNNController  # pt.darts' own module

    cfg = search_step.CONFIGS[CONFIG]
    cl = case["layout"] == "channels_last"
    torch.manual_seed(0)
    model = SearchCNNController(cfg["shape"][0], cfg["C"], cfg["out_dim"], cfg["layers"], nn.MSELoss(),
                                device_ids=[0])
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    bs = cfg["batch"]
    trn_X, val_X = (torch.randn(bs, *cfg["shape"]).contiguous(memory_format=fmt) for _ in range(2))
    trn_y, val_y = torch.randn(bs, 1), torch.randn(bs, 1)
    # its search.py / config.py settings
    w_optim = torch.optim.SGD(model.weights(), 0.025, momentum=0.9, weight_decay=3e-4)
    alpha_optim = torch.optim.Adam(model.alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step():
        alpha_optim.zero_grad()
        model.loss(val_X, val_y).backward()  # first order: the unrolled step without its virtual step
        alpha_optim.step()
        w_optim.zero_grad()
        loss = model.criterion(model(trn_X), trn_y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.weights(), 5.0)
        w_optim.step()

    return step


def run_ptdarts(case: dict) -> dict:
    import torch
    if case["threads"]:
        torch.set_num_threads(case["threads"])
    step = ptdarts_step(case)
    rss0 = search_step._rss_bytes()
    times = time_steps(step, case["steps"], case["warmup"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    return {**case, "median_s": statistics.median(times), "times_s": [round(t, 3) for t in times],
            "peak_mem_mb": round(peak / 2**20, 1), "threads": torch.get_num_threads()}


def ours_case(case: dict) -> dict:
    """The bench/search_step.py case of ``case``: config C, first order, DARTS."""
    return dict(config=CONFIG, order=1, method="darts", layout=case["layout"], reference=False, steps=case["steps"],
                warmup=case["warmup"], device="cpu", threads=case["threads"], k=4, kernel=case["kernel"],
                bf16=case["bf16"], recompute=case["recompute"])


def run_ours(case: dict) -> dict:
    res = search_step.run_case(ours_case(case))
    return {**case, **{k: res[k] for k in ("median_s", "times_s", "first_step_s", "peak_mem_mb", "threads")}}


def profile(case: dict, rows: int = 25) -> str:
    """torch.profiler's top ops (self CPU time) of one step after one warm-up step."""
    import torch
    from torch.profiler import ProfilerActivity
    if case["threads"]:
        torch.set_num_threads(case["threads"])
    step = ptdarts_step(case) if case["impl"] == "ptdarts" else search_step.make_step(ours_case(case))[0]
    step()
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=50)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ptdarts", nargs="?", help="path of a khanrc/pt.darts checkout (models/search_cnn.py inside)")
    p.add_argument("--cases", nargs="+", type=parse_case, default=[parse_case(c) for c in DEFAULT_CASES],
                   metavar="CASE", help="ptdarts[:LAYOUT] or ours:LAYOUT:VARIANT; default: " + " ".join(DEFAULT_CASES))
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (one fresh process per case per round)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per process (median)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (0: torch default)")
    p.add_argument("--profile", type=parse_case, metavar="CASE", help="print the top ops of one step of CASE")
    p.add_argument("--json", action="store_true", help="print one JSON object per process")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args._child:
        case = json.loads(args._child)
        if case.get("profile"):
            print(profile(case))
            print(json.dumps({"profiled": case["name"]}))
        else:
            print(json.dumps(run_ptdarts(case) if case["impl"] == "ptdarts" else run_ours(case)))
        return 0
    if not args.ptdarts or not (Path(args.ptdarts) / "models" / "search_cnn.py").is_file():
        p.error(f"{args.ptdarts}: no models/search_cnn.py (give the path of a khanrc/pt.darts checkout)")
    base = dict(ptdarts=str(Path(args.ptdarts).resolve()), steps=args.steps, warmup=args.warmup, threads=args.threads)
    if args.profile:
        import subprocess
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_child",
               json.dumps({**base, **args.profile, "profile": True})]
        return subprocess.run(cmd, cwd=ROOT).returncode
    results: dict[str, list[dict]] = {c["name"]: [] for c in args.cases}
    for r in range(args.rounds):
        for case in args.cases:
            res = harness.spawn(__file__, {**base, **case})
            results[case["name"]].append(res)
            if args.json:
                print(json.dumps(res), flush=True)
            else:
                text = res.get("error", "") + res.get("stderr", "")[-300:] if "error" in res else (
                    f"{res['median_s']:.3f} s/step {res['times_s']}, peak {res['peak_mem_mb']} MB")
                print(f"round {r + 1} {case['name']}: {text}", flush=True)
    print_table(args, results)
    return 0


def print_table(args, results: dict[str, list[dict]]) -> None:
    def summary(rows):
        ok = [r for r in rows if "median_s" in r]
        if not ok:
            return None
        return statistics.median(r["median_s"] for r in ok), statistics.median(r["peak_mem_mb"] for r in ok)

    ref = summary(results.get("ptdarts", []))
    print(f"\nconfig C first order, {args.threads} threads, median over {args.rounds} alternating rounds of the "
          f"per-process median of {args.steps} steps:")
    print("| case | s/step | peak MB | time vs pt.darts | memory vs pt.darts |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        s = summary(rows)
        if s is None:
            print(f"| {name} | failed | | | |")
            continue
        ratio = f"{s[0] / ref[0]:.2f}x | {s[1] / ref[1]:.2f}x" if ref else " | "
        print(f"| {name} | {s[0]:.2f} | {s[1]:,.0f} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
