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
        "(preprocessing, post-hoc adjustment and the fitted calibration inside), with <out>.json describing input, classes "
        "and the class prior the outputs assume.",
    )
    p.add_argument("--ckpt_path", required=True, help="a checkpoint written by training, or an ensemble file written by tune")
    p.add_argument("--out", required=True, help="the file to write (e.g. model.onnx or model.pt)")
    p.add_argument("--format", choices=["onnx", "torchscript"], default=None, help="default: from the suffix of --out (.onnx, .pt)")
    p.add_argument(
        "--prior", default=None, metavar="train|uniform|FILE",
        help="bake this class mix into the outputs: the training mix, uniform, or a file of 'class,share' lines "
        "(default: the model's own prior)",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing file (kept otherwise)")
    return p


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    from lt_imbalance.inference.export import export  # torch: only once the arguments are read

    description = export(args.ckpt_path, args.format, args.out, args.overwrite, args.prior)
    size = Path(args.out).stat().st_size / 2**20
    print(f"export: {args.out} ({size:.2f} MiB, {len(description['class_names'])} classes) and {args.out}.json", file=sys.stderr)
