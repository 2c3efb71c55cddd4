"""A resumed ``fit`` continues the run it resumes, or says why it cannot.

The run's resolved config is kept beside its checkpoints (``<run>/config.yaml``). A resumed fit
whose own config differs from it where continuing would mix two trainings (:data:`MUST_MATCH`:
the model, its loss and re-weighting, the optimizer, the data set, its split and the batch size)
is refused with each difference named and the fix; any other change (more epochs, another number
of loader workers, the data's folder moved to another disk) is said in one line and the fit goes on.

Examples:
    >>> run = {"model": {"init_args": {"loss": "ce"}}, "trainer": {"max_epochs": 10}}
    >>> now = {"model": {"init_args": {"loss": "focal"}}, "trainer": {"max_epochs": 20}}
    >>> resume_differences(run, now)
    (['model.init_args.loss: ce -> focal'], ['trainer.max_epochs: 10 -> 20'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lt_imbalance.errors import UnsupportedCombination

#: dotted keys (and everything below them) whose change refuses a resume
MUST_MATCH = (
    "model.class_path",
    "model.init_args.backbone",
    "model.init_args.head",
    "model.init_args.loss",
    "model.init_args.reweighting",
    "model.init_args.optimizer",
    "optimizer",
    "data.class_path",
    "data.init_args.batch_size",
    "data.init_args.split_seed",
    "data.init_args.val_fraction",
    "data.init_args.val_folds",
    "data.init_args.val_fold",
    "data.init_args.imbalance_ratio",
    "data.init_args.profile",
    "data.init_args.builtin",
    "data.init_args.sampler",
)
#: the sections compared (the rest, such as the checkpoint path itself, belongs to the command)
SECTIONS = ("model", "data", "trainer", "optimizer", "lr_scheduler", "seed_everything")
#: keys that differ between any two launches of the same run
IGNORED = ("trainer.default_root_dir", "trainer.logger", "trainer.enable_progress_bar")


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    if not isinstance(config, dict):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def resume_differences(run: dict, now: dict) -> tuple[list[str], list[str]]:
    """``(refused, noted)``: the differences of ``now`` from the ``run`` being resumed, as
    ``key: before -> after`` lines, split by :data:`MUST_MATCH`."""
    before = {k: v for section in SECTIONS if section in run for k, v in flatten(run[section], section).items()}
    after = {k: v for section in SECTIONS if section in now for k, v in flatten(now[section], section).items()}
    refused, noted = [], []
    for key in sorted(set(before) | set(after)):
        if key.startswith(IGNORED) or before.get(key) == after.get(key) or None in (before.get(key), after.get(key)):
            continue  # (None: unset, or a linked value filled in when the run starts)
        line = f"{key}: {before.get(key)} -> {after.get(key)}"
        (refused if any(key == k or key.startswith(k + ".") for k in MUST_MATCH) else noted).append(line)
    return refused, noted


def check_resume(checkpoint: str | Path, now: dict) -> list[str]:
    """Refuse resuming ``checkpoint`` with the config ``now`` where :func:`resume_differences` finds a
    change that mixes two trainings; returns the harmless changes (none when the run kept no config)."""
    import yaml

    saved = Path(checkpoint).resolve().parents[1] / "config.yaml"
    if not saved.is_file():
        return []
    run = yaml.safe_load(saved.read_text()) or {}
    refused, noted = resume_differences(run, now)
    if refused:
        shown = "; ".join(refused[:6]) + (f"; and {len(refused) - 6} more" if len(refused) > 6 else "")
        raise UnsupportedCombination(
            f"resuming {checkpoint} with another config: {shown}. Continuing would mix two trainings; resume with the "
            f"config the run started with ({saved}), or start a new run without --resume / --ckpt_path"
        )
    return noted
