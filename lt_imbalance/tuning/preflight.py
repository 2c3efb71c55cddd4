"""Checks of a study before its first trial: the cross-fitting folds (and that tuning would not
select on the test set), the base config run for one batch, and what an epoch of each portfolio
recipe costs."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import yaml

from lt_imbalance.commands.fit_process import failure_reason
from lt_imbalance.errors import BadValue, UnsupportedCombination
from lt_imbalance.fit_processes import child_command, run_to_end
from lt_imbalance.tuning.space import apply_overrides
from lt_imbalance.tuning.storage import worker_id

#: the environment variable that marks a process as a tuner's child
ROOT_ENV = "LT_IMBALANCE_TUNE_WORKER"
#: training batches each portfolio recipe runs for before the study, to show its cost (the warm-up ones not counted)
TIMED_BATCHES = 6


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


def preflight(tuner) -> None:
    """Run the base config for one batch (data, model, callbacks: ``fit --trainer.fast_dev_run``)
    before the first trial; a base config that cannot start, or a ``--monitor`` it does not log,
    is refused with its error, not run into every trial."""
    folder = tuner.settings.out / "preflight" / worker_id().replace(":", "_")  # this worker's own scratch folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(tuner.base, sort_keys=False))
    cmd = child_command(
        "fit", folder / "config.yaml", folder / "run", "--trainer.fast_dev_run", "true", "--test_after_fit", "false",
        "--trainer.callbacks+=lt_imbalance.tuning.trial_reporter.MonitorCheck", f"--trainer.callbacks.monitor={tuner.settings.monitor}",
    )  # fmt: skip
    returncode, output = run_to_end(cmd, {**os.environ, ROOT_ENV: "1"}, folder / "fit.log")
    if returncode != 0:
        reason = failure_reason(output, returncode).removeprefix("lt-imbalance: error: ")
        raise BadValue(
            f"the base config cannot start (one batch, before any trial): {reason} (full log: {folder / 'fit.log'}); "
            "fix it, then run the same command again"
        )
    shutil.rmtree(folder)  # kept only to show why it failed


def cost_preview(tuner, batches: int = TIMED_BATCHES) -> dict[str, float]:
    """Before the portfolio's first trial: each recipe trained for ``batches`` batches
    (:class:`~lt_imbalance.tuning.batch_timer.BatchTimer`, in the first trial slot's conditions),
    and one line with the cost of an epoch of each relative to the base config, so that a user
    sees an expensive recipe before it runs. Saved as ``recipe_costs.json``; a recipe that could
    not be timed is said and left to its trial."""
    from lt_imbalance.tuning.batch_timer import WARM_UP_BATCHES

    folder = tuner.settings.out / "preflight" / f"{worker_id().replace(':', '_')}_timing"
    slot = tuner.slots_of(tuner.settings.jobs)[0]
    per_sample: dict[str, float] = {}
    for name in tuner.space.portfolio:
        run = folder / name
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(yaml.safe_dump(apply_overrides(tuner.base, tuner.space.recipe(name, tuner.base)), sort_keys=False))
        cmd = child_command(
            "fit", run / "config.yaml", run / "run", "--trainer.fast_dev_run", str(batches), "--test_after_fit", "false",
            "--trainer.callbacks+=lt_imbalance.tuning.batch_timer.BatchTimer", f"--trainer.callbacks.out={run / 'timing.json'}",
        )  # fmt: skip
        returncode, _ = run_to_end(cmd, {**os.environ, **slot, ROOT_ENV: "1"}, run / "fit.log")
        if returncode == 0 and (run / "timing.json").is_file():
            per_sample[name] = json.loads((run / "timing.json").read_text())["seconds_per_sample"]
    base = per_sample.get(next(iter(tuner.space.portfolio)))
    costs = {name: round(value / base, 2) for name, value in per_sample.items()} if base else {}
    untimed = [name for name in tuner.space.portfolio if name not in costs]
    (tuner.settings.out / "recipe_costs.json").write_text(
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
