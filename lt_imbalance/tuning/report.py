"""The result of a study, in ``--out``:

- ``best.yaml``: the base config with the best trial's values, complete and runnable with
  ``lt-imbalance fit --config``; its header says where it came from;
- ``trials.csv``: every trial: number, state, value (as deployed), the value as trained, wall
  seconds and their ratio to the base recipe's trial, values, error;
- the best and the base config, every portfolio recipe and the ensemble's members retrained for
  each of ``--seeds`` and tested once (``retrain/``, by the experiment runner :mod:`lt_imbalance.sweep`),
  and the ensemble rebuilt and tested per seed (``retrain/ensemble/``);
- ``ensemble.json`` and ``ensemble.ckpt``: the greedy ensemble of the trials chosen on the
  validation split and deployable as one file (:mod:`lt_imbalance.tuning.study_ensemble`);
- ``report.md``: the selection with its paired noise, the ensemble and which answer to deploy,
  the answers on the test set (mean ± standard error over seeds; overall, many / medium /
  few-shot) with the ensemble's gain paired by seed, the top trials, the parameter importances;
- figures: ``history.png`` (each trial's value and the best so far), ``importances.png``,
  ``per_class.png`` (per-class test accuracy of best and base against class size).

``optuna-dashboard <storage URL>`` shows the study live in a browser.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import yaml
from matplotlib.figure import Figure

from lt_imbalance import sweep
from lt_imbalance.output_files import replaced_when_done, write_text
from lt_imbalance.plotting import save
from lt_imbalance.tuning import study_ensemble
from lt_imbalance.tuning.answer import Answer, find_answer
from lt_imbalance.tuning.selection_stats import expected_maximum, paired_difference
from lt_imbalance.tuning.space import apply_overrides, describe
from lt_imbalance.tuning.trial_files import best_trial, validation_outputs

#: below this many complete sampled trials the parameter importances are not computed (noise)
IMPORTANCE_MIN_TRIALS = 10
#: below this many they are flagged as rough
IMPORTANCE_ROUGH_TRIALS = 20


def trial_rows(study) -> list[dict]:
    """One row per trial; ``cost_vs_base`` is its wall time over the base recipe's trial's."""
    trials = study.get_trials(deepcopy=False)
    base = next((t.user_attrs.get("seconds") for t in trials if t.user_attrs.get("recipe") == "base" and t.state.name == "COMPLETE"), None)
    rows = []
    for t in trials:
        seconds = t.user_attrs.get("seconds")
        rows.append({
            "number": t.number, "recipe": t.user_attrs.get("recipe", ""), "state": t.state.name.lower(), "value": t.value,
            "as_trained": t.user_attrs.get("as_trained"), "seconds": seconds,
            "cost_vs_base": round(seconds / base, 2) if seconds is not None and base else None,
            "overrides": t.user_attrs.get("overrides", "{}"), "error": t.user_attrs.get("error", ""),
        })  # fmt: skip
    return rows


def write_trials_csv(rows: list[dict], path: Path) -> None:
    with replaced_when_done(path, "the trials table") as partial, open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)


def history_figure(rows: list[dict], direction: str) -> Figure:
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    done = [(r["number"], r["value"]) for r in rows if r["state"] == "complete" and r["value"] is not None]
    pick = max if direction == "maximize" else min
    best, so_far = None, []
    for _, value in done:
        best = value if best is None else pick(best, value)
        so_far.append(best)
    ax.scatter([n for n, _ in done], [100 * v for _, v in done], s=14, label="complete trial")
    ax.step([n for n, _ in done], [100 * v for v in so_far], where="post", color="tab:red", label="best so far")
    pruned = [r["number"] for r in rows if r["state"] == "pruned"]
    if pruned:
        ax.scatter(pruned, [ax.get_ylim()[0]] * len(pruned), marker="x", color="grey", label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def importance_figure(importances: dict[str, float]) -> Figure:
    fig = Figure(figsize=(7, 0.35 * max(3, len(importances)) + 1))
    ax = fig.subplots()
    names = list(importances)[::-1]
    ax.barh([n.replace(".init_args", "") for n in names], [importances[n] for n in names])
    ax.set_xlabel("importance (Optuna's default evaluator)")
    fig.tight_layout()
    return fig


def write_report(tuner) -> Path | None:
    """Write everything of the module docstring for ``tuner``'s finished study; returns ``report.md``
    (None when the tuner was stopped during the retrains)."""
    import optuna

    s, study, out = tuner.settings, tuner.study, tuner.settings.out
    rows = trial_rows(study)
    write_trials_csv(rows, out / "trials.csv")
    save(history_figure(rows, s.direction), out / "history.png", dpi=100)
    if not any(r["state"] == "complete" for r in rows):
        return write_text(
            out / "report.md",
            f"# Study '{study.study_name}'\n\nNo trial completed ({len(rows)} trials); see trials.csv for their states and errors.\n",
            "the report",
        )
    best = best_trial(study, out)
    overrides = json.loads(best.user_attrs["overrides"])
    data = tuner.base["data"]["init_args"]
    header = (
        f"# The best recipe of the study '{study.study_name}' in {out} (storage {tuner.url}): trial {best.number} of "
        f"{len(rows)}, {s.monitor} {best.value:.4f} as deployed (prior '{tuner.base.get('prior')}')\n# on {_validation(data, tuner.folds)}; base config {' + '.join(s.configs)}. "
        f"Its values: {describe(overrides)}\n"
    )
    write_text(out / "best.yaml", header + yaml.safe_dump(apply_overrides(tuner.base, overrides), sort_keys=False), "the best config")
    sampled = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.params)
    importances, why = (
        {},
        f"{sampled} complete trials with sampled values (the portfolio recipes have none), fewer than {IMPORTANCE_MIN_TRIALS}",
    )
    if sampled >= IMPORTANCE_MIN_TRIALS:
        try:
            with warnings.catch_warnings():  # Optuna warns about sparse regimes of a small study; the report says how many trials it had
                warnings.simplefilter("ignore")
                importances = optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError) as err:  # one value only
            why = str(err)
        else:
            save(importance_figure(importances), out / "importances.png", dpi=100)
    answer = find_answer(tuner, overrides)
    if answer is None:
        return None
    records, failed = answer.records, answer.failed
    if records:
        sweep.plot_per_class(records, out / "per_class.png")
    lines = [f"# Study '{study.study_name}'", "", f"Base config `{' + '.join(s.configs)}`" + (f" (+ `{' '.join(s.overrides)}`)" if s.overrides else "") + f", space `{s.space or 'the default space'}`, "
             f"{len(rows)} trials ({sum(r['state'] == 'complete' for r in rows)} complete, {sum(r['state'] == 'pruned' for r in rows)} pruned, "
             f"{sum(r['state'] == 'fail' for r in rows)} failed), objective {s.monitor} ({s.direction}) on {_validation(data, tuner.folds)}, "
             f"judged as deployed: the final weights, calibrated on {'their held-out fold' if tuner.folds else 'the validation split'}, "
             f"their outputs re-weighted to the class prior '{tuner.base.get('prior')}' (best.yaml and every retrain deploy the same way).", ""]  # fmt: skip
    collapsed = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("collapsed")]
    if collapsed:
        lines += [
            "Collapsed (stopped early, recorded as pruned): "
            + "; ".join(f"trial {t.number}: {t.user_attrs['collapsed']}" for t in collapsed),
            "",
        ]
    lines += _selection(study, s.monitor, out)
    if answer.choice is not None:
        lines += study_ensemble.report_lines(answer.choice, s.monitor, answer.ensemble_file, answer.single_answer)
    lines += answer_lines(answer)
    if records:
        lines += [
            "## The answers on the test set (mean ± standard error over seeds " + ", ".join(map(str, s.seeds)) + ")",
            "",
            sweep.summary_table(records),
            "",
        ]
        lines += _retrain_lines(records, tuner.folds)
        lines += study_ensemble.gain_lines(records, study, s.monitor.split("/", 1)[-1])
    if failed:
        lines += ["Retrains that failed: " + "; ".join(f"{r['cell']} seed {r['seed']}: {r['error']}" for r in failed), ""]
    recipes = [r for r in rows if r["recipe"]]
    if recipes:
        lines += [
            "## Portfolio (tried first) and the winner",
            "",
            f"| recipe | trial | state | {s.monitor} as deployed | as trained | seconds | cost vs base |",
            "|---|---:|---|---:|---:|---:|---:|",
            *(
                f"| {r['recipe']} | {r['number']} | {r['state']} | {_value(r['value'])} | {_value(r['as_trained'])} | {r['seconds']} | "
                f"{r['cost_vs_base'] if r['cost_vs_base'] is not None else '-'} |"
                for r in recipes
            ),
            f"| **winner** | {best.number} | complete | {best.value:.4f} | {_value(best.user_attrs.get('as_trained'))} | "
            f"{best.user_attrs.get('seconds')} | - |",
            "",
        ]
    lines += ["## Top trials", "", f"| trial | {s.monitor} as deployed | as trained | seconds | values |", "|---:|---:|---:|---:|---|"]
    done = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: r["value"], reverse=s.direction == "maximize")
    for r in done[:10]:
        lines.append(
            f"| {r['number']} | {r['value']:.4f} | {_value(r['as_trained'])} | {r['seconds']} | {describe(json.loads(r['overrides']))} |"
        )
    lines += ["", "## Parameter importances", ""]
    if importances and sampled < IMPORTANCE_ROUGH_TRIALS:
        lines.append(f"Rough: from {sampled} complete sampled trials (below {IMPORTANCE_ROUGH_TRIALS}, importances are mostly noise).")
    lines += [f"- {k.replace('.init_args', '')}: {v:.3f}" for k, v in importances.items()] or [f"not computed: {why}"]
    return write_text(out / "report.md", "\n".join(lines) + "\n", "the report")


def _selection(study, monitor: str, out: Path) -> list[str]:
    """The winner and the runner-up, the standard error of their *paired* difference on the same
    validation images (:mod:`lt_imbalance.tuning.selection_stats`), whether they are within noise of
    each other (difference below two standard errors), and how optimistic the winner's value is."""
    from optuna.trial import TrialState

    done = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE"
    )
    if len(done) < 2:
        return []

    def show(t) -> str:
        se = t.user_attrs.get("se")
        name = t.user_attrs.get("recipe") or describe(json.loads(t.user_attrs.get("overrides", "{}")))
        return f"trial {t.number} ({name}): {t.value:.4f}" + (f" ± {se:.4f}" if se is not None else "")

    winner = best_trial(study, out)
    runner_up = next(t for t in done if t.number != winner.number)
    level = sum(1 for t in done if t.value == winner.value) - 1
    lines = ["## Selection", "", f"- winner: {show(winner)}", f"- runner-up: {show(runner_up)}"]
    if level:
        lines.append(
            f"- {level} other trial(s) level with the winner on {monitor}: the winner is the one whose deployed probabilities "
            "give the true classes the most probability (the lowest log-loss on the same images)"
        )
    paired = _paired(out, winner, runner_up, monitor.split("/", 1)[-1])
    if paired is not None:
        (gap, se), n = paired
        verdict = "within noise of each other" if abs(gap) <= 2 * se else "apart by more than the noise"
        lines.append(
            f"- the gap {gap:.4f} ± {se:.4f}: {verdict} (± is the standard error of the paired difference: both trials "
            f"were scored on the same {n} validation images, compared image by image, as deployed)"
        )
    elif winner.user_attrs.get("se") is not None and runner_up.user_attrs.get("se") is not None:
        se_w, se_r = winner.user_attrs["se"], runner_up.user_attrs["se"]
        gap, noise = abs(winner.value - runner_up.value), 2 * (se_w**2 + se_r**2) ** 0.5
        verdict = "within noise of each other" if gap < noise else "apart by more than the noise"
        lines.append(
            f"- the gap {gap:.4f} against two standard errors of the difference {noise:.4f}: {verdict} (unpaired, an upper "
            "bound: the trials' validation outputs were not kept, so their binomial standard errors are combined as if "
            "they had been scored on different images)"
        )
    shift = expected_maximum(len(done))
    se = winner.user_attrs.get("se")
    size = f", here about {shift * se:.3f}" if se is not None else ""
    lines.append(
        f"- the winner's value is optimistic: it is the best of {len(done)} complete trials on the same validation images, "
        f"and the best of {len(done)} equally good trials lies on average {shift:.1f} standard errors above their common "
        f"value{size}. The unbiased figure is its retrain on the test set below."
    )
    return [*lines, ""]


def _paired(out: Path, a, b, metric: str) -> tuple[tuple[float, float], int] | None:
    """The paired difference of trials ``a`` and ``b`` from their ``val_outputs.npz`` (None when one
    is missing, their validation images differ, or ``metric`` has no paired formula)."""
    import numpy as np

    first, second = validation_outputs(a, out), validation_outputs(b, out)
    if first is None or second is None or not np.array_equal(first["targets"], second["targets"]):
        return None
    result = paired_difference(first["targets"], first["deployed"].argmax(1), second["deployed"].argmax(1), metric)
    return None if result is None else (result, len(first["targets"]))


def _retrain_lines(records: list[dict], folds: int) -> list[str]:
    """What the retrains trained on and which test set scored them (the hashes say it is one)."""
    split_hashes = sorted({str(r.get("split_hash")) for r in records})
    test_hashes = sorted({str(r.get("test_hash")) for r in records})
    roles = ("`best` = best.yaml, `base` = base.yaml; a config with several roles (the best trial was a portfolio recipe) is "
             "retrained once, named by its roles joined with '='. ")  # fmt: skip
    if folds:
        one = len(test_hashes) == 1
        return [
            f"Test-set hash: {', '.join(test_hashes)} "
            + ("(one: every answer was tested on the same test set, which holds no image the trials trained or validated on)."
               if one else "(**more than one: the answers were not all tested on the same test set**).")
            + " " + roles + f"Every answer is its config's bag of {folds} fold models, each trained on {folds - 1} of the {folds} "
            "stratified folds of the study's training images (the base config's split_seed) and calibrated on the fold it "
            "did not train on, as the trials were; the seeds vary the weights' initialisation, the data order and the "
            "augmentation, not the folds.",
            "",
        ]  # fmt: skip
    return [
        f"Split hash of every retrain: {', '.join(split_hashes)}; test-set hash: {', '.join(test_hashes)} "
        + ("(one each: every retrain trained on the study's split and was tested on the same test set, which holds no image "
           "the trials trained or validated on)." if len(split_hashes) == len(test_hashes) == 1 else
           "(**more than one: the retrains did not all use the same split or test set**)."),
        "",
        roles + "Every retrain trains on the study's own training split (the base config's split_seed) and is tested on one "
        "and the same test set; the seeds vary the weights' initialisation, the data order and the augmentation, not the split.",
        "",
    ]  # fmt: skip


def answer_lines(answer: Answer) -> list[str]:
    """The report's section on the deployed answer and on the trials' checkpoints the retrains reused."""
    lines = ["## The deployed answer", "", f"- deploy {answer.deploy}"]
    if answer.bag_file is not None:
        lines.append(
            f"- `{answer.bag_file}`: the winner's {answer.folds} fold models averaged, each calibrated on its own held-out fold "
            "(their outputs are the out-of-fold outputs the winner was judged on); `lt-imbalance test --config base.yaml "
            f"--ckpt_path {answer.bag_file.name}`, `predict` and `export` take it; it costs {answer.folds} models' inference"
        )
    if answer.reused:
        lines.append(
            "- trained once, not again: the retrains of the seed the trials ran with reuse the trials' own checkpoints (the same "
            "config, split and seed would reproduce them): " + ", ".join(answer.reused)
        )
    return [*lines, ""]


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _validation(data: dict, folds: int = 0) -> str:
    if folds:
        return f"the out-of-fold outputs of {folds}-fold cross-fitting (every training image judged by the fold model that did not train on it)"
    if data.get("val_source") == "pool":
        return f"a balanced pool hold-out of {data.get('val_per_class')} per class"
    return (
        f"a stratified {data.get('val_fraction')} of the training split"
        if data.get("val_fraction")
        else "the dataset's own validation split"
    )
