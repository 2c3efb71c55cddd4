"""``lt-imbalance predict`` from a checkpoint alone (``--input``): the command line of
:func:`lt_imbalance.inference.predict.predict`. Only argparse is imported until the arguments are
read, so ``--help`` is immediate.

``lt-imbalance predict --config CFG`` (a data config, no ``--input``) is LightningCLI's ``predict``
instead (:mod:`lt_imbalance.commands.lightning_cli`); :func:`from_checkpoint` tells them apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lt_imbalance.errors import FileInTheWay

LIGHTNING_FLAGS = ("--config", "-c", "--data", "--model", "--print_config")

EPILOG = """predictions on a data config's predict split instead (LightningCLI):
  lt-imbalance predict --config CFG --ckpt_path CKPT     (its options: lt-imbalance predict --config CFG --help)"""


def from_checkpoint(argv: list[str]) -> bool:
    """``predict`` with ``--input``, or without a config: from a checkpoint alone (else LightningCLI's ``predict``)."""
    named = {a.split("=", 1)[0] for a in argv}
    return "--input" in named or not named & set(LIGHTNING_FLAGS)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lt-imbalance predict",
        description="Class probabilities for images or table rows from a checkpoint alone, written to a CSV.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt_path", required=True, help="a checkpoint written by training (e.g. <run>/checkpoints/last.ckpt)")
    p.add_argument("--input", required=True, help="a folder of images, a text file of image paths, or a .csv / .parquet table")
    p.add_argument("--output", default="predictions.csv", help="the CSV to write (default: %(default)s)")
    p.add_argument("--top_k", type=int, default=3, help="classes per row with their probabilities (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=256, help="(default: %(default)s)")
    p.add_argument("--num_workers", type=int, default=0, help="loader processes decoding images (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu, ... (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (kept otherwise)")
    return p


def main(argv: list[str]) -> int:
    arguments = parser()
    args = arguments.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1:
        arguments.error("--top_k and --batch_size must be at least 1")
    if Path(args.output).exists() and not args.overwrite:
        raise FileInTheWay(f"'{args.output}' exists; choose another --output, or pass --overwrite to replace it")
    from lt_imbalance.inference.predict import predict  # torch and Lightning: only once the arguments are read

    result = predict(args.ckpt_path, args.input, args.output, args.top_k, args.batch_size, args.num_workers, args.strict, args.accelerator)
    rate = result["written"] / max(result["seconds"], 1e-9)
    print(f"predict: {result['written']} predictions written to {result['output']} ({rate:,.0f} per second)", file=sys.stderr)
    if result["skipped"]:
        shown = ", ".join(result["skipped"][:5]) + (f" and {len(result['skipped']) - 5} more" if len(result["skipped"]) > 5 else "")
        print(f"predict: {len(result['skipped'])} unreadable inputs skipped: {shown} (--strict fails instead)", file=sys.stderr)
    if result["written"] == 0:
        print(f"predict: nothing could be predicted; {result['output']} holds only its header", file=sys.stderr)
        return 1
    return 0
