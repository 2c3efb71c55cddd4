"""The child ``lt-imbalance`` runs a tuner or a sweep starts (their trials, the checks before them,
retrains, tests): how each is started and what it left, and the long ones run in their own process
group, printing their progress, and stopped together (loader workers included) when asked to stop.

:func:`child_command` builds every child's command line (the config, the run folder, no progress
bar, the caller's own arguments); :func:`run_to_end` runs a short one with its output in a log; and
:func:`new_result` collects a finished run's record: the ``results_test.json`` it wrote (new since
:func:`result_files` was taken before it started) with its run's split and test-set hashes.

Each ``fit`` starts in a new session, so the fit and the loader workers it forks form one process
group that a signal reaches as a whole. While it runs, a line gives the fit's epoch and validation
value after every epoch (from the ``objective.json`` a tuner trial's reporter writes) and a
heartbeat at least every :data:`HEARTBEAT_SECONDS`. On SIGINT or SIGTERM,
:meth:`FitProcesses.stop_all` sends SIGTERM to every running group and SIGKILL to those still
alive after :data:`STOP_GRACE_SECONDS`; the caller starts no new fit once :attr:`FitProcesses.stopping`
is set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

#: after SIGINT / SIGTERM, how long a running fit gets to stop by itself before it is killed
STOP_GRACE_SECONDS = 20
#: a running fit prints a line at least this often
HEARTBEAT_SECONDS = 60


class FitProcesses:
    """The running fits (module docstring).

    Args:
        monitor: the metric the progress lines show.
        command: who runs them, in the stop line (``tune``, ``sweep``).
    """

    def __init__(self, monitor: str = "val/balanced_acc", command: str = "tune"):
        self.monitor, self.command = monitor, command
        self.running: set[subprocess.Popen] = set()
        self.interrupted: set[int] = set()  # pids of the fits running when the stop came
        self.lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
        #: the signal that stopped the tuner (0: none)
        self.stopping = 0

    def run(self, name: str, cmd: list[str], env: dict, folder: Path) -> tuple[int, bool]:
        """Run the fit ``name`` (``trial 3``, ``best seed 0``) with its output in ``folder/fit.log``,
        printing its progress; returns the exit status and whether the stop signal reached it (a fit
        stopped by SIGTERM may exit 0 after a partial training, which is no result)."""
        objective = folder / "objective.json"
        with open(folder / "fit.log", "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            with self.lock:
                self.running.add(proc)
            try:
                seen, last_line, start = None, time.monotonic(), time.monotonic()
                while proc.poll() is None:
                    time.sleep(0.5)
                    if objective.is_file() and objective.stat().st_mtime != seen:
                        seen = objective.stat().st_mtime
                        try:
                            record = json.loads(objective.read_text())
                        except ValueError:  # being written
                            continue
                        print(f"  {name}: epoch {record['epoch']}, {self.monitor} {record['last']:.4f}", flush=True)
                        last_line = time.monotonic()
                    elif time.monotonic() - last_line >= HEARTBEAT_SECONDS:
                        print(f"  {name}: running, {time.monotonic() - start:.0f} s", flush=True)
                        last_line = time.monotonic()
            finally:
                with self.lock:
                    self.running.discard(proc)
        return proc.returncode, proc.pid in self.interrupted

    def stop_all(self, signum: int) -> bool:
        """Ask every running fit to stop (SIGTERM to its group) and kill the groups still running
        after :data:`STOP_GRACE_SECONDS`. Returns ``False`` when already stopping."""
        if self.stopping:
            return False
        self.stopping = signum
        with self.lock:
            running = list(self.running)
            self.interrupted |= {p.pid for p in running}
        print(f"{self.command}: {signal.Signals(signum).name}: starting no new trial or run; stopping {len(running)} running", flush=True)
        for proc in running:
            _signal_group(proc, signal.SIGTERM)

        def kill_late() -> None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while time.monotonic() < deadline and any(p.poll() is None for p in running):
                time.sleep(0.2)
            for proc in running:
                _signal_group(proc, signal.SIGKILL)  # the fit and its loader workers, whatever is left

        threading.Thread(target=kill_late, daemon=True).start()
        return True


class on_stop_signals:  # noqa: N801 (used as a context manager, like contextlib's)
    """Within the block, SIGINT and SIGTERM call ``handler(signum, frame)`` (set from the main thread only)."""

    def __init__(self, handler):
        self.handler, self.previous = handler, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handler)
        return self

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        return False


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def child_arguments(config: str | Path, root_dir: str | Path, *extra: str) -> list[str]:
    """The arguments after the subcommand: ``--config``, the run folder, no progress bar, ``extra``."""
    return ["--config", str(config), "--trainer.default_root_dir", str(root_dir), "--trainer.enable_progress_bar", "false", *extra]


def child_command(subcommand: str, config: str | Path, root_dir: str | Path, *extra: str) -> list[str]:
    """``lt-imbalance <subcommand>`` of ``config`` in ``root_dir`` (:func:`child_arguments`), run by
    this Python."""
    return [sys.executable, "-m", "lt_imbalance", subcommand, *child_arguments(config, root_dir, *extra)]


def run_to_end(cmd: list[str], env: dict, log: Path) -> tuple[int, str]:
    """Run a short child ``cmd`` to its end (no progress lines, not stopped with the others): its
    exit status and output, also written to ``log``."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    log.write_text(output)
    return proc.returncode, output


def result_files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every ``results_test.json`` under ``folder`` with its (modification time in ns, size): a
    file the run wrote is one that is new or whose stamp changed (comparing against the wall clock
    fails where the file system's timestamps are coarser than ``time.time()``)."""
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("results_test.json")}


def new_result(folder: Path, before: dict[Path, tuple[int, int]]) -> dict | None:
    """The test results a child run wrote under ``folder`` since ``before`` (:func:`result_files`),
    with its ``split_hash`` and ``test_hash``; ``None`` when it wrote none (only a file of this run
    counts, not one of an earlier attempt)."""
    written = [p for p, stamp in result_files(folder).items() if before.get(p) != stamp]
    if not written:
        return None
    newest = max(written, key=lambda p: p.stat().st_mtime_ns)
    metadata = newest.parent / "run_metadata.json"
    data = (json.loads(metadata.read_text()).get("data") or {}) if metadata.is_file() else {}
    return {"split_hash": data.get("split_hash"), "test_hash": data.get("test_hash"), **json.loads(newest.read_text())}
