"""A ``tune --out`` folder holds one study: what the study is, recorded when it starts and checked
whenever it is run again.

A study is its name and storage, its base config (every override resolved, with the target prior),
its search space, the monitored metric and the direction. :func:`study_identity` writes these down;
:func:`claim` refuses a run whose identity differs from the one recorded in the folder
(``study.json``) or in the study itself (a worker with another ``--out`` on a shared storage):
another study, config or space in the same folder would overwrite the first study's ``base.yaml``,
``best.yaml`` and report and mix two studies' trials. The refusal names what differs and the fix:
a new ``--out``, or the same command as before.

The direction follows the metric unless ``--direction`` is given: losses and calibration errors
(``val/nll``, ``val/loss``, ``val/ece``) are minimised, every other metric maximised.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from lt_imbalance.errors import UnsupportedCombination
from lt_imbalance.output_files import write_text

#: the record of the study a ``--out`` folder holds
IDENTITY_FILE = "study.json"
#: metric names (after ``val/``) a study minimises unless ``--direction`` says otherwise
MINIMISED = ("nll", "loss", "ece")
#: what a study is, in the order a refusal names the differences
KEYS = ("study", "storage", "config_hash", "space_hash", "monitor", "direction")


def default_direction(monitor: str) -> str:
    """``minimize`` for a loss or calibration error (:data:`MINIMISED`), else ``maximize``.

    Examples:
        >>> default_direction("val/nll"), default_direction("val/balanced_acc")
        ('minimize', 'maximize')
    """
    name = monitor.split("/", 1)[-1]
    return "minimize" if name in MINIMISED or name.endswith("_loss") else "maximize"


def study_identity(study: str, storage: str, base: dict, space_file: str | Path, monitor: str, direction: str) -> dict[str, str]:
    """The study's identity (module docstring): the base config and the space by content hash."""
    config = yaml.safe_dump(base, sort_keys=True).encode()
    return {
        "study": study,
        "storage": storage,
        "config_hash": hashlib.sha256(config).hexdigest()[:16],
        "space_hash": hashlib.sha256(Path(space_file).read_bytes()).hexdigest()[:16],
        "monitor": monitor,
        "direction": direction,
    }


def differences(recorded: dict, identity: dict) -> list[str]:
    """The keys of :data:`KEYS` where ``identity`` is not ``recorded``, in words."""
    words = {"config_hash": "base config (with its overrides)", "space_hash": "search space"}
    shown = []
    for key in KEYS:
        if key in recorded and recorded[key] != identity[key]:
            if key in words:
                shown.append(f"another {words[key]}")
            else:
                shown.append(f"{key} {identity[key]!r} (the study's: {recorded[key]!r})")
    return shown


def read_folder(out: Path) -> dict | None:
    """The identity recorded in ``out`` (``None`` when the folder holds no study yet)."""
    path = out / IDENTITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def check_folder(out: Path, identity: dict) -> None:
    """Refuse a run whose study is not the one ``out`` holds, before anything is written there."""
    recorded = read_folder(out)
    if recorded is not None:
        refuse(out, differences(recorded, identity), recorded)


def claim(out: Path, identity: dict, study) -> None:
    """Check ``identity`` against the study's own record (a run that started it elsewhere) and
    record it in the study and in ``out``; a study without a record (it started with an earlier
    version) is checked by its direction, then gets one."""
    recorded = study.user_attrs.get("identity")
    if recorded is None:
        stored = study.direction.name.lower()
        if stored != identity["direction"]:
            refuse(out, [f"direction {identity['direction']!r} (the study's: {stored!r})"], {**identity, "direction": stored})
        study.set_user_attr("identity", {k: v for k, v in identity.items() if k != "storage"})
    else:
        refuse(out, differences(recorded, identity), recorded)
    write_text(out / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n", "the study's record")


def refuse(out: Path, shown: list[str], recorded: dict) -> None:
    if not shown:
        return
    raise UnsupportedCombination(
        f"--out {out} holds the study {recorded.get('study')!r} (monitor {recorded.get('monitor')}, "
        f"{recorded.get('direction')}), and this run has {'; '.join(shown)}: running it here would overwrite that "
        "study's files and mix two studies' trials. Start it in a new --out, or resume the study with the command "
        f"that started it (its base config is {out / 'base.yaml'})"
    )
