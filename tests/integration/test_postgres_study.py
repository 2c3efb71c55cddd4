"""Two ``lt-imbalance tune`` workers share one study on a real PostgreSQL server (started here on
127.0.0.1 with its own data directory, stopped at the end): no trial lost or run twice, each
portfolio recipe run once, the report written once (by the worker without ``--no-report``).

The server comes from Debian's ``postgresql`` package (``make test-slow`` installs it as root).
Where it cannot be had (no root), the test is skipped with that reason, except under CI, where a
skip fails. These are the commands the README gives for many machines."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--folds", "0"]


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """``postgresql+psycopg://...`` of a server of our own (as user ``nobody`` when we are root: initdb refuses root)."""
    bin_dir = _binaries()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (make test-slow installs Debian's postgresql package when run as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI this test must run")
        pytest.skip(reason)
    pytest.importorskip("psycopg", reason="the tune extra's PostgreSQL driver (psycopg) is not installed")
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="lt-imbalance-pg-"))  # under /tmp: pytest's own folders are closed to another user
    user = {}
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid}
        name = "nobody"
    else:
        import getpass

        name = getpass.getuser()
    data, port = home / "data", _free_port()

    def run(*cmd):
        return subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], check=True, capture_output=True, text=True, cwd=home, **user)

    run("initdb", "-D", str(data), "-A", "trust", "-U", name)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(home / "server.log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://{name}@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_study_on_postgresql(postgres, tmp_path):
    import optuna

    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "model.init_args.optimizer.init_args.lr": {"float": [0.01, 0.1], "log": True},
                "portfolio": {"balanced_softmax": {"model.init_args.loss.class_path": "BalancedSoftmaxLoss"}},
            }
        )  # fmt: skip
    )
    out = tmp_path / "study"
    common = ["--config", "configs/digits_lt_erm.yaml", "--space", str(space), "--storage", postgres, "--study", "shared",
              "--n_trials", "5", "--seeds", *QUICK]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tune = [sys.executable, "-m", "lt_imbalance", "tune"]
    helper = subprocess.Popen([*tune, *common, "--out", str(out / "worker_2"), "--no-report"], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    time.sleep(1)
    main = subprocess.run([*tune, *common, "--out", str(out / "main")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    helper_out, _ = helper.communicate(timeout=900)
    assert main.returncode == 0, main.stdout[-3000:] + main.stderr[-3000:]
    assert helper.returncode == 0, helper_out[-3000:]
    trials = optuna.load_study(study_name="shared", storage=postgres).get_trials()
    counted = [t for t in trials if not str(t.user_attrs.get("error", "")).startswith(("surplus", "interrupted"))]
    assert len(counted) == 5 and all(t.state.is_finished() for t in trials)  # none lost, none extra
    ran = [t.user_attrs.get("recipe") for t in counted if t.user_attrs.get("recipe")]
    assert sorted(ran) == ["balanced_softmax", "base"]  # each recipe once
    assert (out / "main" / "report.md").is_file() and not (out / "worker_2" / "report.md").exists()  # written once
    # the report reads every trial's validation outputs, the other worker's included (from the folder each trial records)
    assert "left out" not in (out / "main" / "report.md").read_text() and (out / "main" / "ensemble.json").is_file()
