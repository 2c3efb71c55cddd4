"""``lt-imbalance export``: the command line of :func:`lt_imbalance.inference.export.export`.
Only argparse is imported until the arguments are read, so ``--help`` is immediate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lt-imbalance export",
        description="Write a checkpoint as one ONNX or TorchScript file that maps raw inputs to class probabilities "
        "(preprocessing and post-hoc adjustment inside), with <out>.json describing input and classes.",
    )
    p.add_argument("--ckpt_path", required=True, help="a checkpoint written by training")
    p.add_argument("--out", required=True, help="the file to write (e.g. model.onnx or model.pt)")
    p.add_argument("--format", choices=["onnx", "torchscript"], default=None, help="default: from the suffix of --out (.onnx, .pt)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file (kept otherwise)")
    return p


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    from lt_imbalance.inference.export import export  # torch: only once the arguments are read

    description = export(args.ckpt_path, args.format, args.out, args.overwrite)
    size = Path(args.out).stat().st_size / 2**20
    print(f"export: {args.out} ({size:.2f} MiB, {len(description['class_names'])} classes) and {args.out}.json", file=sys.stderr)
