"""Rerun the offline default (config/config.yaml) from scratch and print each threshold beside its figure.

The thresholds are the ones the default run must meet on an idle 2-core machine without a GPU: the whole DAG
in at most 7 minutes (so that it stays under 10 on machines of this kind up to 1.4x slower); on the kirigami surrogate test R^2 >= 0.95 random forest, >= 0.90 the DARTS cell and
the Tiny ResNet, >= 0.85 random search, >= 0.5 ResNet-18, none below 0; on digits accuracy >= 0.95 for the
DARTS cell, Tiny ResNet, random forest and random search, >= 0.90 for ResNet-18. ``--repeat`` runs it a
second time in another folder and checks that the same seed gives the same numbers.

It also prints the critical path (bench/critical_path.py: the jobs that set the wall time) and, per dataset,
the NAS evidence the report leads with: whether the search was conclusive (a stop rule fired, or the derived
cell did not change over the last 30% of its epochs) and how the found cell ranked among random cells.

    python bench/default_run.py                 # one run in a temporary folder (about 7 minutes)
    python bench/default_run.py --repeat        # two runs, compared number for number
    python bench/default_run.py --workdir /tmp/default --keep
    python bench/default_run.py --compare-bf16  # fp32 and device.bf16: true, score beside score
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import critical_path

ROOT = Path(__file__).resolve().parents[1]
WALL_LIMIT_S = 420.0
THRESHOLDS = {  # (dataset, method) -> minimum test metric (r2 on kirigami, accuracy on digits)
    ("kirigami", "random_forest"): 0.95,
    ("kirigami", "darts"): 0.90,
    ("kirigami", "tiny_resnet"): 0.90,
    ("kirigami", "random_search"): 0.85,
    ("kirigami", "resnet18"): 0.50,
    ("digits", "darts"): 0.95,
    ("digits", "tiny_resnet"): 0.95,
    ("digits", "random_forest"): 0.95,
    ("digits", "random_search"): 0.95,
    ("digits", "resnet18"): 0.90,
}


def run_default(workdir: Path, cores: int, bf16: bool = False) -> float:
    """The README's run command on config/config.yaml in workdir (``bf16``: plus an overlay config with
    ``device.bf16: true``); returns the wall seconds."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    configs = [str(ROOT / "config" / "config.yaml")]
    if bf16:
        overlay = workdir / "bf16.yaml"
        overlay.write_text("device:\n  type: cpu\n  bf16: true\n")
        configs.append(str(overlay))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(workdir), "--profile", str(ROOT / "profiles" / "local"), "--cores", str(cores),
               "--configfile", *configs]
    started = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the default run failed (exit {result.returncode}); see {workdir / 'snakemake.log'}")
    return wall


def scores(workdir: Path) -> dict[tuple[str, str], float]:
    found = {}
    for dataset in ("kirigami", "digits"):
        summary = json.loads((workdir / "results" / dataset / "summary.json").read_text())
        metric = "r2" if dataset == "kirigami" else "accuracy"
        for method, entry in summary["methods"].items():
            found[(dataset, method)] = float(entry["test"][metric]["mean"])
    return found


def nas_evidence(workdir: Path) -> list[str]:
    """Per dataset and seed: the search's verdict and the found cell against random cells (from the results)."""
    lines = []
    for dataset in ("kirigami", "digits"):
        summary = json.loads((workdir / "results" / dataset / "summary.json").read_text())
        history_paths = sorted((workdir / "results" / dataset / "search").glob("seed*/history.json"))
        for path in history_paths:
            history = json.loads(path.read_text())
            lines.append(f"{dataset} {path.parent.name}: search conclusive: {history.get('conclusive')} "
                         f"({history.get('conclusive_reason')}); stop: {history.get('stop_reason')}")
        advantage = summary.get("search_advantage")
        if advantage:
            random = [s for s in advantage["random_scores"] if s is not None]
            lines.append(f"{dataset}: found cell {advantage['found_score']:.4f} beat {advantage['beaten']} of "
                         f"{advantage['n']} random cells (percentile {advantage['percentile']:.0f}; random "
                         f"{min(random):.4f} .. {max(random):.4f})")
    return lines


def report(wall: float, found: dict[tuple[str, str], float]) -> bool:
    rows = [("whole DAG, wall seconds", f"<= {WALL_LIMIT_S:.0f}", f"{wall:.0f}", wall <= WALL_LIMIT_S)]
    for (dataset, method), minimum in THRESHOLDS.items():
        value = found.get((dataset, method), float("nan"))
        rows.append((f"{dataset} {method}", f">= {minimum:.2f}", f"{value:.4f}", value >= minimum))
    for (dataset, method), value in sorted(found.items()):
        rows.append((f"{dataset} {method} (no method below 0)", ">= 0", f"{value:.4f}", value >= 0))
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'threshold':>10}  {'got':>8}  ok")
    for name, threshold, got, ok in rows:
        print(f"{name:<{width}}  {threshold:>10}  {got:>8}  {'yes' if ok else 'NO'}")
    return all(r[3] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="run here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", action="store_true", help="run twice and compare the numbers")
    parser.add_argument("--bf16", action="store_true", help="with device.bf16: true (bf16 autocast on the CPU)")
    parser.add_argument("--compare-bf16", action="store_true",
                        help="run fp32 and bf16 (device.bf16: true) and print the scores side by side")
    args = parser.parse_args()
    if args.compare_bf16:
        return compare_bf16(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="default_run_"))
    workdir.mkdir(parents=True, exist_ok=True)
    wall = run_default(workdir, args.cores, args.bf16)
    found = scores(workdir)
    ok = report(wall, found)
    print(critical_path.describe(critical_path.parse_log((workdir / "snakemake.log").read_text()), args.cores))
    print("\n".join(nas_evidence(workdir)))
    print(f"report: {workdir / 'results' / 'report.html'}")
    if args.repeat:
        second = Path(tempfile.mkdtemp(prefix="default_run_repeat_"))
        wall2 = run_default(second, args.cores)
        same = scores(second) == found
        print(f"repeat: wall {wall2:.0f} s; same seed, same numbers: {'yes' if same else 'NO'}")
        ok = ok and same
        shutil.rmtree(second, ignore_errors=True)
    if args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def compare_bf16(args) -> int:
    """The default run in fp32 and with device.bf16: true (same seed), the test scores side by side."""
    base = args.workdir or Path(tempfile.mkdtemp(prefix="default_run_bf16_"))
    runs = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        workdir = base / name
        workdir.mkdir(parents=True, exist_ok=True)
        runs[name] = (run_default(workdir, args.cores, bf16), scores(workdir))
    print(f"{'figure':<28}  {'fp32':>8}  {'bf16':>8}  {'bf16 - fp32':>11}")
    print(f"{'whole DAG, wall seconds':<28}  {runs['fp32'][0]:>8.0f}  {runs['bf16'][0]:>8.0f}")
    for key in sorted(runs["fp32"][1]):
        a, b = runs["fp32"][1][key], runs["bf16"][1].get(key, float("nan"))
        print(f"{key[0] + ' ' + key[1]:<28}  {a:>8.4f}  {b:>8.4f}  {b - a:>+11.4f}")
    if args.workdir is None and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
