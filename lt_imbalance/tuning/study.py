"""``lt-imbalance tune``: search the imbalance recipe that works on the user's own data.

    lt-imbalance tune --config configs/digits_lt_erm.yaml --n_trials 40 --out runs/tune_digits \\
        [--space space.yaml] [--timeout S] [--storage URL] [--study NAME] [--jobs K] [--seeds 0 1 2] \\
        [--monitor val/balanced_acc] [--direction maximize] [--pruner median|hyperband|threshold:X|none] \\
        [--target-prior uniform|train|FILE] \\
        [--trainer.max_epochs 30 ...]     # any `fit` override, applied to the base config

1. The base config plus the overrides is resolved by the ``fit`` parser (``base.yaml``). The tuner
   refuses to start when validation would use the test set.
2. The search space (default: :data:`lt_imbalance.tuning.space.DEFAULT_SPACE`) is checked
   against that config before the first trial.
3. Each trial is a full ``lt-imbalance fit`` of the base config with the trial's values, in its own
   process (``trials/<n>/``); :class:`~lt_imbalance.tuning.trial_reporter.TrialReporter` reports
   the monitored validation metric after every epoch, and the pruner stops bad trials early (the default median pruner only after the warm-up and two thirds of
   the epochs). A trial is judged as it will be deployed: every trial's config carries the study's
   target prior (``prior``: ``--target-prior``, else the prior the monitor assumes, :func:`deploy_prior`),
   so its validation scores the outputs re-weighted to that prior; when the fit ends the outputs are
   calibrated on the validation split and the trial's value is the monitor of those final, deployed
   outputs (the value as trained, and the mean of the last three validations during training, are
   recorded beside it). ``best.yaml`` and the retrains carry the same prior, so ``test``, ``predict``
   and ``export`` of the answer deploy it by default. A trial that fails (NaN loss, out of memory, a
   combination the module refuses) is recorded with its reason and the study goes on.
4. The study lives in ``--storage`` (default ``<out>/study.db``, SQLite): running the same command
   again resumes it (:mod:`lt_imbalance.tuning.storage`). The sampler is TPE with ``--sampler-seed``.
   ``--jobs K`` runs K trials at once (GPUs round-robin; on a CPU the cores are split).
5. When ``--n_trials`` trials have finished, the best configuration and the base are each
   retrained for ``--seeds`` and tested once (:mod:`lt_imbalance.tuning.report`).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from lt_imbalance.commands.fit_process import failure_reason
from lt_imbalance.console import PlainHelp, plain, verbose
from lt_imbalance.errors import BadValue, UnsupportedCombination
from lt_imbalance.fit_processes import FitProcesses, on_stop_signals
from lt_imbalance.tuning.space import SearchSpace, apply_overrides, describe
from lt_imbalance.tuning.storage import default_url, fail_orphaned_trials, open_storage, trial_id, worker_id

ROOT_ENV = "LT_IMBALANCE_TUNE_WORKER"
#: training batches each portfolio recipe runs for before the study, to show its cost (the warm-up ones not counted)
TIMED_BATCHES = 6


class TrialFailed(Exception):
    """A trial's fit ended with an error (recorded on the trial; the study goes on)."""


#: a study stops when this many trials in a row fail with the same error before any has completed
SAME_FAILURES_TO_STOP = 3


def repeated_failure(trials: list, n: int = SAME_FAILURES_TO_STOP) -> str | None:
    """The error of the last ``n`` finished trials when they all failed with it and no trial has
    completed (the config cannot work, whatever the sampler draws), else ``None``."""
    from optuna.trial import TrialState

    if any(t.state == TrialState.COMPLETE for t in trials):
        return None
    done = [t for t in sorted(trials, key=lambda t: t.number) if t.state in (TrialState.FAIL, TrialState.PRUNED)]
    errors = [str(t.user_attrs.get("error", "")) for t in done[-n:] if t.state == TrialState.FAIL]
    own = [e for e in errors if not e.startswith(("interrupted", "surplus"))]
    return own[0] if len(own) == n and len(set(own)) == 1 else None


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


# ---- the config ---------------------------------------------------------------------------------------
def choose_folds(config: dict, requested: int | None) -> tuple[int, str]:
    """``(K, why)``: the cross-fitting folds of the study (``requested``: ``--folds``, else the rule
    of :func:`~lt_imbalance.tuning.cross_fit.default_folds` on the base config's validation split).
    Tuning selects on the validation metric, so without cross-fitting it must not be the test set:
    the data module of ``config`` is asked (data with its own validation list, such as ImageNet-LT's,
    passes)."""
    from lt_imbalance.commands.lightning_cli import instantiate_data
    from lt_imbalance.tuning.cross_fit import default_folds

    data = instantiate_data(config)
    if requested is not None:
        if requested and getattr(data, "has_official_val", False):
            raise UnsupportedCombination(
                f"--folds {requested}: {type(data).__name__} has its own validation split, which judges every trial; "
                "cross-fitting is for data judged on a share of its training images (drop --folds)"
            )
        folds, why = requested, "--folds"
    elif getattr(data, "validates_on_test", False):
        folds, why = 0, ""
    else:
        folds, why = default_folds(data.val_counts, getattr(data, "has_official_val", False))
    if not folds and getattr(data, "validates_on_test", False):
        raise UnsupportedCombination(
            f"tuning would select on the test set: {type(data).__name__} validates on the test set when val_fraction is 0. Carve a "
            "validation split: --data.init_args.val_fraction 0.2 (a stratified share of the training split), or a balanced "
            "one from pool images the training split does not use: --data.init_args.val_source pool "
            "--data.init_args.val_per_class 20 --data.init_args.val_fraction 0; or cross-fit on the training images: --folds 5"
        )
    if folds:  # every class must be both held out and trained on in every fold
        from lt_imbalance.data.splits import stratified_folds

        split = data.split
        images = np.concatenate([split.train_indices, split.val_indices]) if data.val_source == "split" else split.train_indices
        stratified_folds(data.announced_labels[np.sort(images)], data.num_classes, folds)
    return folds, why


# ---- the study ------------------------------------------------------------------------------------------
class Tuner:
    """Runs one worker of a study (module docstring)."""

    def __init__(self, settings: TuneSettings):
        import optuna

        from lt_imbalance.commands.config import check_config, resolve_config

        self.settings = s = settings
        s.out.mkdir(parents=True, exist_ok=True)
        self.base = resolve_config([arg for path in s.configs for arg in ("--config", path)] + s.overrides)
        self.folds, self.folds_why = choose_folds(self.base, s.folds)
        self.base["prior"] = deploy_prior(s.target_prior, self.base, s.monitor)  # every trial, best.yaml and retrain carry it
        self.space = SearchSpace.from_yaml(s.space)
        self.space.check(self.base, check_config)
        self.space.check_portfolio(self.base, check_config)
        (s.out / "base.yaml").write_text(yaml.safe_dump(self.base, sort_keys=False))
        self.url = s.storage or default_url(s.out)
        self.storage = open_storage(self.url)
        # the tuner prints its own progress and one line per failed trial (the traceback is in its log): Optuna's
        # warnings, with their tracebacks, only with --verbose
        optuna.logging.set_verbosity(optuna.logging.WARNING if verbose() else optuna.logging.ERROR)
        self.study = optuna.create_study(
            storage=self.storage, study_name=s.study or "lt-imbalance", direction=s.direction, load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=s.sampler_seed), pruner=make_pruner(s.pruner, s.direction),
        )  # fmt: skip
        self.keep_folds()
        self.slots: queue.Queue = queue.Queue()
        for slot in self._slots(s.jobs):
            self.slots.put(slot)
        self.lock = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it
        self.errors_seen: set[str] = set()
        #: the trial processes running now
        self.processes = FitProcesses(s.monitor, "tune")
        #: the error that stopped the study (:func:`repeated_failure`), if one did
        self.stopped_by: str | None = None

    def keep_folds(self) -> None:
        """The study's folds are decided once, when it starts (recorded in the study): a resumed study
        keeps them, and one given another ``--folds`` is refused (its trials would be judged two ways)."""
        recorded = self.study.user_attrs.get("folds")
        if recorded is None:
            if self.study.get_trials(deepcopy=False):  # a study from a version without cross-fitting
                self.folds, self.folds_why = 0, "the study started without cross-fitting"
            self.study.set_user_attr("folds", self.folds)
        elif self.settings.folds is not None and self.settings.folds != recorded:
            raise UnsupportedCombination(
                f"--folds {self.settings.folds}: the study in {self.settings.out} judges its trials with --folds {recorded}; "
                f"resume it with --folds {recorded} (or without --folds), or start another study in a new --out"
            )
        elif recorded != self.folds:
            self.folds, self.folds_why = recorded, "as the study started"

    @staticmethod
    def _slots(jobs: int) -> list[dict[str, str]]:
        """Per concurrent trial: its GPU (round-robin) or its share of the CPU cores."""
        import torch

        if torch.cuda.is_available():
            return [{"CUDA_VISIBLE_DEVICES": str(k % torch.cuda.device_count())} for k in range(jobs)]
        threads = max(1, (os.cpu_count() or 1) // jobs)
        return [{"OMP_NUM_THREADS": str(threads)} for _ in range(jobs)]

    @staticmethod
    def counts(trial, running: bool = False) -> bool:
        """Whether a trial counts towards ``n_trials``: complete, pruned, or failed by its own fault (not
        interrupted, not surplus); with ``running``, also one still running."""
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL:
            return not str(trial.user_attrs.get("error", "")).startswith(("interrupted", "surplus"))
        return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (running and trial.state == TrialState.RUNNING)

    def completed(self) -> int:
        """Trials that completed (reported a final value)."""
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def finished(self) -> int:
        """Trials that count towards ``n_trials``."""
        return sum(self.counts(t) for t in self.study.get_trials(deepcopy=False))

    def surplus(self, trial) -> bool:
        """True when ``n_trials`` trials started before this one already count (or run): several workers
        share the study, and the last ones to start must not run more than ``n_trials`` in all."""
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        return sum(self.counts(t, running=True) for t in earlier) >= self.settings.n_trials

    def run(self) -> Path | None:
        """Run trials until ``n_trials`` have finished (or the timeout), then write the report."""
        s = self.settings
        orphaned = fail_orphaned_trials(self.storage, self.study)
        if orphaned:
            print(f"tune: trials {orphaned} lost their worker (interrupted); marked failed, their places are run again", flush=True)
        remaining = s.n_trials - self.finished()
        if remaining > 0:
            self.preflight()
            if not self.study.get_trials(deepcopy=False) and len(self.space.portfolio) > 1:
                self.cost_preview()
            print(f"tune: {self.judging()}", flush=True)
            print(
                f"tune: {self.finished()} of {s.n_trials} trials done; running {remaining} more ({s.jobs} at a time) in {s.out}; "
                f"trials are judged as deployed for the class prior '{self.base['prior']}' (--target-prior)",
                flush=True,
            )
            with on_stop_signals(self.stop):
                self.study.optimize(
                    self.objective, n_trials=remaining, timeout=s.timeout, n_jobs=s.jobs, catch=(TrialFailed,), callbacks=[self._progress],
                )  # fmt: skip
        if self.processes.stopping:
            print("tune: stopped; the running trials are recorded as interrupted. The same command resumes the study.", flush=True)
            return None
        if self.stopped_by is not None:
            raise BadValue(
                f"the study stopped: {SAME_FAILURES_TO_STOP} trials in a row failed with the same error before any completed: "
                f"{self.stopped_by} (the trials' fit.log in {s.out / 'trials'} has the rest); fix the base config or the space"
            )
        if not s.report:
            return None
        self.wait_for_other_workers()
        if self.finished() < s.n_trials:
            print(f"tune: {self.finished()} of {s.n_trials} trials done (timeout); the report waits for the rest", flush=True)
            return None
        from lt_imbalance.tuning.report import write_report

        with on_stop_signals(self.stop):  # the retrains stop like the trials
            report = write_report(self)
        if self.processes.stopping:
            print("tune: stopped during the retrains; the finished ones are kept. The same command runs the rest.", flush=True)
            return None
        return report

    def judging(self) -> str:
        """How the study judges its trials, with the cost and the way to change it, in one line."""
        if self.folds:
            return (
                f"cross-fitting on, {self.folds} folds ({self.folds_why}): every trial fits {self.folds} fold models, each judged "
                f"on the training images it did not see, so a trial costs {self.folds}x a holdout trial (each fold model trains "
                f"on {self.folds - 1}/{self.folds} of the training images); the answer is the winner's bag of fold models. "
                "--folds 0 judges on the validation split instead"
            )
        why = f" ({self.folds_why})" if self.folds_why else ""
        return f"cross-fitting off{why}: trials are judged on the validation split; --folds 5 cross-fits them"

    def wait_for_other_workers(self, poll_seconds: float = 5.0) -> None:
        """The reporting worker waits while other workers' trials still run (the study's last trials
        may be theirs), so that the report covers every trial."""
        from optuna.trial import TrialState

        announced = False
        while self.finished() < self.settings.n_trials and not self.processes.stopping:
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return
            if not announced:
                print(f"tune: waiting for {len(running)} trials other workers run, then the report", flush=True)
                announced = True
            time.sleep(poll_seconds)

    def claim_recipe(self, trial) -> str | None:
        """The first portfolio recipe no trial of the study has run or is running, now taken by
        ``trial`` (recorded as its ``recipe``); ``None`` once every recipe is taken. Claims in one
        worker are serialised; should two workers claim the same recipe at the same moment, the later
        trial is skipped as surplus (:meth:`objective`), so each recipe runs once per study."""
        with self.lock:
            others = [t for t in self.study.get_trials(deepcopy=False) if t.number != trial.number and self.counts(t, running=True)]
            taken = {t.user_attrs.get("recipe") for t in others}
            for name in self.space.portfolio:
                if name not in taken:
                    trial.set_user_attr("recipe", name)
                    return name
        return None

    def recipe_ran_before(self, trial, recipe: str) -> bool:
        """Whether an earlier trial (another worker's claim at the same moment) runs or ran ``recipe``."""
        trials = self.study.get_trials(deepcopy=False)
        return any(t.number < trial.number and t.user_attrs.get("recipe") == recipe and self.counts(t, running=True) for t in trials)

    def preflight(self) -> None:
        """Run the base config for one batch (data, model, callbacks: ``fit --trainer.fast_dev_run``)
        before the first trial; a base config that cannot start is refused with its error, not run
        into every trial."""
        folder = self.settings.out / "preflight" / worker_id().replace(":", "_")  # this worker's own scratch folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(self.base, sort_keys=False))
        cmd = [
            sys.executable, "-m", "lt_imbalance", "fit", "--config", str(folder / "config.yaml"), "--trainer.fast_dev_run", "true",
            "--test_after_fit", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(folder / "run"),
        ]  # fmt: skip
        proc = subprocess.run(cmd, env={**os.environ, ROOT_ENV: "1"}, capture_output=True, text=True)
        (folder / "fit.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            reason = failure_reason(proc.stdout + proc.stderr, proc.returncode).removeprefix("lt-imbalance: error: ")
            raise BadValue(
                f"the base config cannot start (one batch, before any trial): {reason} (full log: {folder / 'fit.log'}); "
                "fix it, then run the same command again"
            )
        shutil.rmtree(folder)  # kept only to show why it failed

    def cost_preview(self, batches: int = TIMED_BATCHES) -> dict[str, float]:
        """Before the portfolio's first trial: each recipe trained for ``batches`` batches
        (:class:`~lt_imbalance.tuning.batch_timer.BatchTimer`, in the first trial slot's conditions),
        and one line with the cost of an epoch of each relative to the base config, so that a user
        sees an expensive recipe before it runs. Saved as ``recipe_costs.json``; a recipe that could
        not be timed is said and left to its trial."""
        from lt_imbalance.tuning.batch_timer import WARM_UP_BATCHES

        folder = self.settings.out / "preflight" / f"{worker_id().replace(':', '_')}_timing"
        slot = self._slots(self.settings.jobs)[0]
        per_sample: dict[str, float] = {}
        for name in self.space.portfolio:
            run = folder / name
            run.mkdir(parents=True, exist_ok=True)
            (run / "config.yaml").write_text(
                yaml.safe_dump(apply_overrides(self.base, self.space.recipe(name, self.base)), sort_keys=False)
            )
            cmd = [
                sys.executable, "-m", "lt_imbalance", "fit", "--config", str(run / "config.yaml"), "--trainer.fast_dev_run", str(batches),
                "--test_after_fit", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run / "run"),
                "--trainer.callbacks+=lt_imbalance.tuning.batch_timer.BatchTimer", f"--trainer.callbacks.out={run / 'timing.json'}",
            ]  # fmt: skip
            proc = subprocess.run(cmd, env={**os.environ, **slot, ROOT_ENV: "1"}, capture_output=True, text=True)
            if proc.returncode == 0 and (run / "timing.json").is_file():
                per_sample[name] = json.loads((run / "timing.json").read_text())["seconds_per_sample"]
        base = per_sample.get(next(iter(self.space.portfolio)))
        costs = {name: round(value / base, 2) for name, value in per_sample.items()} if base else {}
        untimed = [name for name in self.space.portfolio if name not in costs]
        (self.settings.out / "recipe_costs.json").write_text(
            json.dumps({"relative_to_base": costs, "seconds_per_sample": per_sample}, indent=2)
        )
        shown = ", ".join(f"{name} {cost:g}x" for name, cost in costs.items())
        print(
            f"tune: an epoch of each portfolio recipe costs, relative to the base config (time per training sample over "
            f"{batches - WARM_UP_BATCHES} batches, measured now): {shown or 'not measured'}"
            + (f"; not timed (their trials will say why): {', '.join(untimed)}" if untimed else "")
            + ". To drop a recipe, delete it under portfolio: in a copy of the space and pass --space.",
            flush=True,
        )
        shutil.rmtree(folder)
        return costs

    def _progress(self, study, trial) -> None:
        from optuna.trial import TrialState

        if str(trial.user_attrs.get("error", "")).startswith("surplus"):
            return
        if self.finished() >= self.settings.n_trials or self.processes.stopping:
            study.stop()
        with self.lock:
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            if trial.user_attrs.get("as_trained") is not None:
                value += f" as deployed ({trial.user_attrs['as_trained']:.4f} as trained)"
            recipe = f" [{trial.user_attrs['recipe']}]" if trial.user_attrs.get("recipe") else ""
            line = f"trial {trial.number}{recipe} ({self.finished()} of {self.settings.n_trials} done): {trial.state.name.lower()}, {self.settings.monitor} {value}"
            if trial.state == TrialState.FAIL:
                error = trial.user_attrs.get("error", "no reason recorded")
                line += " (the same error as before)" if error in self.errors_seen else f" ({error})"
                self.errors_seen.add(error)
                repeated = repeated_failure(study.get_trials(deepcopy=False))
                if repeated is not None and self.stopped_by is None:
                    self.stopped_by = repeated
                    study.stop()
            completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
            if completed:
                best = study.best_trial
                line += f"; best so far {best.value:.4f} (trial {best.number}: {describe(json.loads(best.user_attrs['overrides']))})"
            print(line, flush=True)

    def trial_config(self, trial) -> tuple[dict, dict]:
        """``(overrides, config)`` of an Optuna trial: a portfolio recipe's, or the sampler's draw."""
        recipe = trial.user_attrs.get("recipe")
        if recipe is not None:
            overrides = self.space.recipe(recipe, self.base)
        else:
            overrides = self.space.overrides(self.space.sample(trial, self.base), self.base)
        return overrides, apply_overrides(self.base, overrides)

    def objective(self, trial) -> float:
        s = self.settings
        trial.set_user_attr("worker", worker_id())
        if self.surplus(trial):
            trial.set_user_attr("error", f"surplus: the study already has its {s.n_trials} trials")
            self.study.stop()
            raise TrialFailed("surplus trial")
        recipe = self.claim_recipe(trial)
        if recipe is not None and self.recipe_ran_before(trial, recipe):
            trial.set_user_attr("error", f"surplus: recipe {recipe!r} already ran in this study")
            raise TrialFailed("surplus recipe")
        overrides, config = self.trial_config(trial)
        trial.set_user_attr("overrides", json.dumps(overrides))
        folder = s.out / "trials" / f"{trial.number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        trial.set_user_attr("folder", str(folder.resolve()))  # where every worker's report finds its outputs
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        slot = self.slots.get()
        start = time.perf_counter()
        try:
            if self.folds:
                record = self.cross_fit(trial, folder, config, slot)
            else:
                self.fit(trial, folder, f"trial {trial.number}", slot, first=True)
                record = json.loads((folder / "objective.json").read_text())
        finally:
            self.slots.put(slot)
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
        for key in ("se", "as_trained", "during_training"):
            if record.get(key) is not None:
                trial.set_user_attr(key, record[key])
        return float(record["value"])

    def cross_fit(self, trial, folder: Path, config: dict, slot: dict[str, str]) -> dict:
        """The trial's K fold fits (``fold<k>/``) and its record judged on their out-of-fold outputs
        (:mod:`lt_imbalance.tuning.cross_fit`), kept as the trial's ``val_outputs.npz`` and ``objective.json``."""
        from lt_imbalance.tuning import cross_fit

        for k in range(self.folds):
            sub = cross_fit.fold_folder(folder, k)
            sub.mkdir(exist_ok=True)
            (sub / "config.yaml").write_text(
                yaml.safe_dump(apply_overrides(config, cross_fit.fold_overrides(k, self.folds)), sort_keys=False)
            )
            self.fit(trial, sub, f"trial {trial.number} fold {k}", slot, first=k == 0)
        try:
            outputs = cross_fit.out_of_fold(folder, self.folds)
            record = {
                **cross_fit.judge(outputs, self.settings.monitor.split("/", 1)[-1]),
                "folds": self.folds,
                "images": len(outputs["targets"]),
            }
        except BadValue as err:
            trial.set_user_attr("error", str(err))
            raise TrialFailed(f"trial {trial.number}: {err}") from err
        np.savez_compressed(folder / cross_fit.OUTPUTS, **outputs)
        (folder / "objective.json").write_text(json.dumps(record))
        return record

    def fit(self, trial, folder: Path, label: str, slot: dict[str, str], first: bool) -> None:
        """One ``fit`` of the config in ``folder`` for ``trial`` (the pruner watches the ``first`` fit
        of a trial); raises :class:`TrialFailed` or ``optuna.TrialPruned`` when it did not finish."""
        import optuna

        s = self.settings
        pruner = "none" if trial.user_attrs.get("recipe") or not first else s.pruner
        cmd = [
            sys.executable, "-m", "lt_imbalance", "fit", "--config", str(folder / "config.yaml"), "--test_after_fit", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(folder / "run"),
            "--trainer.callbacks+=lt_imbalance.tuning.trial_reporter.TrialReporter", f"--trainer.callbacks.storage={self.url}",
            f"--trainer.callbacks.study={self.study.study_name}", f"--trainer.callbacks.trial_id={trial_id(self.storage, self.study, trial.number)}",
            f"--trainer.callbacks.monitor={s.monitor}", f"--trainer.callbacks.out={folder}", f"--trainer.callbacks.pruner={pruner}",
            f"--trainer.callbacks.direction={s.direction}", f"--trainer.callbacks.report_steps={str(first).lower()}",
        ]  # fmt: skip
        if self.processes.stopping:
            trial.set_user_attr("error", "interrupted: the tuner was stopped before this trial started")
            raise TrialFailed("interrupted")
        returncode, interrupted = self.processes.run(label, cmd, {**os.environ, **slot, ROOT_ENV: "1"}, folder)
        output = (folder / "fit.log").read_text(errors="replace")
        if interrupted or (self.processes.stopping and returncode != 0):
            trial.set_user_attr("error", "interrupted: the tuner was stopped (SIGINT / SIGTERM); the same command runs it again")
            raise TrialFailed(f"{label} interrupted")
        if returncode != 0:
            trial.set_user_attr("error", failure_reason(output, returncode))
            raise TrialFailed(f"{label} failed: see {folder / 'fit.log'}")
        collapsed = folder / "collapsed.json"
        if collapsed.is_file():
            record = json.loads(collapsed.read_text())
            epoch = record["epoch"]
            trial.set_user_attr(
                "collapsed",
                f"{label}: every validation image predicted as one class for {record['in_a_row']} epochs in a row (to epoch {epoch})",
            )
            raise optuna.TrialPruned(f"collapsed at epoch {epoch}")
        pruned = folder / "pruned.json"
        if pruned.is_file():
            raise optuna.TrialPruned(f"pruned at epoch {json.loads(pruned.read_text())['epoch']}")
        if not (folder / "objective.json").is_file():
            trial.set_user_attr("error", f"no validation ran, so {s.monitor} was never reported (check trainer.limit_val_batches)")
            raise TrialFailed(f"{label}: no objective")

    def stop(self, signum: int, frame=None) -> None:
        """SIGINT / SIGTERM: start no new trial or retrain and stop the running ones (:class:`~lt_imbalance.fit_processes.FitProcesses`)."""
        if self.processes.stop_all(signum):
            try:
                self.study.stop()
            except RuntimeError:  # not on the optimize loop's thread: the next trial's callback stops it
                pass


# ---- the command ---------------------------------------------------------------------------------------------


# ---- running and stopping trial processes ---------------------------------------------------------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> TuneSettings:
    parser = argparse.ArgumentParser(prog="lt-imbalance tune", description=plain(__doc__.split("\n\n")[0]), formatter_class=PlainHelp)
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
    parser.add_argument("--direction", choices=["maximize", "minimize"], default="maximize")
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
    if args.folds is not None and (args.folds < 0 or args.folds == 1):
        parser.error(f"--folds {args.folds}: cross-fitting needs at least 2 folds (0 turns it off)")
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


def main(argv: list[str] | None = None) -> int:
    """``lt-imbalance tune ...``: 0 when the study ran (or waits for other workers), 1 when no trial completed."""
    settings = parse_args(sys.argv[2:] if argv is None else argv)
    tuner = Tuner(settings)
    report = tuner.run()
    if tuner.processes.stopping:
        return 128 + tuner.processes.stopping  # the shell's status for a process stopped by that signal
    if report is not None:
        print(f"tune: report in {report}", flush=True)
    if settings.report and report is not None and not tuner.completed():
        print(f"tune: no trial completed; see {settings.out / 'trials.csv'} for their states and errors", flush=True)
        return 1
    return 0
