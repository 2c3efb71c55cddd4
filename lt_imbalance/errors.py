"""Mistakes a user can fix, raised on purpose with the problem and the fix in the message.

Every class here is a :class:`UserError`; the command prints its message in a few lines (no
traceback, :mod:`lt_imbalance.user_errors`). Each also derives from the built-in exception a
caller would expect (``ValueError``, ``FileNotFoundError``, ...), so ``except ValueError`` keeps
working. Anything that is not a ``UserError`` (and not one of the few third-party errors the
command translates) is a programming error and keeps its traceback.

Examples:
    >>> raise BadValue("imbalance_ratio must be >= 1, got 0.5; set data.init_args.imbalance_ratio to 1 or more")
    Traceback (most recent call last):
    ...
    lt_imbalance.errors.BadValue: imbalance_ratio must be >= 1, got 0.5; ...
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the command, the config or the data that the user can fix."""


class BadValue(UserError, ValueError):
    """A setting or argument whose value cannot work (out of range, unknown name, wrong shape)."""


class UnsupportedCombination(BadValue):
    """Settings that each work alone but not together (e.g. ``device_data`` with streamed files)."""


class UnreadableData(BadValue):
    """Data that exists but cannot be read as what it claims to be (a malformed list line, a table
    without the label column, an image that does not decode)."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the command needs is not there."""


class FileInTheWay(UserError, FileExistsError):
    """A file the command would have to overwrite (nothing a user wrote is overwritten)."""


class CannotAccess(UserError, OSError):
    """A file or folder that exists but cannot be read or written (permissions, a full disk, a
    file that does not decode)."""


class BrokenContract(UserError, TypeError):
    """A plugin (a module subclass, a callback's partner) lacks what it has to provide."""


class TrainingDiverged(UserError, FloatingPointError):
    """The training loss became NaN or infinite."""
