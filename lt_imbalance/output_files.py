"""Writing a file so that it is never seen half-written: the contents go to a temporary name in the
same folder and are moved into place (one ``os.replace``) only when complete.

When writing fails (a full disk, a folder that cannot be written), the temporary file is removed,
the path keeps what it had (nothing, or the earlier file), and :class:`~lt_imbalance.errors.CannotAccess`
says what was not written and why. A path that is a symbolic link is written through: the file
it points to gets the new contents and the link stays; a path that is no regular file (a folder, a
device such as ``/dev/full``) is refused.

Examples:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_text(folder / "a.txt", "done")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lt_imbalance.errors import CannotAccess, FileInTheWay

#: what each failure to write means for the user, by errno name
FIXES = {
    "ENOSPC": "the disk is full: free some space, or write to another disk",
    "EDQUOT": "the disk quota is used up: free some space, or write to another disk",
    "EROFS": "the file system is read-only: write to another folder",
    "EACCES": "the folder cannot be written (permission denied): write to another folder",
    "EPERM": "the folder cannot be written (operation not permitted): write to another folder",
}


def target_of(path: Path) -> Path:
    """Where ``path``'s contents go: the file a symbolic link points to, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextmanager
def replaced_when_done(path: str | Path, what: str = "the file") -> Iterator[Path]:
    """A temporary path beside ``path`` for the caller to write; moved onto ``path`` when the block
    ends without an error, removed otherwise (module docstring). ``what`` names the file in errors."""
    final = target_of(Path(path))
    if final.exists() and not final.is_file():
        raise FileInTheWay(f"{what} {path} is not a regular file ({final}); give a file path to write")
    partial = final.with_name(f".partial.{final.name}")  # the same suffix: a writer may read it
    try:
        yield partial
        os.replace(partial, final)
    except OSError as err:
        _remove(partial)
        cannot_write(err, f"{what} {path} was not written", "nothing was left half-written there")
    except BaseException:
        _remove(partial)
        raise


def cannot_write(err: OSError, what: str, after: str = "") -> None:
    """Raise ``err`` as :class:`~lt_imbalance.errors.CannotAccess` with the fix when it is a full disk
    or an unwritable place (:data:`FIXES`), else ``err`` itself, unchanged (call it in an ``except``)."""
    import errno

    name = errno.errorcode.get(err.errno or 0, "")
    if name not in FIXES or isinstance(err, CannotAccess):
        raise err
    raise CannotAccess(f"{what}: {FIXES[name]}" + (f" ({after})" if after else "")) from err


def make_folder(folder: str | Path, what: str = "the output folder") -> Path:
    """``folder`` and its parents, or :class:`~lt_imbalance.errors.CannotAccess` saying why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        cannot_write(err, f"{what} {folder} could not be made")
    return Path(folder)


def write_text(path: str | Path, text: str, what: str = "the file") -> Path:
    """``text`` into ``path``, whole or not at all."""
    with replaced_when_done(path, what) as partial:
        partial.write_text(text)
    return Path(path)


def write_with(path: str | Path, writer: Callable[[Path], object], what: str = "the file") -> Path:
    """``writer(temporary_path)`` (``torch.save``, an ONNX export...) into ``path``, whole or not at all."""
    with replaced_when_done(path, what) as partial:
        writer(partial)
    return Path(path)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
