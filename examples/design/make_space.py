"""Write the example design space: 2,000 random 8x8 two-material grids, 200 of them simulated before.

    python examples/design/make_space.py                 # -> examples/design/space.npz (y NaN where unknown)
    python examples/design/make_space.py --all-known     # -> space_known.npz: every y simulated (lookup oracle)
"""

import argparse
from pathlib import Path

import numpy as np

from simulator import simulate

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--known", type=int, default=200, help="designs simulated before (their y is given)")
    parser.add_argument("--all-known", action="store_true", help="simulate every design (a lookup benchmark)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fraction = rng.uniform(0.2, 0.8, size=(args.n, 1, 1, 1))  # designs from sparse to dense
    x = (rng.random((args.n, 1, 8, 8)) < fraction).astype(np.uint8)
    known = args.n if args.all_known else args.known
    y = np.full(args.n, np.nan)
    y[:known] = [simulate(design) for design in x[:known]]
    out = args.out or HERE / ("space_known.npz" if args.all_known else "space.npz")
    np.savez(out, x=x, y=y, target_name=np.array("conductance_per_conductor"))
    print(f"{out}: {args.n} designs, {known} with a known y")


if __name__ == "__main__":
    main()
