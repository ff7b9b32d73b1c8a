"""A simulator for the tests of the command oracle: the example simulator, with failures on demand.

    python tests/design_flaky_simulator.py --designs D --out O --seen LOG [--fail-every N] [--transient M]

Appends one line per call to LOG ("attempt: id id ..."), so a test sees every design the simulator was sent.
``--fail-every N``: designs with id % N == 0 get no row (a permanent failure). ``--transient M``: on the first
attempt (WORKFLOW_DESIGN_ATTEMPT=1), a call holding a design with id % M == 0 writes nothing and exits 1.
"""

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "design"))
from simulator import simulate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--designs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seen", required=True)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--transient", type=int, default=0)
    args = parser.parse_args()
    with np.load(args.designs) as designs:
        x, ids = designs["x"], designs["id"]
    attempt = os.environ.get("WORKFLOW_DESIGN_ATTEMPT", "?")
    with open(args.seen, "a") as handle:
        handle.write(f"{attempt}: {' '.join(str(int(i)) for i in ids)}\n")
    if args.transient and attempt == "1" and any(int(i) % args.transient == 0 for i in ids):
        print("transient failure (first attempt)", file=sys.stderr)
        return 1
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "y"])
        for design_id, design in zip(ids, x):
            if args.fail_every and int(design_id) % args.fail_every == 0:
                continue
            writer.writerow([int(design_id), repr(simulate(design))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
