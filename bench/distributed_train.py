"""Speed-up of one final training in 2 processes (device.processes: 2, gloo, CPU) against 1 process.

Runs ``python -m workflow_lib train`` as the workflow does (the command starts its processes with torchrun)
on a synthetic kirigami-shaped data set (1x32x80 images, regression) with the DARTS_V2 evaluation network,
and compares the training time (the epochs' wall time from metrics.json, evaluation included; start-up not
counted) of

- 1 process with T torch threads (the workflow's default: the job's threads),
- 2 processes with T // 2 threads each (the same cores),
- 1 process with T // 2 threads (what each of the 2 processes gets),

with the same global batch. The machine's load average is printed before and after: on a shared machine
the numbers move with it.

  python bench/distributed_train.py                     # T = 2, 3 epochs of 12 steps, batch 32
  python bench/distributed_train.py --threads 4 --epochs 2 --steps 20 --batch 64
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_data(path: Path, n: int, shape: tuple[int, int, int] = (1, 32, 80), classes: int = 0) -> None:
    """A synthetic prepared data set: binary images of ``shape``; a regression target, or ``classes`` classes.
    70% search-train, 20% search-val (70 + 20 = the training split), 10% test."""
    sys.path.insert(0, str(ROOT))
    from workflow_lib.datasets.prepared import PreparedData

    rng = np.random.default_rng(0)
    x = (rng.random((n, *shape)) > 0.5).astype(np.float32)
    signal = x[:, 0, :, : shape[2] // 2].mean(axis=(1, 2)) * 2.0 + x[:, 0, : shape[1] // 2].mean(axis=(1, 2))
    split = np.array([0, 0, 0, 0, 1, 2, 0, 0, 0, 1], dtype=np.int8)[np.arange(n) % 10]
    if classes:
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])).astype(np.int64)
        names = tuple(f"c{k}" for k in range(classes))
        PreparedData(x=x, y=y, task="classification", target="t", split=split, class_names=names).save(path)
    else:
        PreparedData(x=x, y=signal, task="regression", target="t", split=split).save(path)


def run_step(workdir: Path, name: str, step: str, device: dict, settings: dict, threads: int) -> dict:
    """``python -m workflow_lib <step>`` on workdir/data.npz; its metrics.json or history.json, and the wall time."""
    document = {"dataset": "bench", "kind": "npz", "stage": step, "device": device, "settings": settings}
    command = [sys.executable, "-m", "workflow_lib", step, "--settings", json.dumps(document),
               "--data", str(workdir / "data.npz"), "--out", str(workdir / name), "--checkpoint-dir",
               str(workdir / f"{name}-ckpt"), "--seed", "0", "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
    result = workdir / name / ("metrics.json" if step == "train" else "history.json")
    return {"wall": time.perf_counter() - started, **json.loads(result.read_text())}


def train(workdir: Path, name: str, processes: int, threads: int, args) -> dict:
    device = {"type": "cpu", "processes": processes, "threads": 0}
    settings = {"genotype": "DARTS_V2", "epochs": args.epochs, "batch_size": args.batch, "C": args.C,
                "layers": args.layers, "auxiliary": False, "max_steps_per_epoch": args.steps, "input_stride": [1, 2]}
    metrics = run_step(workdir, name, "train", device, settings, threads)
    return {"name": name, "processes": processes, "threads": threads, "wall": metrics["wall"],
            "train_seconds": metrics["budget"]["train_seconds"], "steps": metrics["budget"]["optimizer_steps"],
            "r2": metrics["test"]["r2"], "world_size": metrics["run_info"]["world_size"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="the job's threads T")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=12, help="steps per epoch")
    p.add_argument("--batch", type=int, default=32, help="the global batch")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--samples", type=int, default=1000)
    args = p.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_data(workdir / "data.npz", args.samples)
        runs = [train(workdir, "one", 1, args.threads, args),
                train(workdir, "two", 2, args.threads, args),
                train(workdir, "one-half", 1, max(1, args.threads // 2), args)]
    print(f"load average after:  {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"DARTS_V2 C={args.C} {args.layers} layers, input 1x32x40, global batch {args.batch}, "
          f"{args.epochs} epochs x {args.steps} steps")
    base = runs[0]["train_seconds"]
    for run in runs:
        print(f"  {run['processes']} process(es) x {max(1, run['threads'] // run['processes'])} thread(s): "
              f"training {run['train_seconds']:.1f} s ({run['steps'] / run['train_seconds']:.2f} steps/s), "
              f"speed-up {base / run['train_seconds']:.2f}x against 1 process x {args.threads} threads; "
              f"wall {run['wall']:.1f} s with start-up; test r2 {run['r2']:.3f}; world_size {run['world_size']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
