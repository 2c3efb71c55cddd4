"""How well a study's early and final validation values predict one another and the test set.

    python scripts/selection_evidence.py runs/tune_mine [--test]

From the complete trials of a finished ``lt-imbalance tune`` study (``<out>/study.db``), prints

- for each epoch e, the Spearman rank correlation between the validation value at e and the
  trial's objective (the mean of the last validations): how early a pruner may judge;
- the trial each selection rule picks: the last epoch's value (the tuner's rule before the
  objective became a mean) and the mean of the last three;
- with ``--test``: each complete trial's final checkpoint evaluated once on the test set (an
  evaluation of the selection rules after the fact; nothing is selected on it), the rank
  correlation of each rule's validation value with the test balanced accuracy, and the test
  accuracy of each rule's pick.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
from scipy.stats import spearmanr


def complete_trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.intermediate_values]


def accuracy_on_test(out: Path, number: int) -> float:
    folder = out / "trials" / f"{number:04d}"
    checkpoint = next(folder.rglob("last.ckpt"))
    with tempfile.TemporaryDirectory() as root:
        subprocess.run(
            [sys.executable, "-m", "lt_imbalance", "test", "--config", str(folder / "config.yaml"), "--ckpt_path", str(checkpoint)]
            + ["--trainer.default_root_dir", root, "--trainer.enable_progress_bar", "false"],
            check=True,
            capture_output=True,
        )
        return json.loads(next(Path(root).rglob("results_test.json")).read_text())["metrics"]["balanced_acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the study's --out folder")
    parser.add_argument("--test", action="store_true", help="also evaluate every complete trial once on the test set")
    args = parser.parse_args()
    trials = complete_trials(args.out)
    epochs = min(len(t.intermediate_values) for t in trials)
    values = {t.number: [t.intermediate_values[e] for e in sorted(t.intermediate_values)] for t in trials}
    objective = {n: sum(v[-3:]) / 3 for n, v in values.items()}
    last = {n: v[-1] for n, v in values.items()}
    numbers = sorted(values)
    print(f"{len(trials)} complete trials, {epochs} validations each\n")
    print("| epoch | Spearman rho (value at epoch, objective) |\n|---:|---:|")
    for e in sorted({0, 1, 2, 4, epochs // 3 - 1, epochs // 2 - 1, 2 * epochs // 3 - 1, epochs - 4}):
        rho = spearmanr([values[n][e] for n in numbers], [objective[n] for n in numbers]).statistic
        print(f"| {e + 1} | {rho:.2f} |")
    pick_last, pick_mean = max(numbers, key=last.get), max(numbers, key=objective.get)
    print(f"\npick by the last epoch: trial {pick_last} ({last[pick_last]:.4f}); by the mean of the last three: trial {pick_mean} "
          f"({objective[pick_mean]:.4f})")  # fmt: skip
    if not args.test:
        return
    test = {n: accuracy_on_test(args.out, n) for n in numbers}
    for name, rule in (("last epoch", last), ("mean of the last three", objective)):
        rho = spearmanr([rule[n] for n in numbers], [test[n] for n in numbers]).statistic
        print(f"{name}: Spearman rho with test balanced accuracy {rho:.2f}")
    print(f"test balanced accuracy of the pick: last epoch {test[pick_last]:.4f}, mean of the last three {test[pick_mean]:.4f}; "
          f"best complete trial on test {max(test.values()):.4f}, median {sorted(test.values())[len(test) // 2]:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
