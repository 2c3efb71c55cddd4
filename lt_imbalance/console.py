"""What the commands print: our progress, tables and paths; libraries' chatter only with ``--verbose``.

``lt-imbalance <command> --verbose`` (or ``LT_IMBALANCE_VERBOSE=1``, which the trials of ``tune``
and the runs of ``sweep`` inherit) shows everything. Otherwise :func:`quiet_libraries` drops, from
Lightning's log, the lines that tell a user nothing they asked for (the seed, which accelerators
exist, tips about other products, the dataloader being loaded to count steps) and hides
deprecation and future warnings raised inside libraries; the model summary and Lightning's own
test-metrics box (our results table already gives those numbers) are switched off by the command
layer. Warnings our own code raises, and every error, still show.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

VERBOSE_VARIABLE = "LT_IMBALANCE_VERBOSE"
CHATTER = re.compile(
    r"^(Seed set to|(GPU|TPU|HPU|IPU) available|💡 Tip|Loading `train_dataloader` to estimate|LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES|"
    r"You are using a CUDA device)"
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
