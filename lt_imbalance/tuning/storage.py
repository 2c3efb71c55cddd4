"""Where a study lives, and cleaning up after a worker that died.

- default: a SQLite file in the output folder (an embedded database): the same command run again
  resumes the study;
- any SQLAlchemy URL (``postgresql://user:pw@host/db``, ``mysql://...``): many workers on many
  machines share one study (``cluster/slurm_tune_array.sbatch``); workers send heartbeats, and a
  trial whose worker stopped answering for 3 minutes is marked failed by the next worker;
- ``journal:PATH``: Optuna's journal file, for a shared filesystem without a database server.

A trial records the worker that runs it (``host:pid``); when a worker starts, trials of its own
host whose process is gone (SIGKILL, a reboot) are marked failed at once, so nothing finished is
lost and nothing runs twice.
"""

from __future__ import annotations

import os
import random
import socket
import time
import warnings
from pathlib import Path

HEARTBEAT_S, GRACE_S = 30, 180


def default_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str, attempts: int = 6):
    """An Optuna storage for ``url`` (module docstring).

    Workers started at the same moment on a new database (a SLURM array, ``tune`` launched twice)
    race to create its tables: the loser's insert of the schema version fails. Opening is retried
    after a short random wait, by which time the winner has created the schema."""
    import optuna
    import sqlalchemy.exc

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial_id(storage, study, number: int) -> int:
    """The storage's id of trial ``number`` of ``study``."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def fail_orphaned_trials(storage, study) -> list[int]:
    """Mark failed the running trials of this host whose worker process is gone; returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    orphaned = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = trial.user_attrs.get("worker", "").rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            tid = trial_id(storage, study, trial.number)
            storage.set_trial_user_attr(tid, "error", "interrupted: its worker process ended before the trial finished")
            storage.set_trial_state_values(tid, TrialState.FAIL)
            orphaned.append(trial.number)
    return orphaned
