"""Digits-LT: ERM, each component of the tuned routine alone, and all combined, over several seeds.

Each variant is the ERM config (configs/digits_lt_erm.yaml) with one change; every run is a
separate `lt-imbalance fit` process with seed_everything = data.split_seed = seed. Writes
<out>/results.csv and <out>/table.md (balanced and few-shot test accuracy, mean ± standard
deviation over seeds).

    python scripts/compare_components.py --seeds 0 1 2 --out runs/components
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAM_A = {"class_path": "SAM", "init_args": {"rho": 0.05, "gamma": 1.0}}
SAM = {"class_path": "SAM", "init_args": {"rho": 0.05, "gamma": 0.0}}


def variants() -> dict[str, dict]:
    """name -> {"data": {...}, "model": {...}, "callbacks": [...]} changes to the ERM config."""
    return {
        "ERM (batch 64, crop)": {},
        "batch 32": {"data": {"batch_size": 32}},
        "TrivialAugment": {"data": {"augmentation": "trivialaugment"}},
        "CC-LS (eps 0 -> 0.1)": {"model": {"label_smoothing": 0.0, "label_smoothing_tail": 0.1}},
        "SAM (rho 0.05)": {"callbacks": [SAM]},
        "SAM-A (rho 0.05, gamma 1)": {"callbacks": [SAM_A]},
        "Joint-SSL (lambda 0.1)": {"model": {"ssl_weight": 0.1}},
        "all combined": {
            "data": {"batch_size": 32, "augmentation": "trivialaugment"},
            "model": {"label_smoothing": 0.0, "label_smoothing_tail": 0.1, "ssl_weight": 0.1},
            "callbacks": [SAM_A],
        },
        "all but TrivialAugment (= digits_lt.yaml)": {
            "data": {"batch_size": 32},
            "model": {"label_smoothing": 0.0, "label_smoothing_tail": 0.1, "ssl_weight": 0.1},
            "callbacks": [SAM_A],
        },
    }


def make_config(base: dict, change: dict, seed: int, out_dir: Path) -> dict:
    cfg = copy.deepcopy(base)
    cfg["seed_everything"] = seed
    cfg["trainer"]["default_root_dir"] = str(out_dir)
    cfg["trainer"]["enable_progress_bar"] = False
    cfg["data"]["init_args"].update(change.get("data", {}), split_seed=seed)
    cfg["model"]["init_args"].update(change.get("model", {}))
    if change.get("callbacks"):
        cfg["trainer"]["callbacks"] = change["callbacks"]
    return cfg


def run(cfg: dict, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config_in.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    start = time.time()
    subprocess.run([sys.executable, "-m", "lt_imbalance", "fit", "--config", str(path)], check=True, cwd=ROOT, capture_output=True)
    seconds = time.time() - start
    result = next(out_dir.rglob("results_test.json"))
    return {**json.loads(result.read_text())["metrics"], "seconds": seconds}


def summarise(rows: list[dict], names: list[str]) -> str:
    lines = [
        "| variant | balanced acc. % | few-shot acc. % | s / run |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        cells = []
        for key in ("balanced_acc", "few_acc"):
            values = [100 * r[key] for r in mine]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {sd:.1f}")
        cells.append(f"{statistics.mean(r['seconds'] for r in mine):.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "components")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out} exists; choose a new --out so earlier results are kept")
    base = yaml.safe_load((ROOT / "configs" / "digits_lt_erm.yaml").read_text())
    rows = []
    for name, change in variants().items():
        for seed in args.seeds:
            slug = "".join(c if c.isalnum() else "_" for c in name).strip("_")
            out_dir = args.out / slug / f"seed{seed}"
            metrics = run(make_config(base, change, seed, out_dir), out_dir)
            rows.append({"variant": name, "seed": seed, **metrics})
            print(f"{name:32s} seed {seed}: balanced {metrics['balanced_acc']:.3f} few {metrics.get('few_acc', float('nan')):.3f} ({metrics['seconds']:.0f} s)", flush=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    table = summarise(rows, list(variants()))
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
