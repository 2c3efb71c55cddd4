"""``lt-imbalance sweep``: run a grid of configs x overrides x seeds and tabulate the test metrics.

    lt-imbalance sweep configs/experiments/digits_lt/*.yaml --seeds 0 1 2 --out runs/digits_sweep
    lt-imbalance sweep configs/cifar10_lt/erm.yaml --set data.init_args.batch_size=32,64,128 --seeds 0 1

(``lt-imbalance-sweep`` is the same command.) Before the first run, every cell's config is
resolved as ``fit`` would (:func:`lt_imbalance.commands.config.resolve_config`), so a typo fails
at once instead of at the twentieth run.

Each run is a separate ``lt-imbalance fit`` process with ``seed_everything`` set to the seed, in
``<out>/<cell>/seed<k>``. The data split stays the config's for every seed (the same training
images and the same test set for everything compared; seeds vary the weights' initialisation,
the data order and the augmentation); ``--redraw-split`` also sets ``data.init_args.split_seed``
to the seed, drawing another long-tailed split (and, where the data draws its test set from the
split seed, another test set) per seed. A finished run leaves ``result.json`` with a hash of its
resolved config; it is reused when the grid runs again with the same resolved config (an
interrupted grid resumes) and run again when the config, the overrides or ``--extra`` changed.
A run that fails is recorded with its reason (``failed.json``) and the grid goes on; the table
covers the runs that finished and the command exits with status 1 naming the failures.
Runs go one after another by default; ``--devices 0,1`` dispatches them to GPUs (one
``CUDA_VISIBLE_DEVICES`` each) and ``--jobs-per-device`` runs several small runs per device at once.

Writes ``<out>/results.csv`` (one row per run), ``<out>/table.md`` (mean ± standard error over
seeds, SE = sample std / sqrt(n)), ``<out>/per_class.png`` (per-class test accuracy against
training-class count, one line per cell) and ``<out>/groups.png`` (many / medium / few-shot bars).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import queue
import shlex
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lt_imbalance.commands.fit_process import failure_reason
from lt_imbalance.console import PlainHelp, plain
from lt_imbalance.errors import BadValue, MissingFile
from lt_imbalance.fit_processes import FitProcesses, child_arguments, child_command, new_result, on_stop_signals, result_files
from lt_imbalance.output_files import make_folder, replaced_when_done, write_text

TABLE_METRICS = (
    ("balanced_acc", "balanced acc."),
    ("acc", "top-1"),
    ("macro_f1", "macro-F1"),
    ("many_acc", "many"),
    ("medium_acc", "medium"),
    ("few_acc", "few"),
)


@dataclass(frozen=True)
class Run:
    cell: str
    config: str
    overrides: tuple[tuple[str, str], ...]
    seed: int
    redraw_split: bool = False

    def directory(self, out: Path) -> Path:
        return out / self.cell / f"seed{self.seed}"

    def command(self, out: Path, device: str | None, extra: list[str]) -> list[str]:
        return child_command("fit", self.config, self.directory(out), *self.own_args(device, extra))

    def fit_args(self, out: Path, device: str | None, extra: list[str]) -> list[str]:
        """The ``fit`` arguments of this run (after the subcommand)."""
        return child_arguments(self.config, self.directory(out), *self.own_args(device, extra))

    def own_args(self, device: str | None, extra: list[str]) -> list[str]:
        """This run's seed, split, device, overrides and ``extra``."""
        args = ["--seed_everything", str(self.seed)]
        if self.redraw_split:
            args += ["--data.init_args.split_seed", str(self.seed)]
        if device is not None:
            args += ["--trainer.accelerator", "gpu", "--trainer.devices", "1"]
        for key, value in self.overrides:
            args += [f"--{key}", value]
        return args + extra


def parse_sets(sets: list[str]) -> list[tuple[tuple[str, str], ...]]:
    """``KEY=V1,V2`` arguments -> the cartesian product of (key, value) assignments."""
    axes = []
    for item in sets:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise BadValue(f"--set expects KEY=VALUE[,VALUE...], got {item!r}; e.g. --set data.init_args.batch_size=32,64")
        axes.append([(key, v) for v in values.split(",")])
    return [tuple(combo) for combo in itertools.product(*axes)] if axes else [()]


def cell_name(config: str, overrides: tuple[tuple[str, str], ...], configs: list[str]) -> str:
    """The config's stem (with its folder when two configs share a stem) plus the overrides."""
    path = Path(config)
    stems = [Path(c).stem for c in configs]
    name = f"{path.parent.name}_{path.stem}" if stems.count(path.stem) > 1 else path.stem
    for key, value in overrides:
        name += f"__{key.split('.')[-1]}={value}"
    return name


def build_grid(configs: list[str], sets: list[str], seeds: list[int], redraw_split: bool = False) -> list[Run]:
    missing = [c for c in configs if not Path(c).is_file()]
    if missing:
        raise MissingFile(
            f"config files not found: {missing}; give paths of existing config files (`lt-imbalance configs` lists the shipped ones)"
        )
    return [Run(cell_name(c, o, configs), c, o, s, redraw_split) for c in configs for o in parse_sets(sets) for s in seeds]


def config_hash(run: Run, out: Path, extra: list[str]) -> str:
    """A hash of the config ``fit`` resolves for ``run`` (the config file's contents, the overrides,
    ``--extra`` and the seed; the device it runs on aside)."""
    import hashlib

    import yaml

    from lt_imbalance.commands.config import resolve_config

    resolved = resolve_config(run.fit_args(out, None, extra))
    return hashlib.sha256(yaml.safe_dump(resolved, sort_keys=True).encode()).hexdigest()[:16]


def finished(run: Run, out: Path, digest: str | None) -> dict | None:
    """The ``result.json`` record of ``run`` if it finished with the config of hash ``digest``."""
    done = run.directory(out) / "result.json"
    if not done.is_file():
        return None
    record = json.loads(done.read_text())
    return record if digest is None or record.get("config_hash") == digest else None


def execute(
    run: Run,
    out: Path,
    device: str | None,
    extra: list[str],
    threads: int | None = None,
    digest: str | None = None,
    processes: FitProcesses | None = None,
) -> dict:
    """Run one fit (unless it already finished with the same resolved config) and return its
    ``result.json`` record, or ``{"cell", "seed", "error"}`` when it failed (also in ``failed.json``)
    or was stopped (an ``interrupted`` error, no file: the same command runs it again)."""  # fmt: skip
    reused = finished(run, out, digest)
    if reused is not None:
        return reused
    folder = run.directory(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "failed.json"):
        (folder / stale).unlink(missing_ok=True)
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    processes = processes or FitProcesses(command="sweep")
    if processes.stopping:
        return {"cell": run.cell, "seed": run.seed, "error": "interrupted: stopped before it started"}
    before = result_files(folder)
    start = time.time()
    returncode, interrupted = processes.run(f"{run.cell} seed {run.seed}", run.command(out, device, extra), env, folder)
    if interrupted or processes.stopping:
        return {"cell": run.cell, "seed": run.seed, "error": "interrupted: stopped (SIGINT / SIGTERM); the same command runs it again"}
    result = new_result(folder, before)
    if returncode != 0 or result is None:
        output = (folder / "fit.log").read_text(errors="replace")
        reason = failure_reason(output, returncode) if returncode != 0 else "the fit exited 0 but wrote no results_test.json"
        failure = {"cell": run.cell, "seed": run.seed, "error": reason}
        write_text(folder / "failed.json", json.dumps({**failure, "log": str(folder / "fit.log")}, indent=2) + "\n")
        return failure
    record = {
        "cell": run.cell,
        "config": run.config,
        "overrides": dict(run.overrides),
        "seed": run.seed,
        "split": "redrawn per seed" if run.redraw_split else "the config's",
        "config_hash": digest,
        "seconds": round(time.time() - start, 1),
        **result,
    }
    write_text(folder / "result.json", json.dumps(record, indent=2) + "\n", "the run's result")
    return record


def run_grid(
    runs: list[Run],
    out: Path,
    devices: list[str] | None,
    jobs_per_device: int,
    extra: list[str],
    log=print,
    processes: FitProcesses | None = None,
) -> list[dict]:
    """Sequential on the default device, or a pool of ``len(devices) * jobs_per_device`` workers
    (concurrent CPU runs share the cores: each gets cores / jobs threads). The fits run as
    ``processes`` (:class:`~lt_imbalance.fit_processes.FitProcesses`): once it is stopping, no new
    fit starts and the running ones come back ``interrupted``."""  # fmt: skip
    processes = processes or FitProcesses(command="sweep")
    threads = max(1, (os.cpu_count() or 1) // jobs_per_device) if devices is None and jobs_per_device > 1 else None
    slots: queue.Queue = queue.Queue()
    for device in devices or [None]:
        for _ in range(jobs_per_device):
            slots.put(device)

    digests = {run: config_hash(run, out, extra) for run in runs}  # before any thread starts: the parser is built here

    def work(run: Run) -> dict:
        device = slots.get()
        try:
            skipped = finished(run, out, digests[run]) is not None
            record = execute(run, out, device, extra, threads, digests[run], processes)
            if "error" in record and not record["error"].startswith("interrupted"):  # a stop is said once, by the stop
                log(f"{run.cell} seed {run.seed}: failed: {record['error']} (see {run.directory(out) / 'fit.log'})")
            elif "error" not in record:
                state = "already done" if skipped else "done"
                log(f"{run.cell} seed {run.seed}: {state}, balanced acc {record['metrics']['balanced_acc']:.4f}")
            return record
        finally:
            slots.put(device)

    with ThreadPoolExecutor(max_workers=slots.qsize()) as pool:
        return list(pool.map(work, runs))


def mean_se(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")  # one seed: no spread to show
    return statistics.mean(values), se


def summary_table(records: list[dict]) -> str:
    cells = list(dict.fromkeys(r["cell"] for r in records))
    header = "| cell | seeds | " + " | ".join(f"{label} %" for _, label in TABLE_METRICS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(TABLE_METRICS)]
    for cell in cells:
        mine = [r for r in records if r["cell"] == cell]
        row = [cell, str(len(mine))]
        for key, _ in TABLE_METRICS:
            mean, se = mean_se([r["metrics"].get(key, float("nan")) for r in mine])
            row.append("n/a" if math.isnan(mean) else f"{100 * mean:.1f} ± " + ("n/a" if math.isnan(se) else f"{100 * se:.1f}"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_csv(records: list[dict], path: Path) -> None:
    keys = sorted({k for r in records for k in r["metrics"]})
    with replaced_when_done(path, "the results table") as partial, open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cell", "config", "overrides", "seed", "seconds", *keys])
        for r in records:
            writer.writerow(
                [r["cell"], r["config"], json.dumps(r["overrides"]), r["seed"], r["seconds"], *(r["metrics"].get(k, "") for k in keys)]
            )


def plot_per_class(records: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure  # matplotlib and torch (plotting): only when a sweep reports

    from lt_imbalance.plotting import save

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for cell in dict.fromkeys(r["cell"] for r in records):
        mine = [r for r in records if r["cell"] == cell]
        counts = mine[0]["class_counts"]
        acc = [statistics.mean(r["per_class_acc"][c] for r in mine) for c in range(len(counts))]
        order = sorted(range(len(counts)), key=lambda c: counts[c])
        ax.plot([counts[c] for c in order], [100 * acc[c] for c in order], marker="o", ms=3, label=cell)
    ax.set_xscale("log")
    ax.set_xlabel("training images of the class (log scale)")
    ax.set_ylabel("test accuracy of the class (%, mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save(fig, path, dpi=100)


def plot_groups(records: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    from lt_imbalance.plotting import save

    cells = list(dict.fromkeys(r["cell"] for r in records))
    groups = [g for g in ("many_acc", "medium_acc", "few_acc") if any(g in r["metrics"] for r in records)]
    fig = Figure(figsize=(max(6, 0.6 * len(cells) * max(1, len(groups))), 4.5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(groups))
    for k, group in enumerate(groups):
        stats = [mean_se([r["metrics"].get(group, float("nan")) for r in records if r["cell"] == c]) for c in cells]
        ax.bar(
            [i + k * width for i in range(len(cells))],
            [100 * m for m, _ in stats],
            width,
            yerr=[100 * s for _, s in stats],
            label=group[:-4],
            capsize=2,
        )
    ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(cells))], cells, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("test accuracy (%, mean ± SE)")
    ax.legend()
    fig.tight_layout()
    save(fig, path, dpi=100)


def check_cells(runs: list[Run], extra: list[str]) -> None:
    """Resolve every cell's config as ``fit`` would (raises the parser's error for the first bad one)."""
    from lt_imbalance.commands.config import resolve_config

    for run in {(r.config, r.overrides): r for r in runs}.values():
        resolve_config(["--config", run.config, *(a for key, value in run.overrides for a in (f"--{key}", value)), *extra])


def report(records: list[dict], out: Path) -> str:
    """Tables and figures of the runs that finished (failed ones are left out)."""
    records = [r for r in records if "error" not in r]
    if not records:
        return "no run finished"
    write_csv(records, out / "results.csv")
    table = summary_table(records)
    write_text(out / "table.md", table + "\n", "the results table")
    plot_per_class(records, out / "per_class.png")
    plot_groups(records, out / "groups.png")
    return table


def check_devices(devices: list[str], error) -> None:
    """Refuse ``--devices`` ids this machine does not have, before any run."""
    import torch

    have = torch.cuda.device_count()
    missing = [d for d in devices if not d.strip().isdigit() or int(d) >= have]
    if missing:
        where = f"GPUs 0-{have - 1}" if have else "no GPU that PyTorch can use"
        error(f"--devices {','.join(devices)}: this machine has {where}; leave --devices out to run one at a time on the default device")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lt-imbalance sweep", description=plain(__doc__), formatter_class=PlainHelp)
    parser.add_argument("configs", nargs="+", help="config files (one cell each, times the --set combinations)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="an override axis, e.g. data.init_args.batch_size=32,64",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument(
        "--devices", default=None, help="comma-separated GPU ids to dispatch runs to (default: one run at a time on the default device)"
    )
    parser.add_argument(
        "--jobs-per-device", type=int, default=1, help="concurrent runs per device (small models on a large GPU, or CPU cores)"
    )
    parser.add_argument(
        "--extra", default="", help="arguments added to every fit, not part of the cell names, e.g. '--trainer.max_epochs 2'"
    )
    parser.add_argument(
        "--redraw-split", action="store_true", help="also set data.init_args.split_seed to the seed (another split, per seed)"
    )
    args = parser.parse_args(argv)
    if args.jobs_per_device < 1:
        parser.error(f"--jobs-per-device {args.jobs_per_device}: give 1 or more runs at once per device")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: seeds are 0 or more")
    runs = build_grid(args.configs, args.sets, args.seeds, args.redraw_split)
    extra = shlex.split(args.extra)
    check_cells(runs, extra)
    if args.devices:
        check_devices(args.devices.split(","), parser.error)
    make_folder(args.out, "--out")
    devices = args.devices.split(",") if args.devices else None
    processes = FitProcesses(command="sweep")
    with on_stop_signals(lambda signum, frame: processes.stop_all(signum)):
        records = run_grid(runs, args.out, devices, args.jobs_per_device, extra, processes=processes)
    if processes.stopping:
        print("sweep: stopped; the runs that finished are kept, and the same command runs the rest", flush=True)
        return 128 + processes.stopping
    print(report(records, args.out))
    failed = [r for r in records if "error" in r]
    if failed:
        print(
            f"sweep: {len(failed)} of {len(records)} runs failed: "
            + "; ".join(f"{r['cell']} seed {r['seed']}: {r['error']}" for r in failed)
        )
        return 1
    return 0
