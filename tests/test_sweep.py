"""The experiment runner on a tiny grid: 2 configs x 2 seeds, a few batches each."""

import csv
import json
from pathlib import Path

import pytest

from lt_imbalance import sweep
from lt_imbalance.errors import BadValue, MissingFile

ROOT = Path(__file__).resolve().parents[1]
EXTRA = "--trainer.max_epochs 1 --trainer.limit_train_batches 2 --trainer.limit_val_batches 1"


def test_grid_expansion_and_cell_names():
    assert sweep.parse_sets(["a.b=1,2", "c=x"]) == [(("a.b", "1"), ("c", "x")), (("a.b", "2"), ("c", "x"))]
    runs = sweep.build_grid(["configs/cifar10_lt/erm.yaml", "configs/cifar100_lt/erm.yaml"], ["data.init_args.batch_size=32,64"], [0, 1])
    assert len(runs) == 8
    assert runs[0].cell == "cifar10_lt_erm__batch_size=32"
    with pytest.raises(BadValue, match="KEY=VALUE"):  # library functions raise; only the entry point exits
        sweep.parse_sets(["oops"])
    with pytest.raises(MissingFile, match="not found"):
        sweep.build_grid(["nope.yaml"], [], [0])


def test_sweep_checks_every_cell_before_the_first_run(tmp_path, capsys):
    from lt_imbalance.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "configs/digits_lt_erm.yaml", "--set", "data.init_args.batch_size=32,abc", "--out", str(tmp_path / "s")])
    assert exit_info.value.code == 2 and "data.init_args.batch_size: expected int, got 'abc'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # nothing ran


def test_mean_and_standard_error():
    mean, se = sweep.mean_se([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7) and se == pytest.approx(0.2 / 3**0.5)
    records = [{"cell": "erm", "metrics": {"balanced_acc": 0.9}}]  # one seed: no spread to show
    assert "| erm | 1 | 90.0 ± n/a | n/a |" in sweep.summary_table(records)


@pytest.mark.slow
@pytest.mark.long_running
def test_tiny_grid_writes_table_csv_plots_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    args = ["configs/digits_lt_erm.yaml", "configs/tabular/erm.yaml", "--seeds", "0", "1", "--out", str(tmp_path), "--extra", EXTRA]
    sweep.main(args)
    printed = capsys.readouterr()
    assert not [line for line in (printed.out + printed.err).splitlines() if "Warning" in line or "Seed set" in line]  # quiet
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert len(rows) == 4 and {r["cell"] for r in rows} == {"digits_lt_erm", "erm"}
    table = (tmp_path / "table.md").read_text()
    assert table.count("±") == 10 and "| digits_lt_erm | 2 |" in table  # 5 metrics x 2 cells; no many-shot class: n/a
    assert "n/a" in table
    assert (tmp_path / "per_class.png").stat().st_size > 0 and (tmp_path / "groups.png").stat().st_size > 0
    done = json.loads((tmp_path / "digits_lt_erm" / "seed1" / "result.json").read_text())
    assert done["seed"] == 1 and len(done["per_class_acc"]) == 10
    # a second call finds every run finished and starts no process
    monkeypatch.setattr(sweep.FitProcesses, "run", lambda *a, **k: pytest.fail("a finished run was started again"))
    capsys.readouterr()
    sweep.main(args)
    assert capsys.readouterr().out.count("already done") == 4


def test_dispatch_to_devices_runs_one_job_per_device_slot(tmp_path, monkeypatch):
    import threading
    import time

    runs = sweep.build_grid(["configs/digits_lt_erm.yaml"], [], [0, 1, 2, 3])
    assert "--trainer.accelerator" in runs[0].command(tmp_path, "1", []) and "--trainer.accelerator" not in runs[0].command(
        tmp_path, None, []
    )
    active, peak, seen, lock = [0], [0], [], threading.Lock()

    def fake_execute(run, out, device, extra, threads=None, digest=None, processes=None):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            seen.append(device)
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return {"metrics": {"balanced_acc": 0.5}}

    monkeypatch.setattr(sweep, "execute", fake_execute)
    sweep.run_grid(runs, tmp_path, ["0", "1"], 1, [], log=lambda *_: None)
    assert sorted(seen) == ["0", "0", "1", "1"] and peak[0] == 2


def test_the_split_stays_the_configs_unless_redrawn(tmp_path):
    fixed = sweep.build_grid(["configs/digits_lt_erm.yaml"], [], [0, 1])
    assert all("--data.init_args.split_seed" not in r.fit_args(tmp_path, None, []) for r in fixed)
    redrawn = sweep.build_grid(["configs/digits_lt_erm.yaml"], [], [0, 1], redraw_split=True)
    args = [r.fit_args(tmp_path, None, []) for r in redrawn]
    assert [a[a.index("--data.init_args.split_seed") + 1] for a in args] == ["0", "1"]


def _fake_fit(calls: list, fail: set, silent: frozenset = frozenset()):
    """A stand-in for running a fit process (``FitProcesses.run``): writes a results_test.json, fails
    for the cells in ``fail``, and exits 0 without writing anything for those in ``silent``."""

    def run(self, name, cmd, env, folder):
        root = Path(cmd[cmd.index("--trainer.default_root_dir") + 1])
        calls.append(root.parent.name)
        if root.parent.name in fail:
            (folder / "fit.log").write_text("Traceback ...\nlt_imbalance.errors.BadValue: batch_size must be >= 1\n")
            return 1, False
        (folder / "fit.log").write_text("")
        if root.parent.name in silent:
            return 0, False
        version = root / f"version_{len(list(root.glob('version_*')))}"  # like a real fit: a new folder each time
        version.mkdir(parents=True)
        result = {"metrics": {"balanced_acc": 0.5, "acc": 0.6}, "per_class_acc": [0.5] * 10, "class_counts": list(range(10, 0, -1))}
        (version / "results_test.json").write_text(json.dumps(result))
        return 0, False

    return run


def test_a_finished_run_is_reused_only_with_the_same_resolved_config(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    calls: list = []
    monkeypatch.setattr(sweep.FitProcesses, "run", _fake_fit(calls, set()))
    args = ["configs/digits_lt_erm.yaml", "--seeds", "0", "--out", str(tmp_path / "s"), "--extra", "--trainer.max_epochs 2"]
    assert sweep.main(args) == 0 and calls == ["digits_lt_erm"]
    assert sweep.main(args) == 0 and calls == ["digits_lt_erm"]  # same resolved config: reused
    changed = [*args[:-1], "--trainer.max_epochs 3"]
    assert sweep.main(changed) == 0 and calls == ["digits_lt_erm"] * 2  # --extra changed: run again
    record = json.loads((tmp_path / "s" / "digits_lt_erm" / "seed0" / "result.json").read_text())
    assert record["split"] == "the config's" and len(record["config_hash"]) == 16


def test_a_fit_that_exits_0_without_results_is_a_failure_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    calls: list = []
    monkeypatch.setattr(sweep.FitProcesses, "run", _fake_fit(calls, set(), frozenset({"digits_lt_erm"})))
    out = tmp_path / "s"
    assert sweep.main(["configs/digits_lt_erm.yaml", "--seeds", "0", "--out", str(out)]) == 1
    failed = json.loads((out / "digits_lt_erm" / "seed0" / "failed.json").read_text())
    assert failed["error"] == "the fit exited 0 but wrote no results_test.json"
    assert not (out / "digits_lt_erm" / "seed0" / "result.json").exists()


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch, capsys):
    from lt_imbalance.cli import main

    monkeypatch.chdir(ROOT)
    calls: list = []
    monkeypatch.setattr(sweep.FitProcesses, "run", _fake_fit(calls, {"digits_lt_erm__batch_size=16"}))
    out = tmp_path / "s"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "configs/digits_lt_erm.yaml", "--set", "data.init_args.batch_size=16,32", "--seeds", "0", "--out", str(out)])
    assert exit_info.value.code == 1 and len(calls) == 2
    printed = capsys.readouterr().out
    assert "1 of 2 runs failed: digits_lt_erm__batch_size=16 seed 0: lt_imbalance.errors.BadValue: batch_size must be >= 1" in printed
    assert "| digits_lt_erm__batch_size=32 | 1 |" in (out / "table.md").read_text()
    assert json.loads((out / "digits_lt_erm__batch_size=16" / "seed0" / "failed.json").read_text())["error"].endswith(">= 1")


def test_a_stop_signal_starts_no_new_run_and_the_same_command_runs_the_rest(tmp_path, monkeypatch, capsys):
    import signal

    monkeypatch.chdir(ROOT)
    calls: list = []
    finish = _fake_fit(calls, set())

    def stopped_mid_run(self, name, cmd, env, folder):
        calls.append(name)
        self.stop_all(signal.SIGTERM)  # the signal arrives while the first fit runs
        return -signal.SIGTERM, True

    monkeypatch.setattr(sweep.FitProcesses, "run", stopped_mid_run)
    args = ["configs/digits_lt_erm.yaml", "--seeds", "0", "1", "--out", str(tmp_path / "s")]
    assert sweep.main(args) == 128 + signal.SIGTERM and calls == ["digits_lt_erm seed 0"]  # seed 1 never started
    printed = capsys.readouterr().out
    assert "starting no new trial or run" in printed and "the same command runs the rest" in printed
    assert not list((tmp_path / "s").rglob("failed.json")) and not list((tmp_path / "s").rglob("result.json"))
    monkeypatch.setattr(sweep.FitProcesses, "run", finish)
    assert sweep.main(args) == 0 and len(calls) == 3  # both seeds run now
