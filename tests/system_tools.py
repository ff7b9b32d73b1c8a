"""Install the system tools the browser and Slurm tests use (Debian's chromium, slurm-wlm and munge) before
the test processes start: with several pytest workers (scripts/test.sh runs two), two modules installing at
once would collide on apt's lock. Missing tools that cannot be installed (not root, no apt-get) are reported
here and the tests that need them skip with the same reason."""

from __future__ import annotations

import sys

import browser
import slurm_cluster


def main() -> int:
    try:
        print(f"[tests] chromium: {browser.ensure_chromium()}")
    except browser.BrowserUnavailable as why:
        print(f"[tests] chromium unavailable, the browser tests will skip: {why}")
    try:
        reason = slurm_cluster.ensure_installed()
    except Exception as error:  # noqa: BLE001 - the Slurm tests report the same failure themselves
        reason = f"installing failed: {error}"
    print(f"[tests] slurm: {'ready' if reason is None else reason + ' (see the Slurm tests)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
