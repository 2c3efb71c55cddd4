"""``lt-imbalance tune`` end to end on digits (CPU, 1 epoch of 2 batches per trial): the report and a
runnable best.yaml, resuming after SIGKILL, two workers on one storage, pruning, failing trials,
and the refusal to tune on the test set."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.tuning.settings import parse_args
from lt_imbalance.tuning.study import Tuner

ROOT = Path(__file__).resolve().parents[2]
#: one epoch of two batches, judged on the validation split (the cross-fitted study has its own test)
QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--folds", "0"]
SPACE = {
    "data.init_args.batch_size": {"categorical": [16, 32]},
    "model.init_args.optimizer.init_args.lr": {"float": [0.01, 0.1], "log": True},
    "callbacks.SAM": {"categorical": [False, True]},
    "callbacks.SAM.rho": {"float": [0.01, 0.1], "when": {"callbacks.SAM": True}},
}


def _space(tmp_path, spec=None) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(spec or SPACE, sort_keys=False))
    return str(path)


def _tune_command(out: Path, space: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lt_imbalance",
        "tune",
        "--config",
        "configs/digits_lt_erm.yaml",
        "--space",
        space,
        "--out",
        str(out),
        *args,
        *QUICK,
    ]


def _trials(out: Path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{(out / 'study.db').resolve()}")
    return optuna.load_study(study_name="lt-imbalance", storage=storage).get_trials()


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.long_running
def test_a_tiny_study_reports_and_its_best_config_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "study"
    settings = parse_args(
        [
            "--config",
            "configs/digits_lt_erm.yaml",
            "--space",
            _space(tmp_path),
            "--n_trials",
            "2",
            "--out",
            str(out),
            "--seeds",
            "0",
            *QUICK,
        ]
    )
    report = Tuner(settings).run()
    text = report.read_text()
    assert report.is_file() and "## The answers on the test set" in text
    assert re.search(r"^\| best(=base)?(=trial\d)? \| 1 \|", text, re.M)  # best=base: one retrain when the base config won
    members = json.loads((out / "ensemble.json").read_text())["members"] if (out / "ensemble.json").is_file() else []
    if len(members) > 1:  # the greedy ensemble took both trials: written as one file, rebuilt and tested per seed
        assert (out / "ensemble.ckpt").is_file() and re.search(r"^\| ensemble \| 1 \|", text, re.M)
    assert "## Selection" in text and "- runner-up: trial" in text and "| base | 0 | complete |" in text  # the base config first
    assert "(one each: every retrain trained on the study's split and was tested on the same test set" in text
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",complete," in r for r in rows[1:])
    for name in ("history.png", "per_class.png", "base.yaml", "best.yaml"):
        assert (out / name).is_file(), name
    best = yaml.safe_load((out / "best.yaml").read_text())
    trial = max(_trials(out), key=lambda t: (t.value, -t.number))  # Optuna's best: the first of equal values
    assert best["data"]["init_args"]["batch_size"] == trial.params.get("data.init_args.batch_size", 64)  # (64: the base recipe's)
    cli = build_cli(
        ["fit", "--config", str(out / "best.yaml"), "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path / "run")]
    )
    assert cli.trainer.global_step == 1


@pytest.mark.slow
@pytest.mark.long_running
def test_sigkill_then_the_same_command_finishes_the_study(tmp_path):
    out = tmp_path / "study"
    cmd = _tune_command(out, _space(tmp_path), "--n_trials", "2", "--seeds")
    first = subprocess.Popen(cmd, cwd=ROOT, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "trials" / "0001" / "config.yaml").exists():  # trial 0 finished, trial 1 started
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = {t.number: t.value for t in _trials(out) if t.state == optuna.trial.TrialState.COMPLETE}
    assert 0 in done_before
    again = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "lost their worker (interrupted)" in again.stdout
    trials = _trials(out)
    complete = {t.number: t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(complete) == 2 and all(complete[n] == v for n, v in done_before.items())  # nothing finished lost or redone
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"].startswith("interrupted")


@pytest.mark.slow
@pytest.mark.long_running
def test_two_workers_share_one_study_without_extra_trials(tmp_path):
    out = tmp_path / "study"
    cmd = _tune_command(out, _space(tmp_path), "--n_trials", "4", "--no-report")
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    trials = _trials(out)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4 and len({t.number for t in complete}) == 4
    assert {t.user_attrs["worker"].split(":")[1] for t in complete} == {str(p.pid) for p in procs}  # both worked
    assert all(t.user_attrs["error"].startswith("surplus") for t in trials if t.state == optuna.trial.TrialState.FAIL)


@pytest.mark.slow
@pytest.mark.long_running
def test_pruned_and_failing_trials_do_not_stop_the_study(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(ROOT)
    space = _space(tmp_path, {"model.init_args.optimizer.init_args.lr": {"categorical": [0.05, -1.0]}})  # lr < 0 is refused
    out = tmp_path / "study"
    args = [
        "--config",
        "configs/digits_lt_erm.yaml",
        "--space",
        space,
        "--n_trials",
        "4",
        "--out",
        str(out),
        "--seeds",
        "--pruner",
        "threshold:2.0",
        "--folds",
        "0",
    ]
    Tuner(parse_args([*args, "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2"])).run()
    trials = _trials(out)
    assert trials[0].user_attrs["recipe"] == "base" and trials[0].state == optuna.trial.TrialState.COMPLETE  # recipes are never pruned
    sampled = trials[1:]
    states = {t.state for t in sampled}
    assert states <= {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL} and len(trials) == 4
    for t in sampled:
        if t.state == optuna.trial.TrialState.PRUNED:  # balanced accuracy is always below 2: stopped after the first epoch of 3
            assert list(t.intermediate_values) == [0]
            assert json.loads((out / "trials" / f"{t.number:04d}" / "pruned.json").read_text())["epoch"] == 0
        else:
            assert "lr must be > 0" in t.user_attrs["error"] or "Invalid learning rate" in t.user_attrs["error"]
    said = "".join(capfd.readouterr())
    assert "Traceback" not in said and "[W " not in said  # a failed trial is one line; its traceback is in its fit.log


def test_tuning_on_the_test_set_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["--config", "configs/digits_lt_erm.yaml", "--n_trials", "1", "--out", str(tmp_path), "--data.init_args.val_fraction", "0"]
    with pytest.raises(ValueError, match="tuning would select on the test set.*val_source pool"):
        Tuner(parse_args(args))


def test_several_configs_resolve_as_fit_merges_them(tmp_path, monkeypatch):
    """``tune --config a.yaml --config b.yaml`` tunes the config ``fit`` would run with both files."""
    from lt_imbalance.commands.config import resolve_config

    monkeypatch.chdir(ROOT)
    extra = tmp_path / "b.yaml"
    extra.write_text(yaml.safe_dump({"trainer": {"max_epochs": 3}, "data": {"init_args": {"batch_size": 16}}}))
    configs = ["--config", "configs/digits_lt_erm.yaml", "--config", str(extra)]
    tuner = Tuner(parse_args([*configs, "--n_trials", "1", "--out", str(tmp_path / "t"), "--trainer.max_epochs", "4"]))
    assert tuner.base["trainer"]["max_epochs"] == 4 and tuner.base["data"]["init_args"]["batch_size"] == 16  # b.yaml, then the override
    assert tuner.base == {
        **resolve_config([*configs, "--trainer.max_epochs", "4"]),
        "prior": "uniform",
    }  # + the prior trials are judged for
    cli = build_cli([*configs, "--trainer.max_epochs", "4", "--trainer.default_root_dir", str(tmp_path / "r")], run=False)
    assert cli.datamodule.batch_size == 16 and cli.trainer.max_epochs == 4


def test_data_with_its_own_validation_list_can_be_tuned(tmp_path, monkeypatch):
    """The data module is asked whether validation would be the test set: ImageNet-LT with its
    official validation list is accepted; without it (and val_fraction 0) it is refused."""
    from fakes import FAKE_LIST_COUNTS, write_fake_list_benchmark

    monkeypatch.chdir(ROOT)
    data_dir = write_fake_list_benchmark(tmp_path / "imagenet", "imagenet")
    args = [
        "--config", "configs/imagenet_lt/erm.yaml", "--n_trials", "1", "--out", str(tmp_path / "t"),
        "--data.init_args.data_dir", str(data_dir), "--data.init_args.num_classes", str(len(FAKE_LIST_COUNTS)),
        "--data.init_args.image_size", "32", "--data.init_args.resize_size", "36", "--data.init_args.batch_size", "8",
    ]  # fmt: skip
    tuner = Tuner(parse_args(args))
    assert tuner.base["data"]["init_args"]["val_list"]
    with pytest.raises(ValueError, match="tuning would select on the test set: ImageNetLT"):
        Tuner(parse_args([*args, "--data.init_args.val_list", "null", "--out", str(tmp_path / "t2")]))


def test_three_same_failures_in_a_row_before_any_completion_stop_the_study():
    from types import SimpleNamespace

    from optuna.trial import TrialState

    from lt_imbalance.tuning.study import repeated_failure

    def trial(number, state, error=""):
        return SimpleNamespace(number=number, state=state, user_attrs={"error": error} if error else {})

    fail, pruned, complete = TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE
    same = [trial(k, fail, "ValueError: boom") for k in range(3)]
    assert repeated_failure(same) == "ValueError: boom"
    assert repeated_failure(same[:2]) is None  # only two
    assert repeated_failure([*same[:2], trial(2, fail, "OSError: other")]) is None  # not the same error
    assert repeated_failure([same[0], trial(1, pruned), *same[1:]]) is None  # a pruned trial between them: it trained
    assert repeated_failure([trial(9, complete), *same]) is None  # one completed: the config can work
    assert repeated_failure([*same[:2], trial(5, fail, "interrupted: worker lost")]) is None


def test_a_base_config_that_cannot_start_stops_before_any_trial(tmp_path, monkeypatch, capfd):
    from lt_imbalance.cli import main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "study"
    args = ["tune", "--config", "configs/digits_lt.yaml", "--out", str(out), "--n_trials", "5", "--trainer.precision", "bf16-true"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capfd.readouterr().err
    assert exit_info.value.code == 2 and err.count("SAM does not support trainer.precision='bf16-true'") == 1
    assert "the base config cannot start (one batch, before any trial)" in err
    assert not (out / "trials").exists() and len(list((out / "preflight").rglob("fit.log"))) == 1


def test_the_portfolio_comes_first_each_recipe_once(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    tuner = Tuner(parse_args(["--config", "configs/digits_lt_erm.yaml", "--n_trials", "8", "--out", str(tmp_path)]))
    trials = [tuner.study.ask() for _ in range(len(tuner.space.portfolio) + 1)]
    assert [tuner.claim_recipe(t) for t in trials] == [*tuner.space.portfolio, None]  # then the sampler
    assert tuner.trial_config(trials[0]) == ({}, tuner.base)  # the base config unchanged
    overrides, config = tuner.trial_config(trials[1])
    assert overrides == {"model.init_args.loss.class_path": "BalancedSoftmaxLoss"}
    assert config["model"]["init_args"]["loss"]["class_path"] == "BalancedSoftmaxLoss"
    trials[0].set_user_attr("error", "interrupted: stopped")  # an interrupted recipe is claimed again
    tuner.study.tell(trials[0], state=optuna.trial.TrialState.FAIL)
    assert tuner.claim_recipe(tuner.study.ask()) == "base"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


@pytest.mark.slow
def test_sigterm_stops_the_running_trial_and_its_workers_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "study"
    cmd = [
        sys.executable, "-m", "lt_imbalance", "tune", "--config", "configs/digits_lt_erm.yaml", "--space", _space(tmp_path),
        "--out", str(out), "--n_trials", "2", "--seeds", "--trainer.max_epochs", "8", "--data.init_args.num_workers", "1", "--folds", "0",
    ]  # fmt: skip
    tuner = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not (out / "trials" / "0000" / "objective.json").is_file():  # the first trial has trained an epoch
        assert time.time() < deadline and tuner.poll() is None, tuner.stdout.read() if tuner.poll() is not None else "no trial started"
        time.sleep(0.5)
    assert _processes_mentioning(str(out / "trials" / "0000"))  # the trial's fit (and its loader worker) run
    tuner.send_signal(signal.SIGTERM)
    printed, _ = tuner.communicate(timeout=120)
    assert tuner.returncode == 128 + signal.SIGTERM, printed
    assert "starting no new trial" in printed and "The same command resumes the study" in printed
    time.sleep(1)
    assert _processes_mentioning(str(out)) == []  # no orphaned trial process or loader worker
    first = {t.number: t for t in _trials(out)}[0]
    assert first.state == optuna.trial.TrialState.FAIL and first.user_attrs["error"].startswith("interrupted")
    resumed = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = _trials(out)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 2
    assert [t.user_attrs.get("recipe") for t in trials if t.state == optuna.trial.TrialState.COMPLETE][0] == "base"  # re-run
    assert "  trial 1: epoch 0, val/balanced_acc" in resumed.stdout  # progress after every epoch


@pytest.mark.slow
def test_sigterm_during_the_retrains_stops_them_and_the_same_command_finishes_them(tmp_path):
    out = tmp_path / "study"
    cmd = [
        sys.executable, "-m", "lt_imbalance", "tune", "--config", "configs/digits_lt_erm.yaml", "--space", _space(tmp_path),
        "--out", str(out), "--n_trials", "1", "--seeds", "1", "--trainer.max_epochs", "8", "--data.init_args.num_workers", "1",
        "--folds", "0",
    ]  # fmt: skip
    # (seed 1: a real fit; for seed 0, the trials' seed, the retrain would reuse the trial's checkpoint)
    tuner = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not _processes_mentioning(str(out / "retrain")):  # a retrain's fit runs
        assert time.time() < deadline and tuner.poll() is None, tuner.stdout.read() if tuner.poll() is not None else "no retrain started"
        time.sleep(0.5)
    time.sleep(3)  # into its training
    tuner.send_signal(signal.SIGTERM)
    printed, _ = tuner.communicate(timeout=120)
    assert tuner.returncode == 128 + signal.SIGTERM, printed
    assert "stopping 1 running" in printed and "stopped during the retrains" in printed, printed
    time.sleep(1)
    assert _processes_mentioning(str(out)) == []  # no retrain fit or loader worker left behind
    assert not (out / "report.md").exists() and not list((out / "retrain").rglob("result.json"))
    resumed = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "## The answers on the test set" in (out / "report.md").read_text()
    assert len(list((out / "retrain").rglob("result.json"))) == 1  # best = base: one config, one seed
