"""Start-up time of the commands that should answer at once: ``lt-imbalance --help``, ``configs``
and the ``--help`` of ``export``, ``tune``, ``sweep`` and checkpoint ``predict``.

    python scripts/startup_times.py [--repeats 5]

Each command runs ``repeats`` times in a fresh interpreter (``python -m lt_imbalance``); the table
gives the median and the slowest wall time. For comparison it also times ``fit --help``, which
loads Lightning and torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["--help"],
    ["configs"],
    ["export", "--help"],
    ["tune", "--help"],
    ["sweep", "--help"],
    ["predict", "--help"],
    ["fit", "--help"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| command | median s | slowest s |\n|---|---:|---:|")
    for argv in COMMANDS:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lt_imbalance", *argv], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        print(f"| lt-imbalance {' '.join(argv)} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
