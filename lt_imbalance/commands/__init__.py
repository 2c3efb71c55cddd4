"""The commands of ``lt-imbalance``, one registry: name, the module whose ``main(argv)`` runs it, and
one line of help. :mod:`lt_imbalance.cli` dispatches through it and lists it for ``--help``;
nothing here is imported until a command runs, so ``--help`` and the small commands start fast.

``fit``, ``validate`` and ``test`` are LightningCLI's subcommands over
:class:`~lt_imbalance.module.ImbalancedClassifier` (:mod:`lt_imbalance.commands.lightning_cli`);
``predict`` predicts from a checkpoint alone (:mod:`lt_imbalance.commands.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str


LIGHTNING = "lt_imbalance.commands.lightning_cli"
COMMANDS = (
    Command("fit", LIGHTNING, "train a model on a data config (then test it): lt-imbalance fit --config configs/digits_lt.yaml"),
    Command("validate", LIGHTNING, "evaluate a checkpoint on the validation split of a data config"),
    Command("test", LIGHTNING, "evaluate a checkpoint on the test set of a data config"),
    Command("predict", "lt_imbalance.commands.predict", "class probabilities from a checkpoint alone, for images or a table, into a CSV"),
    Command("export", "lt_imbalance.commands.export", "write a checkpoint as one ONNX or TorchScript file, preprocessing inside"),
    Command("tune", "lt_imbalance.tuning.study", "search the imbalance recipe for your data (Optuna), then retrain and test the best"),
    Command("sweep", "lt_imbalance.sweep", "run a grid of configs x overrides x seeds and tabulate the test metrics"),
    Command("configs", "lt_imbalance.config_files", "list the shipped configs, or copy one to a file of your own"),
)
BY_NAME = {c.name: c for c in COMMANDS}
