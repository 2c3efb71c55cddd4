"""The study's answer, once its trials are done: which model to deploy, its files, and its test-set
comparison. :func:`find_answer` returns one :class:`Answer`; the report
(:mod:`lt_imbalance.tuning.report`) only renders it.

1. The greedy ensemble of the trials, chosen on their validation outputs (out-of-fold when the study
   cross-fits), beside the single best (:mod:`lt_imbalance.tuning.study_ensemble`).
2. The deployed files: ``ensemble.ckpt`` (the members' models), and with cross-fitting ``bag.ckpt``:
   the winner's K fold models averaged (weight 1/K each), every fold model calibrated on its own
   held-out fold, whose outputs are exactly the out-of-fold outputs the winner was judged on.
3. What to deploy, decided on validation, never on the test set: the ensemble when its validation
   gain over the single best is more than two paired standard errors, else the single best: its
   bag with cross-fitting, else ``best.yaml`` (a fit of the winner's config on the study's split).
4. With ``--seeds``, every candidate (best, base, every portfolio recipe, the ensemble's members) is
   trained and tested per seed, each the way the answer is deployed: without cross-fitting one fit
   of its config on the study's split (:mod:`lt_imbalance.sweep`, whose fit tests it); with
   cross-fitting its bag, K fold fits tested together (:mod:`lt_imbalance.tuning.checkpoint_test`).
   A candidate that ran as a trial reuses the trial's checkpoints for the seed the trial ran with
   (the same config, split and seed would only reproduce them). The ensemble is rebuilt per seed
   from its members' models of that seed and tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lt_imbalance import sweep
from lt_imbalance.rundir import newest_last_checkpoint
from lt_imbalance.tuning import cross_fit, study_ensemble
from lt_imbalance.tuning.checkpoint_test import build_and_save, test_models
from lt_imbalance.tuning.space import apply_overrides
from lt_imbalance.tuning.trial_files import best_trial, trial_checkpoints, validation_outputs

BAG = "bag.ckpt"


@dataclass
class Answer:
    """What :func:`find_answer` decided and measured.

    Args:
        choice: the ensemble chosen on validation (None: fewer than two comparable trials).
        ensemble_file: ``ensemble.ckpt``, when written.
        bag_file: ``bag.ckpt`` (cross-fitting), when written.
        single_answer: what deploying the single best means, in words.
        deploy: the deployed answer, in words.
        records: the test records per candidate and seed (``cell``, ``seed``, metrics).
        failed: the candidates' runs that failed (``cell``, ``seed``, ``error``).
        reused: ``cell seed s`` of the candidates whose trial checkpoints were reused.
        folds: the study's folds (0: judged on the validation split).
    """

    choice: study_ensemble.EnsembleChoice | None
    ensemble_file: Path | None
    bag_file: Path | None
    single_answer: str
    deploy: str
    folds: int
    records: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def training_counts(winner, out: Path) -> list[int] | None:
    """The training images per class of a cross-fitted study, from its ``winner``'s out-of-fold
    outputs (every image is out-of-fold once)."""
    import numpy as np

    outputs = validation_outputs(winner, out)
    if outputs is None:
        return None
    return np.bincount(outputs["targets"], minlength=outputs["deployed"].shape[1]).tolist()


def find_answer(tuner, best_overrides: dict) -> Answer | None:
    """The answer of ``tuner``'s finished study (module docstring); None when the tuner was stopped
    during the retrains."""
    s, study, out = tuner.settings, tuner.study, tuner.settings.out
    prior, folds = str(tuner.base.get("prior")), tuner.folds
    winner = best_trial(study, out)
    counts = training_counts(winner, out) if folds else None
    single_answer = f"the single best's bag of {folds} fold models ({BAG})" if folds else "the single best (best.yaml)"
    choice = study_ensemble.choose(study, s.monitor, out, single_answer)
    ensemble_file = study_ensemble.write_deployable(choice, study, out, prior, counts) if choice is not None else None
    bag_file = None
    if folds:
        paths = trial_checkpoints(winner, out)
        bag_file = build_and_save([(p, 1 / len(paths)) for p in paths], prior, out / BAG, counts) if paths else None
    for name, written in (("ensemble.ckpt", ensemble_file), (BAG, bag_file)):
        if written is None:  # an earlier report's file of this study no longer describes its answer
            (out / name).unlink(missing_ok=True)
    deploy = "ensemble.ckpt" if choice is not None and choice.preferred and ensemble_file else single_answer
    answer = Answer(choice, ensemble_file, bag_file, single_answer, deploy, folds)
    if s.seeds and not retrain_and_test(tuner, answer, best_overrides, counts):
        return None
    return answer


def candidates(tuner, best_overrides: dict, choice) -> list[tuple[str, Path, dict]]:
    """``(cell, config path, config)`` of every distinct candidate config (module docstring), in
    first-seen order: a config with several roles is one cell named by its roles joined with '='."""
    out, base = tuner.settings.out, tuner.base
    roles = [("best", out / "best.yaml", apply_overrides(base, best_overrides)), ("base", out / "base.yaml", base)]
    named = [(name, tuner.space.recipe(name, base)) for name in list(tuner.space.portfolio)[1:]]  # the recipes a user compares
    trials = {t.number: t for t in tuner.study.get_trials(deepcopy=False)}
    for number in choice.weights if choice is not None and not choice.single else ():
        named.append((study_ensemble.member_name(number), json.loads(trials[number].user_attrs["overrides"])))
    for name, overrides in named:
        path, config = out / "recipes" / f"{name}.yaml", apply_overrides(base, overrides)
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        roles.append((name, path, config))
    return group_roles(roles)


def group_roles(roles: list[tuple[str, Path, dict]]) -> list[tuple[str, Path, dict]]:
    """``(cell, path, config)`` per distinct config among ``(role, path, config)``, in first-seen order:
    a config is trained once, however many roles it has, in a cell named by its roles joined with '='."""
    groups: dict[str, tuple[list[str], Path, dict]] = {}
    for name, path, config in roles:
        groups.setdefault(_key(config), ([], path, config))[0].append(name)
    return [("=".join(names), path, config) for names, path, config in groups.values()]


def _key(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=True)


def trial_seed(base: dict) -> int | None:
    """The seed every trial ran with (the base config's ``seed_everything``), None when not fixed."""
    seed = base.get("seed_everything")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def retrain_and_test(tuner, answer: Answer, best_overrides: dict, counts: list[int] | None) -> bool:
    """Fill ``answer.records`` / ``failed`` / ``reused`` (module docstring, 4); False when stopped."""
    from optuna.trial import TrialState

    s, out, folds = tuner.settings, tuner.settings.out, tuner.folds
    groups = candidates(tuner, best_overrides, answer.choice)
    trials = {_key(apply_overrides(tuner.base, json.loads(t.user_attrs["overrides"]))): t
              for t in tuner.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}  # fmt: skip
    models: dict[tuple[str, int], list[Path]] = {}
    runs = []
    for cell, path, config in groups:
        trial = trials.get(_key(config))
        for seed in s.seeds:
            reusable = trial_checkpoints(trial, out) if trial is not None and seed == trial_seed(tuner.base) else None
            if reusable:
                models[(cell, seed)] = reusable
                answer.reused.append(f"{cell} seed {seed} (trial {trial.number})")
            elif folds:
                for k in range(folds):
                    fold_config = out / "retrain" / cell / f"fold{k}.yaml"
                    fold_config.parent.mkdir(parents=True, exist_ok=True)
                    fold_config.write_text(yaml.safe_dump(apply_overrides(config, cross_fit.fold_overrides(k, folds)), sort_keys=False))
                    runs.append(sweep.Run(f"{cell}/fold{k}", str(fold_config), (), seed))
            else:
                runs.append(sweep.Run(cell, str(path), (), seed))
    fitted = sweep.run_grid(
        runs, out / "retrain", None, s.jobs, [], log=lambda line: print(f"tune: retrain {line}", flush=True), processes=tuner.processes
    )
    if tuner.processes.stopping:
        return False
    by_run = {(r["cell"], r["seed"]): r for r in fitted}
    records = []
    for cell, path, _ in groups:
        for seed in s.seeds:
            if (cell, seed) not in models and not folds:  # one fit on the study's split: its own test is the record
                record = by_run[(cell, seed)]
                records.append(record)
                if "error" not in record:
                    models[(cell, seed)] = [newest_last_checkpoint(out / "retrain" / cell / f"seed{seed}")]
                continue
            if (cell, seed) not in models:
                failed = [by_run[(f"{cell}/fold{k}", seed)] for k in range(folds) if "error" in by_run[(f"{cell}/fold{k}", seed)]]
                if failed:
                    records.append({"cell": cell, "seed": seed, "error": f"a fold fit failed: {failed[0]['error']}"})
                    continue
                models[(cell, seed)] = [newest_last_checkpoint(out / "retrain" / cell / f"fold{k}" / f"seed{seed}") for k in range(folds)]
            paths = models[(cell, seed)]
            record = test_models(cell, [(p, 1 / len(paths)) for p in paths], path, seed, out / "retrain" / cell / f"seed{seed}",
                                 str(tuner.base.get("prior")), tuner.processes, counts)  # fmt: skip
            _log(record)
            records.append(record)
            if tuner.processes.stopping:
                return False
    cells = [cell for cell, _, _ in groups]
    records += ensemble_per_seed(answer.choice, cells, models, s.seeds, out, str(tuner.base.get("prior")), tuner.processes, counts)
    if tuner.processes.stopping:
        return False
    answer.failed = [r for r in records if "error" in r]
    answer.records = [r for r in records if "error" not in r]
    return True


def ensemble_per_seed(choice, cells: list[str], models: dict[tuple[str, int], list[Path]], seeds: list[int], out: Path,
                      prior: str, processes, counts: list[int] | None = None) -> list[dict]:  # fmt: skip
    """Per seed: the ensemble rebuilt from its members' models of that seed (``models[(cell, seed)]``,
    the member in the cell that names its role; weight w / the member's model count) and tested on
    ``out/base.yaml``'s test set (``retrain/ensemble/seed<s>``); a finished test is reused."""
    if choice is None or choice.single:
        return []
    records = []
    for seed in seeds:
        members = []
        for trial, weight in choice.weights.items():
            cell = next(c for c in cells if study_ensemble.member_name(trial) in c.split("="))
            paths = models.get((cell, seed)) or []
            members += [(p, weight / len(paths)) for p in paths] if paths else [(None, weight)]
        if any(p is None for p, _ in members):
            records.append({"cell": "ensemble", "seed": seed, "error": "a member's models of this seed are missing"})
            continue
        record = test_models(
            "ensemble", members, out / "base.yaml", seed, out / "retrain" / "ensemble" / f"seed{seed}", prior, processes, counts
        )
        _log(record)
        records.append(record)
        if processes.stopping:
            break
    return records


def _log(record: dict) -> None:
    if "error" not in record:
        print(
            f"tune: retrain {record['cell']} seed {record['seed']}: tested, balanced acc {record['metrics']['balanced_acc']:.4f}",
            flush=True,
        )
    elif not record["error"].startswith("interrupted"):
        print(f"tune: retrain {record['cell']} seed {record['seed']}: failed: {record['error']}", flush=True)
