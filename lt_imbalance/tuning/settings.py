"""The options of ``lt-imbalance tune`` (:mod:`lt_imbalance.tuning.study` has the command's usage):
read and checked before any work, and the decisions that follow from them alone (the pruner, the
class prior every trial is judged for)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from lt_imbalance.console import PlainHelp, plain
from lt_imbalance.errors import BadValue

#: the command in one line (its ``--help``)
USAGE = "``lt-imbalance tune``: search the imbalance recipe that works on the user's own data."


def make_pruner(spec: str, direction: str = "maximize"):
    """The pruner of ``--pruner``: ``median`` (``median:N`` waits for N complete trials, default 5),
    ``hyperband``, ``threshold:X`` (stop a trial once its value is worse than X) or ``none``. The trial
    processes rebuild the same pruner from this string (a pruner is not kept in the storage)."""
    import optuna

    name, _, arg = spec.partition(":")
    try:
        if name == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=int(arg or 5), n_warmup_steps=1)
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner()
        if name == "threshold":
            return optuna.pruners.ThresholdPruner(**{"lower" if direction == "maximize" else "upper": float(arg)})
        if name == "none":
            return optuna.pruners.NopPruner()
    except ValueError as err:
        raise BadValue(f"--pruner {spec!r}: {err}") from err
    raise BadValue(f"--pruner {spec!r}: choose median, median:N, hyperband, threshold:X or none")


@dataclass
class TuneSettings:
    """The command's options (module docstring)."""

    configs: list[str]
    out: Path
    overrides: list[str] = field(default_factory=list)
    space: str | None = None
    n_trials: int = 20
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    jobs: int = 1
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    monitor: str = "val/balanced_acc"
    direction: str = "maximize"
    pruner: str = "median"
    sampler_seed: int = 0
    report: bool = True
    target_prior: str | None = None
    #: cross-fitting folds (0: judge on the validation split; None: :func:`~lt_imbalance.tuning.cross_fit.default_folds`)
    folds: int | None = None


def deploy_prior(requested: str | None, config: dict, monitor: str) -> str:
    """The class prior every trial is judged and deployed for: ``requested`` (``--target-prior``), else
    the base config's ``prior``, else the one ``monitor`` assumes: the validation split's mix for plain
    accuracy (the training mix when validation is a stratified share of the training split, uniform
    when it is a balanced pool), uniform for balanced accuracy, macro-F1 and the shot groups."""
    if requested is not None:
        return requested
    if config.get("prior") is not None:
        return str(config["prior"])
    data = config["data"].get("init_args") or {}
    stratified = data.get("val_source", "split") == "split" and (data.get("val_fraction") or 0) > 0
    return "train" if monitor.split("/", 1)[-1] == "acc" and stratified else "uniform"


def parse_args(argv: list[str]) -> TuneSettings:
    parser = argparse.ArgumentParser(prog="lt-imbalance tune", description=plain(USAGE), formatter_class=PlainHelp)
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        help="the base config (any `lt-imbalance fit` config); several are merged in order, as by fit",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the study, its trials and the report")
    parser.add_argument("--space", default=None, help="search-space YAML (default: the space shipped with the package)")
    parser.add_argument("--n_trials", type=int, default=20, help="trials to finish in all (complete, pruned or failed)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("--storage", default=None, help="SQLAlchemy URL or journal:PATH (default: sqlite in --out)")
    parser.add_argument("--study", default=None, help="study name in the storage (default: lt-imbalance)")
    parser.add_argument("--jobs", type=int, default=1, help="trials at once on this machine")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="seeds to retrain the best and the base config with")
    parser.add_argument("--monitor", default="val/balanced_acc", help="the validation metric to optimise")
    parser.add_argument(
        "--direction", choices=["maximize", "minimize"], default=None,
        help="default: minimize for a loss or calibration error (val/nll, val/loss, val/ece), maximize otherwise",
    )  # fmt: skip
    parser.add_argument(
        "--target-prior", default=None,
        help="the class mix the answer will be deployed for, and every trial is judged for: uniform, train or a file of "
        "'class,share' lines (default: the base config's prior, else the one --monitor assumes: uniform for balanced "
        "accuracy, macro-F1 and the shot groups; the validation mix for plain accuracy)",
    )  # fmt: skip
    parser.add_argument(
        "--folds", type=int, default=None,
        help="cross-fit every trial on K stratified folds of the training images and judge it on its out-of-fold outputs "
        "(K fits a trial; the answer is the winner's bag of fold models); 0 judges on the validation split. Default: "
        "5 when the validation split's smallest class has fewer than 10 images, else 0",
    )  # fmt: skip
    parser.add_argument("--pruner", default="median", help="stop bad trials early: median, median:N, hyperband, threshold:X, or none (off)")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler")
    parser.add_argument("--no-report", action="store_true", help="run trials only (extra workers of a shared study)")
    args, overrides = parser.parse_known_args(argv)
    stray = [a for a in overrides if a.startswith("-") and not a.startswith("--")]
    if stray:
        parser.error(f"unknown options {stray}; fit overrides look like --trainer.max_epochs 30")
    if args.n_trials < 1 or args.jobs < 1:
        parser.error("--n_trials and --jobs must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        parser.error(f"--timeout {args.timeout:g}: give the seconds after which no new trial starts (more than 0), or leave it out")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: the retrains' seeds are 0 or more")
    check_storage(args.storage, parser.error)
    if args.folds is not None and (args.folds < 0 or args.folds == 1):
        parser.error(f"--folds {args.folds}: cross-fitting needs at least 2 folds (0 turns it off)")
    if args.direction is None:
        from lt_imbalance.tuning.study_folder import default_direction

        args.direction = default_direction(args.monitor)
    make_pruner(args.pruner, args.direction)  # refuse a bad --pruner before any work
    check_target_prior(args.target_prior, parser.error)
    return TuneSettings(
        configs=args.config, out=args.out, overrides=overrides, space=args.space, n_trials=args.n_trials, timeout=args.timeout,
        storage=args.storage, study=args.study, jobs=args.jobs, seeds=args.seeds, monitor=args.monitor, direction=args.direction,
        pruner=args.pruner, sampler_seed=args.sampler_seed, report=not args.no_report, target_prior=args.target_prior,
        folds=args.folds,
    )  # fmt: skip


def check_target_prior(spec: str | None, error) -> None:
    """Refuse a ``--target-prior`` that is no class mix before any work (a file's contents are read
    by :func:`~lt_imbalance.label_shift.parse_prior` when the base config first runs)."""
    from lt_imbalance.label_shift import ESTIMATE, NAMED_PRIORS

    if spec is None or spec in NAMED_PRIORS:
        return
    if spec == ESTIMATE:
        error(
            "--target-prior estimate: trials are judged for one fixed class mix; give uniform, train or a file of "
            "'class,share' lines (`lt-imbalance predict --prior estimate` estimates the mix of its inputs)"
        )
    elif not Path(spec).is_file():
        error(f"--target-prior '{spec}' is neither uniform, train nor an existing file of 'class,share' lines")


def check_storage(url: str | None, error) -> None:
    """Refuse a ``--storage`` that cannot hold a study before any work: an unknown scheme, a SQLite
    file whose folder does not exist, or a SQLite file or journal that cannot be written."""
    import os

    if url is None:
        return
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
    elif url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "oracle", "mssql"):
        return  # a database server: reached when the study opens
    else:
        error(
            f"--storage {url}: not a study storage; give sqlite:///PATH.db, journal:PATH, or a database URL such as "
            "postgresql://user:password@host/db (default: a SQLite file in --out)"
        )
        return
    folder = path.parent if str(path.parent) else Path(".")
    if url.startswith("journal:"):  # its folder is made when the study opens: the nearest one that exists must be writable
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.is_dir():
        error(f"--storage {url}: the folder {folder} does not exist; create it, or give a path in an existing folder")
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        error(f"--storage {url}: {path if path.exists() else folder} cannot be written; give a path in a folder you can write")
