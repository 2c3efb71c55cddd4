"""Start-up time of the commands that should answer at once: ``lt-imbalance --help``, ``configs``,
the ``--help`` of ``export``, ``tune``, ``sweep`` and ``predict``, and the mistakes found before
any framework is imported (a missing config for ``fit``, a missing checkpoint for ``test`` and
``predict``; these exit with status 2).

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
    ["fit", "--config", "missing.yaml"],
    ["test", "--config", "configs/digits_lt.yaml", "--ckpt_path", "missing.ckpt"],
    ["predict", "--ckpt_path", "missing.ckpt", "--input", "images/"],
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
            done = subprocess.run([sys.executable, "-m", "lt_imbalance", *argv], capture_output=True)
            if done.returncode not in (0, 2):
                raise SystemExit(f"lt-imbalance {' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
            times.append(time.perf_counter() - start)
        print(f"| lt-imbalance {' '.join(argv)} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
