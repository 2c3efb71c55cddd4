"""The tuner's own cost per trial against a bare ``lt-imbalance fit`` of the same config (a script, not a test).

    python scripts/tune_overhead.py [--config configs/digits_lt_erm.yaml] [--trials 3] [--epochs 30]

Runs the bare fit once, then a study of ``--trials`` trials whose space fixes every value to the
config's own (so each trial trains exactly what the bare fit trains: same config, same seed) with
pruning off and no retraining, and reports the wall time per trial, the difference to the bare
fit (process start, config resolution, the reporter's storage writes, reading the result) and
the ratio. Both run one after the other on the same machine, with the same thread count.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/digits_lt_erm.yaml")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    common = ["--trainer.max_epochs", str(args.epochs)]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        bare = timed([sys.executable, "-m", "lt_imbalance", "fit", "--config", args.config, "--test_after_fit", "false",
                      "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(out / "bare"), *common], env)  # fmt: skip
        base = yaml.safe_load((ROOT / args.config).read_text())
        space = out / "space.yaml"  # one fixed value: every trial is the base config
        space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"fixed": base["data"]["init_args"].get("batch_size", 64)}}))
        study = timed([sys.executable, "-m", "lt_imbalance", "tune", "--config", args.config, "--space", str(space), "--n_trials", str(args.trials),
                       "--pruner", "none", "--seeds", "--out", str(out / "study"), *common], env)  # fmt: skip
    per_trial = study / args.trials
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())
    print(f"Machine: {cpu}, {len(os.sched_getaffinity(0))} cores, {args.threads} threads; {args.config}, {args.epochs} epochs")
    print("")
    print("| bare fit s | study s | trials | per trial s | tuner's own cost per trial s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {bare:.1f} | {study:.1f} | {args.trials} | {per_trial:.1f} | {per_trial - bare:.1f} | {per_trial / bare:.3f} |")


if __name__ == "__main__":
    main()
