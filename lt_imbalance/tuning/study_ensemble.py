"""The study's ensemble answer: chosen on validation, deployable as one file.

1. :func:`choose`: the greedy ensemble (:mod:`lt_imbalance.tuning.ensemble`) of the complete trials'
   deployed validation probabilities (out-of-fold when the study cross-fits), beside the best
   single trial with the paired standard error of the gain (:mod:`lt_imbalance.tuning.selection_stats`);
   ``ensemble.json``. Only trials whose outputs this worker can read take part (another worker's
   folder may be on another machine).
2. :func:`write_deployable`: the members' own trial checkpoints (a cross-fitted member: its bag of
   fold models) as one ensemble file, ``ensemble.ckpt``, each member re-weighted to the study's
   target prior (:mod:`lt_imbalance.ensemble_classifier`): ``lt-imbalance test / predict / export``
   take it like a checkpoint. Its retrains per seed and tests are the answer's
   (:mod:`lt_imbalance.tuning.answer`).

Which answer to deploy is decided on validation, never on the test set: the ensemble when its
validation gain over the single best is more than two paired standard errors, else the single best
(one model, the cheaper). The test-set figures are reported, not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lt_imbalance.sweep import mean_se
from lt_imbalance.tuning.checkpoint_test import build_and_save
from lt_imbalance.tuning.ensemble import ENSEMBLE_ROUNDS, greedy_ensemble
from lt_imbalance.tuning.selection_stats import PAIRED_METRICS, paired_difference
from lt_imbalance.tuning.trial_files import best_trial, trial_checkpoints, trial_folder, validation_outputs

#: the ensemble is the answer when its validation gain exceeds this many paired standard errors
GAIN_IN_STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class EnsembleChoice:
    """The chosen ensemble: ``weights`` trial number -> weight; ``value`` its validation value;
    ``best`` / ``best_value`` the best single trial it could read; ``gain`` ± ``gain_se`` (paired, on
    ``images`` validation images); ``kept`` trials took part, ``left_out`` did not (outputs not readable
    here), among them the study's best when ``study_best`` differs from ``best``."""

    weights: dict[int, float]
    value: float
    best: int
    best_value: float
    gain: float
    gain_se: float
    images: int
    kept: int
    left_out: int
    study_best: int

    @property
    def single(self) -> bool:
        """The ensemble is one trial alone."""
        return len(self.weights) == 1

    @property
    def preferred(self) -> bool:
        """Deploy the ensemble rather than the single best (decided on validation; module docstring)."""
        return not self.single and self.gain > GAIN_IN_STANDARD_ERRORS * self.gain_se


def choose(study, monitor: str, out: Path, single_answer: str = "the single best (best.yaml)") -> EnsembleChoice | None:
    """:class:`EnsembleChoice` of ``study`` (saved as ``ensemble.json``), None when fewer than two
    trials kept their outputs on the same images or the monitor has no paired formula."""
    import numpy as np
    from optuna.trial import TrialState

    metric = monitor.split("/", 1)[-1]
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    kept = {n: v for n, t in trials.items() if (v := validation_outputs(t, out)) is not None}
    targets = next(iter(kept.values()))["targets"] if kept else None
    if len(kept) < 2 or metric not in PAIRED_METRICS or any(not np.array_equal(v["targets"], targets) for v in kept.values()):
        return None
    probabilities = {n: v["deployed"].astype(np.float64) for n, v in kept.items()}
    ensemble = greedy_ensemble(probabilities, targets, metric)
    winner = best_trial(study, out).number
    best = winner if winner in kept else (max if study.direction.name == "MAXIMIZE" else min)(kept, key=lambda n: (trials[n].value, -n))
    gain, se = paired_difference(targets, ensemble.probabilities(probabilities).argmax(1), probabilities[best].argmax(1), metric)
    weights = dict(sorted(ensemble.weights.items(), key=lambda item: (-item[1], item[0])))
    choice = EnsembleChoice(
        weights,
        ensemble.value,
        best,
        trials[best].value,
        gain,
        se,
        len(targets),
        len(kept),
        len(trials) - len(kept),
        winner,
    )
    members = [{"trial": n, "weight": w, "config": str(trial_folder(trials[n], out) / "config.yaml")} for n, w in weights.items()]
    record = {"monitor": monitor, "value": choice.value, "members": members, "single_best": {"trial": best, "value": choice.best_value},
              "gain": gain, "gain_se": se, "deploy": "ensemble.ckpt" if choice.preferred else single_answer}  # fmt: skip
    (out / "ensemble.json").write_text(json.dumps(record, indent=2) + "\n")
    return choice


def write_deployable(choice: EnsembleChoice, study, out: Path, prior: str, class_counts: list[int] | None = None) -> Path | None:
    """``ensemble.ckpt`` from the members' trial checkpoints (a cross-fitted member: its K fold models,
    weight w / K each; ``class_counts`` the training images of the whole), None when one is not
    readable here, or the ensemble is one trial alone."""
    if choice.single:
        return None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    members = []
    for n, w in choice.weights.items():
        paths = trial_checkpoints(trials[n], out)
        if paths is None:
            return None
        members += [(path, w / len(paths)) for path in paths]
    return build_and_save(members, prior, out / "ensemble.ckpt", class_counts)


def member_name(trial: int) -> str:
    """The retrain role of an ensemble member."""
    return f"trial{trial}"


def paired_over_seeds(records: list[dict], a: str, b: str, metric: str) -> tuple[float, float, int] | None:
    """The mean over seeds of (cell ``a`` - cell ``b``) in ``metric`` on the test set, its standard
    error over the seeds (paired: the same seed, the same test images), and the seed count; None
    without a common seed."""
    by = {(r["cell"], r["seed"]): r["metrics"].get(metric) for r in records}
    seeds = sorted({s for c, s in by if c == a} & {s for c, s in by if c == b})
    if not seeds:
        return None
    mean, se = mean_se([by[(a, s)] - by[(b, s)] for s in seeds])
    return mean, se, len(seeds)


def report_lines(
    choice: EnsembleChoice, monitor: str, deployable: Path | None, single_answer: str = "the single best (best.yaml)"
) -> list[str]:
    """The report's section on the ensemble chosen on validation; ``single_answer`` is what deploying
    the single best means (its config, or its bag of fold models)."""
    shown = ", ".join(f"trial {n} ({w:.2f})" for n, w in choice.weights.items())
    lines = [
        "## Ensemble of the trials",
        "",
        f"- greedy selection with replacement over {choice.kept} complete trials' deployed validation probabilities "
        f"({ENSEMBLE_ROUNDS} rounds, the best prefix kept): {shown}",
    ]
    if choice.left_out:
        lines.append(
            f"- {choice.left_out} complete trial(s) left out: their validation outputs are not readable here (another worker's "
            "folder on another machine, or a trial from a version that did not keep them)"
            + ("" if choice.best == choice.study_best else f"; among them the study's best, trial {choice.study_best}")
        )
    if choice.single:
        alone = next(iter(choice.weights))
        which = (
            f"the single best trial alone (trial {choice.best}"
            if alone == choice.best
            else f"trial {alone} alone, level with the single best (trial {choice.best}"
        )
        lines.append(
            f"- the ensemble is {which}, {monitor} {choice.best_value:.4f}): adding no other trial improved it on validation; deploy {single_answer}"
        )
        return [*lines, "- members and weights: ensemble.json", ""]
    lines.append(
        f"- {monitor} {choice.value:.4f} against the single best's (trial {choice.best}) {choice.best_value:.4f}: a gain of "
        f"{choice.gain:.4f} ± {choice.gain_se:.4f} (paired standard error on the same {choice.images} validation images; "
        "chosen and scored on these images, so optimistic like the winner's value)"
    )
    if choice.preferred:
        where = f"`{deployable}`" if deployable else "ensemble.ckpt (not written: a member's checkpoint is not readable here)"
        lines.append(
            f"- deploy the ensemble, {where}: its validation gain is more than {GAIN_IN_STANDARD_ERRORS:g} standard errors "
            "(`lt-imbalance test --config base.yaml --ckpt_path ensemble.ckpt`, `predict --ckpt_path ensemble.ckpt`, `export`); "
            f"it costs {len(choice.weights)} models' inference"
        )
    else:
        lines.append(
            f"- deploy {single_answer}: the ensemble's validation gain is within {GAIN_IN_STANDARD_ERRORS:g} standard "
            f"errors and it costs {len(choice.weights)} models' inference"
            + (f"; the ensemble is still written, `{deployable}`" if deployable else "")
        )
    return [*lines, "- members and weights: ensemble.json", ""]


def gain_lines(records: list[dict], study, metric: str) -> list[str]:
    """The ensemble's test-set gain over the single best (``best``) and over the portfolio recipe best
    on validation, paired by seed (:func:`paired_over_seeds`); nothing without ensemble records."""
    from optuna.trial import TrialState

    cells = list(dict.fromkeys(r["cell"] for r in records))
    if "ensemble" not in cells:
        return []

    def cell_of(role: str) -> str | None:
        return next((c for c in cells if role in c.split("=")), None)

    recipes = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.user_attrs.get("recipe")]
    ordered = sorted(recipes, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")
    compared = [("the single best", cell_of("best"))]
    if ordered:
        compared.append(
            (f"the portfolio recipe best on validation ({ordered[0].user_attrs['recipe']})", cell_of(ordered[0].user_attrs["recipe"]))
        )
    lines, seen = [], set()
    for what, cell in compared:
        if cell in seen:  # the single best is that recipe: said once
            continue
        seen.add(cell)
        paired = paired_over_seeds(records, "ensemble", cell, metric) if cell else None
        if paired is None:
            continue
        mean, se, n = paired
        noise = f"± {100 * se:.1f}" if n > 1 else "(one seed: no standard error)"
        lines.append(
            f"- the ensemble against {what}, `{cell}`: {metric} {100 * mean:+.1f} {noise} points on the test set "
            f"(mean over {n} seed(s) of the per-seed difference: paired, both tested on the same images with the same seed)"
        )
    if lines:
        lines = [
            "`ensemble` = the study's ensemble rebuilt per seed from its members' retrains of that seed, with the weights chosen "
            "on validation in the study, tested with `lt-imbalance test`.",
            "",
            *lines,
            "",
        ]
    return lines
