"""Where a trial's files are, for whichever worker writes the report."""

from __future__ import annotations

from pathlib import Path

from lt_imbalance.rundir import newest_last_checkpoint


def trial_folder(trial, out: Path) -> Path:
    """The folder of ``trial``'s files: where the worker that ran it wrote them (recorded in the
    study, so a worker sharing the file system finds another worker's trials), else ``out/trials/NNNN``."""
    recorded = trial.user_attrs.get("folder")
    return Path(recorded) if recorded else out / "trials" / f"{trial.number:04d}"


def validation_outputs(trial, out: Path):
    """``trial``'s saved validation outputs (``targets``, ``deployed`` probabilities), None when not readable here."""
    import numpy as np

    path = trial_folder(trial, out) / "val_outputs.npz"
    return np.load(path) if path.is_file() else None


def trial_checkpoint(trial, out: Path) -> Path | None:
    """The final, calibrated ``last.ckpt`` of ``trial``, None when not readable here."""
    run = trial_folder(trial, out) / "run"
    return newest_last_checkpoint(run) if run.is_dir() else None


def trial_checkpoints(trial, out: Path) -> list[Path] | None:
    """The models of ``trial``: its ``last.ckpt``, or a cross-fitted trial's fold models' (``fold<k>/``,
    in fold order); None when one is not readable here."""
    folder = trial_folder(trial, out)
    folds = sorted((p for p in folder.glob("fold*") if p.is_dir() and p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
    if not folds:
        path = trial_checkpoint(trial, out)
        return None if path is None else [path]
    paths = [newest_last_checkpoint(f / "run") if (f / "run").is_dir() else None for f in folds]
    return None if any(p is None for p in paths) else paths
