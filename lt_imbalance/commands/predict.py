"""``lt-imbalance predict``: from a checkpoint alone, the command line of
:func:`lt_imbalance.inference.predict.predict`. Only argparse is imported until the arguments are
read, so ``--help`` is immediate.

It is the one ``predict``: a data config (``--config``, ``--data``, ``--model``) is refused with the
checkpoint form to run instead, since a checkpoint already holds what prediction needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lt_imbalance.errors import BadValue, FileInTheWay

#: the options of a training config, which predict does not take
CONFIG_FLAGS = ("--config", "-c", "--data", "--model", "--trainer", "--print_config")

EPILOG = """the checkpoint holds the class names, input size, normalisation and calibration, so no config is needed;
to score a labelled test set of a data config instead: lt-imbalance test --config CFG --ckpt_path CKPT"""


def refuse_a_config(argv: list[str]) -> None:
    """A training config's options are refused, naming the checkpoint form."""
    named = sorted({a.split("=", 1)[0].split(".", 1)[0] for a in argv} & set(CONFIG_FLAGS))
    if named:
        raise BadValue(
            f"predict takes no {', '.join(named)}: it reads everything from the checkpoint. Run "
            "`lt-imbalance predict --ckpt_path CKPT --input IMAGES_OR_TABLE [--output predictions.csv]`; "
            "to score a data config's test set: `lt-imbalance test --config CFG --ckpt_path CKPT`"
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lt-imbalance predict",
        description="Class probabilities for images or table rows from a checkpoint alone, written to a CSV.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--ckpt_path", required=True,
        help="a checkpoint written by training (e.g. <run>/checkpoints/last.ckpt), or an ensemble file written by tune",
    )  # fmt: skip
    p.add_argument("--input", required=True, help="a folder of images, a text file of image paths, or a .csv / .parquet table")
    p.add_argument("--output", default="predictions.csv", help="the CSV to write (default: %(default)s)")
    p.add_argument("--top_k", type=int, default=3, help="classes per row with their probabilities (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=256, help="(default: %(default)s)")
    p.add_argument("--num_workers", type=int, default=0, help="loader processes decoding images (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu, ... (default: %(default)s)")
    p.add_argument(
        "--prior", default=None, metavar="train|uniform|FILE|estimate",
        help="re-weight the calibrated probabilities to this class mix: the training mix, uniform, a file of "
        "'class,share' lines, or the mix of the inputs estimated by EM (printed, and saved as <output>.prior.csv); "
        "default: the model's own",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (kept otherwise)")
    return p


def say_estimate(estimate: dict, class_names: list[str]) -> None:
    """The estimated class mix with its standard errors (the 30 largest shares), or why none is used."""
    if not estimate["used"]:
        print(
            f"predict: {estimate['inputs']} inputs are too few to estimate their class mix (at least {estimate['needed']}: "
            f"{estimate['per_class']} per class); the predictions keep the model's own prior",
            file=sys.stderr,
        )
        return
    prior, se = estimate["prior"].tolist(), estimate["se"].tolist()
    order = sorted(range(len(prior)), key=lambda c: -prior[c])
    lines = [
        f"predict: class mix of the {estimate['inputs']} inputs, estimated by EM ({estimate['iterations']} iterations; "
        f"standard error from {estimate['repeats']} bootstrap resamples; the posteriors kept in memory: {estimate['memory_mib']:.2f} MiB):"
    ]
    lines += [f"  {class_names[c]:<20} {100 * prior[c]:6.2f}% ± {100 * se[c]:.2f}" for c in order[:30]]
    if len(order) > 30:
        lines.append(f"  ... {len(order) - 30} more classes")
    lines.append(f"predict: all classes in {estimate['file']}; predictions written under this mix")
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str]) -> int:
    refuse_a_config(argv)
    arguments = parser()
    args = arguments.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1:
        arguments.error("--top_k and --batch_size must be at least 1")
    if args.num_workers < 0:
        arguments.error(f"--num_workers must be 0 (load in this process) or more, got {args.num_workers}")
    if Path(args.output).suffix.lower() != ".csv":
        raise BadValue(f"--output {args.output}: predict writes a CSV table; give a path ending in .csv")
    if Path(args.output).is_dir():
        raise BadValue(
            f"--output {args.output} is a folder; give a file path ending in .csv (e.g. {Path(args.output) / 'predictions.csv'})"
        )
    output = Path(args.output)
    for name, given in (("--input", args.input), ("--ckpt_path", args.ckpt_path)):
        if output.exists() and Path(given).is_file() and output.samefile(given):
            raise FileInTheWay(f"--output {args.output} is the {name} file; choose another --output (the input is never replaced)")
    if Path(args.output).exists() and not args.overwrite:
        raise FileInTheWay(f"'{args.output}' exists; choose another --output, or pass --overwrite to replace it")
    from lt_imbalance.inference.predict import predict  # torch and Lightning: only once the arguments are read

    result = predict(
        args.ckpt_path, args.input, args.output, args.top_k, args.batch_size, args.num_workers, args.strict, args.accelerator, args.prior,
        args.overwrite,
    )  # fmt: skip
    for note in ("size_note", "value_note"):
        if result.get(note):
            print(f"predict: warning: {result[note]}", file=sys.stderr)
    if "estimate" in result:
        say_estimate(result["estimate"], result["class_names"])
    if "ensemble" in result:
        weights = ", ".join(f"{w:.2f}" for w in result["ensemble"])
        print(f"predict: an ensemble of {len(result['ensemble'])} models (weights {weights})", file=sys.stderr)
    if result["deployed_for"] is not None and args.prior is None:
        print(
            f"predict: probabilities for the class prior '{result['deployed_for']}' the checkpoint deploys (--prior changes it)",
            file=sys.stderr,
        )
    rate = result["written"] / max(result["seconds"], 1e-9)
    print(f"predict: {result['written']} predictions written to {result['output']} ({rate:,.0f} per second)", file=sys.stderr)
    if result["skipped"]:
        shown = ", ".join(result["skipped"][:5]) + (f" and {len(result['skipped']) - 5} more" if len(result["skipped"]) > 5 else "")
        print(f"predict: {len(result['skipped'])} unreadable inputs skipped: {shown} (--strict fails instead)", file=sys.stderr)
    if result["written"] == 0:
        print(f"predict: nothing could be predicted, so no {result['output']} was written", file=sys.stderr)
        return 1
    return 0
