"""Telling a user's mistake from a programming error, and saying the mistake in a few lines.

A **user error** is something the person running the command can fix: a value the parser rejects
(wrong type, unknown key, bad class path), or an error this package raises on purpose about the
input (``ValueError``, ``TypeError``, ``OSError`` and ``FloatingPointError`` raised by
``lt_imbalance`` code: a bad value, a missing file, an unsupported combination, a diverged loss).
Its message already names the problem and the fix, so the command prints just that, without the
60-80 lines of traceback and the parser's union noise (``Expected a <class 'NoneType'>``, the whole
namespace). Everything else is a programming error and keeps its traceback, as does any error
when ``LT_IMBALANCE_TRACEBACK=1`` is set.
"""

from __future__ import annotations

import re
from argparse import ArgumentError
from pathlib import Path

TRACEBACK_VARIABLE = "LT_IMBALANCE_TRACEBACK"
PACKAGE_DIR = Path(__file__).resolve().parent
USER_ERROR_TYPES = (ValueError, TypeError, OSError, FloatingPointError)
#: lines of jsonargparse's messages that describe its own machinery, not the user's mistake
NOISE = re.compile(
    r"^\s*(- )?(Expected a <class 'NoneType'>|Given value( type)?:|Subtypes:|Does not validate against any of the Union subtypes|Errors:)"
)
MAX_LINES = 12


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        chain.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return chain


def _raised_by_package(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is in this package's code."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    try:
        return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)
    except OSError:
        return False


def _parser_message(err: BaseException) -> str:
    """The parser's message without its machinery lines, de-indented."""
    lines = [line for line in str(err).splitlines() if line.strip() and not NOISE.match(line)]
    lines = [line.strip().removeprefix("- ") for line in lines]
    return "\n".join(dict.fromkeys(lines))


def describe_user_error(err: BaseException) -> str | None:
    """A short message for a user error (module docstring), or ``None`` for a programming error."""
    chain = _chain(err)
    ours = next((e for e in reversed(chain) if isinstance(e, USER_ERROR_TYPES) and _raised_by_package(e)), None)
    parser_error = next((e for e in chain if isinstance(e, ArgumentError)), None)
    if ours is not None:
        text = str(ours)
    elif parser_error is not None:
        text = _parser_message(parser_error)
    else:
        return None
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"... ({len(lines) - MAX_LINES} more lines)"]
    body = "\n".join(lines)
    return f"lt-imbalance: error: {body}\n(the full traceback: set {TRACEBACK_VARIABLE}=1)"
