"""The run's own folder, never shared with another run; and failing early, with the fix, when a run
could not write its results."""

from __future__ import annotations

import os
import shutil
import weakref
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.environments import SLURMEnvironment

from lt_imbalance.errors import CannotAccess

MIN_FREE_MIB = 200


def check_run_directory(directory: str | Path, min_free_mib: int = MIN_FREE_MIB) -> None:
    """Raise ``OSError`` unless ``directory`` can be created, written to, and has ``min_free_mib`` free."""
    directory = Path(directory)
    probe = directory / f".lt_imbalance_write_probe_{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise CannotAccess(
            f"cannot write to the run directory '{directory}' ({err.strerror or err}); set trainer.default_root_dir "
            "to a writable folder before training"
        ) from err
    free_mib = shutil.disk_usage(directory).free / 2**20
    if free_mib < min_free_mib:
        raise CannotAccess(
            f"only {free_mib:.0f} MiB free at '{directory}' (a run needs at least {min_free_mib} MiB for checkpoints and "
            "logs); free some space or set trainer.default_root_dir to another disk"
        )


def hpc_checkpoint(root: str | Path) -> Path | None:
    """The newest ``hpc_ckpt_<N>.ckpt`` (largest N) directly in ``root``: what a requeued SLURM job resumes from."""
    numbered = [(int(p.stem.rsplit("_", 1)[1]), p) for p in Path(root).glob("hpc_ckpt_*.ckpt") if p.stem.rsplit("_", 1)[1].isdigit()]
    return max(numbered)[1] if numbered else None


def resuming_from(trainer) -> str | None:
    """The checkpoint a run resumes from: an explicit ``ckpt_path``, or under SLURM a requeue's
    ``hpc_ckpt_<N>.ckpt`` in ``default_root_dir`` (Lightning's rule: found without any flag).
    Answerable in ``setup``, before Lightning itself restores."""
    if trainer.ckpt_path:
        return str(trainer.ckpt_path)
    if SLURMEnvironment.detect():
        hpc = hpc_checkpoint(trainer.default_root_dir)
        return str(hpc) if hpc is not None else None
    return None


def next_free(path: Path) -> Path:
    """``path`` if free, else ``<stem>_resume_<k><suffix>`` with the first free k."""
    k = 1
    while path.exists():
        path = path.with_name(f"{path.stem.split('_resume_')[0]}_resume_{k}{path.suffix}")
        k += 1
    return path


def newest_last_checkpoint(root: str | Path) -> Path | None:
    """The most recently written ``last.ckpt`` below ``root`` (any ``version_N``), if any."""
    found = [p for p in Path(root).rglob("last.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


_RUN_DIRECTORIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_directory(trainer) -> str:
    """The folder of this run's files (config, metadata, results, figures), the same for every call
    of one run and never another run's: the first logger's versioned folder (TensorBoard, CSV:
    ``<save_dir>/<name>/version_N``); for loggers whose save directory is shared by all runs (MLflow,
    W&B) ``<default_root_dir>/<logger>_<run id>``; without a logger a new ``<default_root_dir>/run_<k>``,
    and for a ``fast_dev_run`` (whose logger Lightning replaces by a dummy) a new
    ``<default_root_dir>/fast_dev_run_<k>``, so a smoke test never writes over another's files.
    A collective under DDP (every rank must call it)."""
    if trainer not in _RUN_DIRECTORIES:
        logger = trainer.loggers[0] if trainer.loggers else None
        if isinstance(logger, (TensorBoardLogger, CSVLogger)):
            folder = trainer.log_dir  # (a collective itself)
        else:
            folder = None
            if trainer.is_global_zero:
                root = Path(trainer.default_root_dir)
                if logger is not None and not trainer.fast_dev_run:
                    folder = str(root / f"{type(logger).__name__.removesuffix('Logger').lower()}_{logger.version}")
                else:
                    prefix = "fast_dev_run" if trainer.fast_dev_run else "run"
                    k = 0
                    while (root / f"{prefix}_{k}").exists():
                        k += 1
                    folder = str(root / f"{prefix}_{k}")
                Path(folder).mkdir(parents=True, exist_ok=True)
            folder = trainer.strategy.broadcast(folder)
        _RUN_DIRECTORIES[trainer] = folder
    return _RUN_DIRECTORIES[trainer]
