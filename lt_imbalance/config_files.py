"""``lt-imbalance configs``: the experiment configs shipped with the package, listed and copied.

    lt-imbalance configs                                   # list them, with their first comment line
    lt-imbalance configs copy digits_lt.yaml               # -> ./digits_lt.yaml
    lt-imbalance configs copy cifar10_lt/tuned.yaml my.yaml

In a wheel they live inside the package (``lt_imbalance/configs``); in a source checkout they are
the repository's ``configs/``. A copy never overwrites an existing file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from lt_imbalance.console import PlainHelp, plain
from lt_imbalance.errors import FileInTheWay, MissingFile
from lt_imbalance.output_files import make_folder, write_with


def configs_root() -> Path:
    """The folder of the shipped configs."""
    packaged = Path(str(resources.files("lt_imbalance") / "configs"))
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "configs"


def shipped_configs() -> dict[str, Path]:
    """``relative name -> path`` of every shipped config (trainer fragments and tuning spaces too)."""
    root = configs_root()
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.yaml"))}


def _summary(path: Path) -> str:
    """The first sentence of the config's leading comment (its lines joined, never cut mid-sentence)."""
    words = []
    for line in path.read_text().splitlines():
        if not line.startswith("#") or line.startswith("#   ") or not line.strip("# "):
            if words:
                break
            continue
        words.append(line.lstrip("# ").strip())
    text = " ".join(words)
    first = re.match(r"(.*?[.:;])(?=\s+[A-Z(`]|\s*$)", text)
    return first.group(1).rstrip(":;") if first else text


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lt-imbalance configs", description=plain(__doc__.split("\n\n")[0]), formatter_class=PlainHelp)
    sub = parser.add_subparsers(dest="action")
    copy = sub.add_parser("copy", help="copy a shipped config to a file of your own")
    copy.add_argument("name", help="as listed, e.g. cifar10_lt/tuned.yaml")
    copy.add_argument("dest", nargs="?", default=None, help="target file, or a folder to copy into (default: ./<file name>)")
    args = parser.parse_args(argv)
    configs = shipped_configs()
    if not configs:
        raise MissingFile(f"no shipped configs in '{configs_root()}'; this installation lacks them (reinstall the package)")
    if args.action is None:
        width = max(len(n) for n in configs)
        for name, path in configs.items():
            print(f"{name:<{width}}  {_summary(path)}")
        return
    if args.name not in configs:
        raise MissingFile(f"no shipped config {args.name!r}; `lt-imbalance configs` lists them")
    dest = Path(args.dest or Path(args.name).name)
    if dest.is_dir() or (args.dest or "").endswith(("/", os.sep)):  # into a folder, as cp does
        dest = dest / Path(args.name).name
    if dest.exists():
        raise FileInTheWay(f"'{dest}' exists; choose another target (nothing is overwritten)")
    make_folder(dest.parent, "the target folder")
    write_with(dest, lambda partial: shutil.copyfile(configs[args.name], partial), "the config copy")
    print(f"configs: {args.name} -> {dest}", file=sys.stderr)
