"""Compare the design loop's pickers on the kirigami surrogate (lookup oracle: every candidate's target known).

Usage: .venv/bin/python bench/design_pickers.py [--seeds 0 1 2] [--generations 38] [--out PATH]

For each surrogate target (yield strain, toughness, yield stress), every picker runs from n_initial = 100
random designs with per_generation = 50 picks per generation, up to 100 + 38 x 50 = 2,000 simulations, on
all 29,791 valid patterns. Prints, per target and picker over the seeds: how many simulations each run
needed to reveal the true best design (">2000" when it did not), and how many of the true top-100 it had
revealed at 600 simulations. The surrogate's table is computed once (about 30 s) and cached in --cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_lib.config import load_config  # noqa: E402
from workflow_lib.design.config import DesignConfig  # noqa: E402
from workflow_lib.design.run import cpu_device, design_from_space  # noqa: E402
from workflow_lib.design.space import DesignSpace  # noqa: E402
from workflow_lib.kirigami import TARGET_NAMES, enumerate_valid_patterns  # noqa: E402

PICKERS = {
    "random": {"model": "random"},
    "rf_greedy": {"model": "random_forest"},
    "rf_ucb": {"model": "random_forest", "acquisition": "ucb", "kappa": 2.0},
    "rf_ei": {"model": "random_forest", "acquisition": "ei"},
    "rf_ei_diverse": {"model": "random_forest", "acquisition": "ei", "batch": "diverse", "min_distance": 0.1},
}
RECALL_AT = 600


def surrogate_table(cache: Path) -> np.ndarray:
    """(29,791, 3) float64 targets in enumeration order, rounded to float32 like the prepared data."""
    if cache.exists():
        return np.load(cache)
    from workflow_lib.kirigami.surrogate import simulate

    targets = simulate(enumerate_valid_patterns(), workers=2).targets.astype(np.float32).astype(np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, targets)
    return targets


def space_for(truth: np.ndarray, target: str) -> DesignSpace:
    patterns = enumerate_valid_patterns()
    return DesignSpace(kind="kirigami", source="surrogate", target=target,
                       features=patterns.reshape(len(patterns), -1).astype(np.float32), truth=truth,
                       given=np.full(len(patterns), np.nan), digest="bench", patterns=patterns, pad_rows=1)


def summary(document: dict) -> list[dict]:
    rows = []
    for run in document["runs"]:
        reach = next((r["simulations"] for r in run["records"] if r["found_top1"] >= 1), None)
        at = next(r for r in run["records"] if r["simulations"] >= RECALL_AT)
        rows.append({"picker": run["picker"], "seed": run["seed"], "simulations_to_best": reach,
                     "top100_at_600": at["found_top100"], "seconds": run["seconds"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--generations", type=int, default=38)
    parser.add_argument("--targets", nargs="+", default=list(TARGET_NAMES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kirigami_surrogate_targets.npy"))
    parser.add_argument("--out", type=Path, default=None, help="JSON with every run's numbers")
    args = parser.parse_args()
    design = {"enabled": True, "seeds": args.seeds, "pickers": PICKERS, "n_initial": 100, "per_generation": 50,
              "generations": args.generations, "top_k": [1, 100], "random_forest": {"n_estimators": 100}}
    cfg = DesignConfig.from_dict(load_config({"datasets": {"k": {"kind": "kirigami", "design": design}}})
                                 ["datasets"]["k"]["design"])
    table = surrogate_table(args.cache)
    results = {}
    for target in args.targets:
        t0 = time.perf_counter()
        truth = table[:, TARGET_NAMES.index(target)]
        document = design_from_space("kirigami", cfg, space_for(truth, target), args.seeds, args.threads,
                                     cpu_device(args.threads), Path("/tmp/design_pickers") / target)
        results[target] = summary(document)
        print(f"{target}: {time.perf_counter() - t0:.0f} s", flush=True)
    budget = 100 + args.generations * 50
    print(f"\n| target | picker | simulations to the true best (per seed) | true top-100 found at {RECALL_AT} "
          "(mean; per seed) |\n| --- | --- | --- | --- |")
    for target, rows in results.items():
        for picker in PICKERS:
            mine = [r for r in rows if r["picker"] == picker]
            reach = ", ".join(str(r["simulations_to_best"] or f">{budget}") for r in mine)
            recall = [r["top100_at_600"] for r in mine]
            print(f"| {target} | {picker} | {reach} | {np.mean(recall):.1f}; {', '.join(map(str, recall))} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
