"""What the commands print: our progress, tables and paths; libraries' chatter only with ``--verbose``.

``lt-imbalance <command> --verbose`` (or ``LT_IMBALANCE_VERBOSE=1``, which the trials of ``tune``
and the runs of ``sweep`` inherit) shows everything. Otherwise :func:`quiet_libraries` drops, from
Lightning's log, the lines that tell a user nothing they asked for (the seed, which accelerators
exist, tips about other products, the dataloader being loaded to count steps, which checkpoint is
being restored, that fit reached max_epochs) and hides deprecation and future warnings raised
inside libraries and the library warnings of :data:`QUIET_WARNINGS`; the model summary and Lightning's own
test-metrics box (our results table already gives those numbers) are switched off by the command
layer. Warnings our own code raises, and every error, still show.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import warnings

VERBOSE_VARIABLE = "LT_IMBALANCE_VERBOSE"
CHATTER = re.compile(
    r"^(Seed set to|(GPU|TPU|HPU|IPU) available|💡 Tip|Loading `train_dataloader` to estimate|LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES|"
    r"You are using a CUDA device|`Trainer.fit` stopped|Restoring states from the checkpoint|Loaded model weights from the checkpoint|"
    r"Running in `fast_dev_run` mode|`Trainer\(\w+=[\d.]+\)` was configured)"
)
#: library warnings (by message) that say nothing a user of the command acts on: what our own code
#: already handles (checkpoints in the run's own folder, a short epoch's logging interval, RNG state
#: kept by our callback, checkpoints loaded with ``weights_only`` by our own reader)
QUIET_WARNINGS = (
    r".*The dirpath has changed from",
    r".*smaller than the logging interval",
    r".*weights_only",
    r".*Checkpoint directory .* exists and is not empty",
    r".*has `shuffle=True`, it is strongly recommended",
    r".*The `srun` command is available",
)
# where Lightning logs its rank-zero messages (lightning.pytorch.utilities.rank_zero re-points the
# shared rank-zero helpers at this logger on import)
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.fabric.utilities.seed")


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0", "false")


class DropChatter(logging.Filter):
    """Drops the log records whose message matches :data:`CHATTER`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not CHATTER.search(record.getMessage().lstrip())


def quiet_libraries() -> None:
    """Unless :func:`verbose`: libraries' chatter off in this process (module docstring)."""
    if verbose():
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropChatter) for f in logger.filters):
            logger.addFilter(DropChatter())
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!lt_imbalance)")
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=r"(?!lt_imbalance)")


def take_verbose_flag(argv: list[str]) -> list[str]:
    """``argv`` without ``--verbose`` (also ``--verbose true|false``, ``--verbose=...``); a given flag
    sets :data:`VERBOSE_VARIABLE` for this process and the processes it starts."""
    rest, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--verbose":
            value = "true"
            if i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false"):
                value, i = argv[i + 1].lower(), i + 1
            os.environ[VERBOSE_VARIABLE] = "1" if value == "true" else "0"
        elif arg.startswith("--verbose="):
            os.environ[VERBOSE_VARIABLE] = "1" if arg.split("=", 1)[1].lower() == "true" else "0"
        else:
            rest.append(arg)
        i += 1
    return rest


class PlainHelp(argparse.RawDescriptionHelpFormatter):
    """``--help`` of our own commands: the description as written, and the default of every option
    that has one (and does not say it already)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.required or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def plain(text: str) -> str:
    """A docstring as a person reads it in a terminal: no reStructuredText roles or double backticks.

    Examples:
        >>> plain("``lt-imbalance tune``: see :class:`~lt_imbalance.tuning.space.Space` and :mod:`optuna`")
        'lt-imbalance tune: see Space and optuna'
    """
    text = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0) else m.group(1), text)
    return re.sub(r"``([^`]*)``", r"\1", text)
