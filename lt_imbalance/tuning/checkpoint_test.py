"""Testing trained models on the study's test set in a child ``lt-imbalance test`` run, and
collecting its record as the experiment runner (:mod:`lt_imbalance.sweep`) writes one.

One checkpoint is tested as it is; several (an ensemble, a bag of fold models, or both) are first
put into one ensemble file (:mod:`lt_imbalance.ensemble_classifier`), each member re-weighted to the
study's target prior. A finished test of the same files, weights and config is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from lt_imbalance.fit_processes import child_command, new_result, result_files


def build_and_save(members: list[tuple[Path, float]], prior: str, path: Path, class_counts: Sequence[int] | None = None) -> Path:
    """The ensemble of ``members`` (``(checkpoint, weight)``) re-weighted to ``prior``, written to
    ``path`` (``class_counts``: the training images of the whole, for a bag of fold models)."""
    from lt_imbalance.ensemble_classifier import save_ensemble
    from lt_imbalance.inference.ensemble_builder import build_ensemble

    return save_ensemble(build_ensemble(members, prior, class_counts), path, [p for p, _ in members])


def test_models(
    cell: str,
    members: list[tuple[Path, float]],
    config: Path,
    seed: int,
    folder: Path,
    prior: str,
    processes,
    class_counts: Sequence[int] | None = None,
) -> dict:
    """The test record of ``members`` (one checkpoint of weight 1, or an ensemble of them) on the test
    set of ``config``, with ``seed``, run in ``folder``: ``cell``, ``seed``, the split and test-set
    hashes and the test results, or ``cell``, ``seed`` and ``error``. ``processes`` runs the child
    (:class:`~lt_imbalance.fit_processes.FitProcesses`: stopped with the study)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = [str(config), seed, prior, [(str(p), p.stat().st_mtime_ns, w) for p, w in members]]
    digest = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    done = folder / "result.json"
    if done.is_file() and json.loads(done.read_text()).get("members_hash") == digest:
        return json.loads(done.read_text())
    single = len(members) == 1 and members[0][1] == 1.0
    path = members[0][0] if single else build_and_save(members, prior, folder / "ensemble.ckpt", class_counts)
    cmd = child_command("test", config, folder / "run", "--ckpt_path", str(path), "--seed_everything", str(seed))
    before = result_files(folder)
    returncode, interrupted = processes.run(f"{cell} seed {seed} test", cmd, dict(os.environ), folder)
    if interrupted or processes.stopping:
        return {"cell": cell, "seed": seed, "error": "interrupted: stopped (SIGINT / SIGTERM); the same command runs it again"}
    result = new_result(folder, before)
    if returncode != 0 or result is None:
        return {"cell": cell, "seed": seed, "error": f"the test failed (exit {returncode}); see {folder / 'fit.log'}"}
    record = {"cell": cell, "config": str(path), "seed": seed, "members_hash": digest, "models": len(members), **result}
    done.write_text(json.dumps(record, indent=2) + "\n")
    return record
