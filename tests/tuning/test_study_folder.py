"""A ``tune --out`` holds one study: another study name, base config, space, monitor or direction in
the same folder is refused before anything there changes; the same command resumes; the direction
follows the monitor."""

import json
from pathlib import Path

import pytest
import yaml

from lt_imbalance.errors import UnsupportedCombination
from lt_imbalance.tuning.settings import parse_args
from lt_imbalance.tuning.study import Tuner
from lt_imbalance.tuning.study_folder import IDENTITY_FILE, default_direction

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started(tmp_path, monkeypatch):
    """A study started in ``tmp_path / 's'`` on a one-entry space; returns its command's arguments."""
    monkeypatch.chdir(ROOT)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16, 32]}}))
    args = ["--config", "configs/digits_lt_erm.yaml", "--out", str(tmp_path / "s"), "--space", str(space), "--folds", "0"]
    Tuner(parse_args(args))
    return args


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--study", "other"], "study 'other' (the study's: 'lt-imbalance')"),
        (["--trainer.max_epochs", "3"], "another base config (with its overrides)"),
        (["--monitor", "val/acc"], "monitor 'val/acc' (the study's: 'val/balanced_acc')"),
        (["--direction", "minimize"], "direction 'minimize' (the study's: 'maximize')"),
    ],
)
def test_another_study_in_the_same_out_is_refused_and_changes_nothing(started, tmp_path, extra, said):
    out = tmp_path / "s"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(UnsupportedCombination) as refused:
        Tuner(parse_args(started + extra))
    message = str(refused.value)
    assert said in message and "Start it in a new --out" in message and str(out / "base.yaml") in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_another_space_is_refused_and_the_same_command_resumes(started, tmp_path):
    space = tmp_path / "space.yaml"
    recorded = json.loads((tmp_path / "s" / IDENTITY_FILE).read_text())
    Tuner(parse_args(started))  # the same command: the same study
    space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [8, 16]}}))
    with pytest.raises(UnsupportedCombination, match="another search space"):
        Tuner(parse_args(started))
    assert json.loads((tmp_path / "s" / IDENTITY_FILE).read_text()) == recorded


def test_a_worker_with_its_own_out_on_the_shared_storage_is_checked_against_the_study(started, tmp_path):
    storage = f"sqlite:///{(tmp_path / 's' / 'study.db').resolve()}"
    args = [a if a != str(tmp_path / "s") else str(tmp_path / "w") for a in started]
    with pytest.raises(UnsupportedCombination, match="another base config"):
        Tuner(parse_args(args + ["--storage", storage, "--trainer.max_epochs", "3"]))


def test_the_direction_follows_the_monitor_unless_given():
    assert [default_direction(m) for m in ("val/nll", "val/loss", "val/ece", "val/balanced_acc", "val/macro_f1")] == [
        "minimize", "minimize", "minimize", "maximize", "maximize",
    ]  # fmt: skip
    base = ["--config", "c.yaml", "--out", "o"]
    assert parse_args(base + ["--monitor", "val/nll"]).direction == "minimize"
    assert parse_args(base + ["--monitor", "val/nll", "--direction", "maximize"]).direction == "maximize"
    assert parse_args(base).direction == "maximize"


def test_a_misspelt_monitor_is_refused_by_the_one_batch_check_before_any_trial(tmp_path, monkeypatch):
    """Found in seconds by the one-batch check, not after a whole trial (71 s on digits)."""
    from lt_imbalance.errors import BadValue
    from lt_imbalance.tuning import preflight

    monkeypatch.chdir(ROOT)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16, 32]}}))
    args = ["--config", "configs/digits_lt_erm.yaml", "--out", str(tmp_path / "s"), "--space", str(space), "--folds", "0"]
    tuner = Tuner(parse_args(args + ["--monitor", "val/balancd_acc"]))
    with pytest.raises(BadValue) as refused:
        preflight.preflight(tuner)
    assert "--monitor 'val/balancd_acc' is not a metric the model logs" in str(refused.value)
    assert "'val/balanced_acc'" in str(refused.value) and not list((tmp_path / "s").glob("trials/*"))
