"""``lt-imbalance tune``: search the imbalance recipe that works on the user's own data.

    lt-imbalance tune --config configs/digits_lt_erm.yaml --n_trials 40 --out runs/tune_digits \\
        [--space space.yaml] [--timeout S] [--storage URL] [--study NAME] [--jobs K] [--seeds 0 1 2] \\
        [--monitor val/balanced_acc] [--direction maximize] [--pruner median|hyperband|threshold:X|none] \\
        [--target-prior uniform|train|FILE] [--folds K] \\
        [--trainer.max_epochs 30 ...]     # any `fit` override, applied to the base config

1. The base config plus the overrides is resolved by the ``fit`` parser (``base.yaml``); the options
   are read by :mod:`lt_imbalance.tuning.settings`. Before the first trial
   (:mod:`lt_imbalance.tuning.preflight`) the study decides whether it cross-fits (``--folds``,
   :mod:`lt_imbalance.tuning.cross_fit`; refused when validation would be the test set), the search
   space (default: :data:`lt_imbalance.tuning.space.DEFAULT_SPACE`) is checked against the config,
   the base config runs one batch, and each portfolio recipe's cost is measured.
2. Each trial is a full ``lt-imbalance fit`` of the base config with the trial's values, in its own
   process (``trials/<n>/``), or with cross-fitting K of them (``trials/<n>/fold<k>/``);
   :class:`~lt_imbalance.tuning.trial_reporter.TrialReporter` reports the monitored validation
   metric after every epoch, and the pruner stops bad trials early (the default median pruner only
   after the warm-up and two thirds of the epochs; with cross-fitting it watches the first fold),
   as it stops a trial that collapsed to one class. A trial is judged as it will be deployed: every
   trial's config carries the study's target prior (``prior``: ``--target-prior``, else the prior
   the monitor assumes, :func:`~lt_imbalance.tuning.settings.deploy_prior`), so its validation
   scores the outputs re-weighted to that prior; when the fit ends the outputs are calibrated on the
   validation split (a fold model: on its held-out fold) and the trial's value is the monitor of
   those final, deployed outputs (out-of-fold with cross-fitting; the value as trained recorded
   beside it). ``best.yaml`` and the retrains carry the same prior, so ``test``, ``predict`` and
   ``export`` of the answer deploy it by default. A trial that fails (NaN loss, out of memory, a
   combination the module refuses) is recorded with its reason and the study goes on.
3. The study lives in ``--storage`` (default ``<out>/study.db``, SQLite): running the same command
   again resumes it (:mod:`lt_imbalance.tuning.storage`). The sampler is TPE with ``--sampler-seed``.
   ``--jobs K`` runs K trials at once (GPUs round-robin; on a CPU the cores are split).
4. When ``--n_trials`` trials have finished, the answer is chosen, written and tested
   (:mod:`lt_imbalance.tuning.answer`) and the report written (:mod:`lt_imbalance.tuning.report`).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from lt_imbalance.commands.fit_process import failure_reason
from lt_imbalance.console import verbose
from lt_imbalance.errors import BadValue, UnsupportedCombination
from lt_imbalance.fit_processes import FitProcesses, child_command, on_stop_signals
from lt_imbalance.output_files import make_folder, write_text
from lt_imbalance.tuning import preflight, study_folder
from lt_imbalance.tuning.preflight import ROOT_ENV
from lt_imbalance.tuning.settings import TuneSettings, deploy_prior, make_pruner, parse_args
from lt_imbalance.tuning.space import SearchSpace, apply_overrides, describe
from lt_imbalance.tuning.storage import default_url, fail_orphaned_trials, open_storage, trial_id, worker_id
from lt_imbalance.tuning.study_folder import study_identity
from lt_imbalance.tuning.trial_files import best_trial


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


# ---- the study ------------------------------------------------------------------------------------------
class Tuner:
    """Runs one worker of a study (module docstring)."""

    def __init__(self, settings: TuneSettings):
        import optuna

        from lt_imbalance.commands.config import check_config, resolve_config
        from lt_imbalance.commands.lightning_cli import instantiate_data

        self.settings = s = settings
        self.base = resolve_config([arg for path in s.configs for arg in ("--config", path)] + s.overrides)
        self.folds, self.folds_why = preflight.choose_folds(self.base, s.folds)
        self.base["prior"] = deploy_prior(s.target_prior, self.base, s.monitor)  # every trial, best.yaml and retrain carry it
        self.space = SearchSpace.from_yaml(s.space)
        self.url = s.storage or default_url(s.out)
        identity = study_identity(s.study or "lt-imbalance", self.url, self.base, self.space.source, s.monitor, s.direction)
        study_folder.check_folder(s.out, identity)  # another study in this --out: refused before anything is written
        self.space.check(self.base, check_config)
        self.space.check_portfolio(self.base, check_config)
        self.space.check_values(self.base, instantiate_data)
        make_folder(s.out, "--out")  # only once the run is known to be this folder's study
        self.storage = open_storage(self.url)
        # the tuner prints its own progress and one line per failed trial (the traceback is in its log): Optuna's
        # warnings, with their tracebacks, only with --verbose
        optuna.logging.set_verbosity(optuna.logging.WARNING if verbose() else optuna.logging.ERROR)
        self.study = optuna.create_study(
            storage=self.storage, study_name=identity["study"], direction=s.direction, load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=s.sampler_seed), pruner=make_pruner(s.pruner, s.direction),
        )  # fmt: skip
        study_folder.claim(s.out, identity, self.study)
        write_text(s.out / "base.yaml", yaml.safe_dump(self.base, sort_keys=False), "the study's base config")
        self.keep_folds()
        self.slots: queue.Queue = queue.Queue()
        for slot in self.slots_of(s.jobs):
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
    def slots_of(jobs: int) -> list[dict[str, str]]:
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
            preflight.preflight(self)
            if not self.study.get_trials(deepcopy=False) and len(self.space.portfolio) > 1:
                preflight.cost_preview(self)
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
                best = best_trial(study, self.settings.out)
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
        cmd = child_command(
            "fit", folder / "config.yaml", folder / "run", "--test_after_fit", "false",
            "--trainer.callbacks+=lt_imbalance.tuning.trial_reporter.TrialReporter", f"--trainer.callbacks.storage={self.url}",
            f"--trainer.callbacks.study={self.study.study_name}", f"--trainer.callbacks.trial_id={trial_id(self.storage, self.study, trial.number)}",
            f"--trainer.callbacks.monitor={s.monitor}", f"--trainer.callbacks.out={folder}", f"--trainer.callbacks.pruner={pruner}",
            f"--trainer.callbacks.direction={s.direction}", f"--trainer.callbacks.report_steps={str(first).lower()}",
        )  # fmt: skip
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
