"""Resolving a config exactly as ``lt-imbalance fit`` does, for every command that takes one.

:func:`resolve_config` runs ``fit``'s own parser (several ``--config`` files merged in order,
then dotted overrides; defaults filled in, values checked) and stops before anything is
instantiated. ``tune`` and ``sweep`` use it, so a config means the same to them as to ``fit``.
:func:`~lt_imbalance.commands.lightning_cli.instantiate_data` builds just the data module of a resolved config, to ask it questions
(does validation use the test set?) without building the model or a trainer.
"""

from __future__ import annotations

import warnings
from typing import Any

import yaml

from lt_imbalance.commands.lightning_cli import LTImbalanceCLI, build_cli


class _Resolved(Exception):
    """Carries the resolved config out of the parser, before instantiation."""

    def __init__(self, config: dict[str, Any]):
        super().__init__("resolved")
        self.config = config


class _ResolvingCLI(LTImbalanceCLI):
    def before_instantiate_classes(self) -> None:
        text = self.parser.dump(self.config, skip_none=False, skip_validation=True)
        raise _Resolved(yaml.safe_load(text)[self.subcommand])


def resolve_config(args: list[str]) -> dict[str, Any]:
    """The config ``lt-imbalance fit ARGS`` would run with, as plain values (nothing instantiated).

    Args:
        args: ``fit``'s arguments without the subcommand, e.g. ``["--config", "a.yaml", "--config",
            "b.yaml", "--trainer.max_epochs", "3"]``. A ``--config`` value may also be YAML text.

    Raises:
        ArgumentError (a user error): the arguments do not parse or a value is invalid.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # sys.argv holds the calling command
        try:
            build_cli(["fit", *args], cli_class=_ResolvingCLI)
        except _Resolved as resolved:
            return resolved.config
    raise RuntimeError("the fit parser returned without resolving a config")  # pragma: no cover


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` resolved again (raises the parser's error when it is not a valid ``fit`` config)."""
    return resolve_config(["--config", yaml.safe_dump(config, sort_keys=False)])
