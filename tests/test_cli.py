import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from fakes import (
    FAKE_LIST_COUNTS,
    write_fake_eurosat,
    write_fake_inaturalist,
    write_fake_list_benchmark,
    write_fake_medmnist,
    write_fake_tiny_imagenet,
)
from lt_imbalance.commands.lightning_cli import build_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name not in ("trainer", "tune"))
TRAINER_FRAGMENTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs" / "trainer").glob("*.yaml"))


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory, cifar10_dir, cifar100_dir) -> dict[str, list[str]]:
    """Per data class: CLI overrides that point a config at fake files in the real format (and fit
    its sizes: the fakes are small, so e.g. Tiny ImageNet-LT gets ratio 10 instead of 100)."""
    base = tmp_path_factory.mktemp("fake")
    tiny = write_fake_tiny_imagenet(base / "tiny", per_class=20)
    derma = write_fake_medmnist(base / "dermamnist.npz")
    eurosat = write_fake_eurosat(base / "eurosat", per_class=30)
    small = ["--data.init_args.num_workers", "0", "--data.init_args.batch_size", "8"]
    lists = [*small, "--data.init_args.num_classes", str(len(FAKE_LIST_COUNTS)), "--data.init_args.image_size", "32",
             "--data.init_args.resize_size", "36", "--trainer.precision", "32-true"]  # fmt: skip
    return {
        "CIFAR10LT": ["--data.init_args.data_dir", str(cifar10_dir), "--data.init_args.num_workers", "0"],
        "CIFAR100LT": ["--data.init_args.data_dir", str(cifar100_dir), "--data.init_args.num_workers", "0"],
        "TinyImageNetLT": ["--data.init_args.data_dir", str(tiny), "--data.init_args.imbalance_ratio", "10", *small],
        "MedMNISTLT": ["--data.init_args.path", str(derma), *small],
        "ImageNetLT": ["--data.init_args.data_dir", str(write_fake_list_benchmark(base / "imagenet", "imagenet")), *lists],
        "PlacesLT": [
            "--data.init_args.data_dir",
            str(write_fake_list_benchmark(base / "places", "places")),
            *lists,
            "--model.init_args.backbone_kwargs",
            "{pretrained: false}",  # no download in tests
        ],
        "INaturalist2018": ["--data.init_args.data_dir", str(write_fake_inaturalist(base / "inat")), *lists],
        "EuroSATLT": [
            "--data.init_args.data_dir",
            str(eurosat),
            "--data.init_args.test_per_class",
            "5",
            "--data.init_args.imbalance_ratio",
            "10",
            *small,
        ],
    }


#: backbones a config's wiring test swaps for a tiny one (each is built and run on its own in tests/models/test_backbones.py)
LARGE_BACKBONES = ("resnet", "wideresnet", "timm/")
TINY_BACKBONE = ["--model.init_args.backbone", "digits_cnn", "--model.init_args.backbone_kwargs", "{width: 4}"]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_runs_through_the_cli(config, tmp_path, fake_data, monkeypatch, request):
    """One training step and ``test`` through the command: the wiring of every shipped and generated config."""
    monkeypatch.chdir(ROOT)
    args = ["fit", "--config", config, "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]
    parsed = yaml.safe_load((ROOT / config).read_text())
    data_class = parsed["data"]["class_path"]
    tiny = TINY_BACKBONE if str(parsed["model"]["init_args"].get("backbone", "")).startswith(LARGE_BACKBONES) else []
    if config.startswith("configs/two_stage/"):  # stage 2 starts from a stage-1 run
        args += ["--trainer.callbacks.checkpoint", str(request.getfixturevalue("digits_checkpoint"))]
    cli = build_cli(args + fake_data.get(data_class, []) + tiny)
    assert cli.trainer.global_step == 1
    assert "test" in cli.model.evaluations  # fit is followed by test on the final weights


def test_default_run_writes_metadata_config_results_and_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = build_cli(["fit", "--config", "configs/digits_lt.yaml", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)])
    log_dir = Path(cli.trainer.log_dir)
    meta = json.loads((log_dir / "run_metadata.json").read_text())
    assert meta["stages"] == ["fit", "test"]
    assert meta["data"]["class_counts"] == cli.datamodule.class_counts == cli.model.class_counts
    assert meta["data"]["split_hash"] == cli.datamodule.split_hash and meta["global_seed"] == "0"
    assert meta["versions"]["torch"] and meta["data"]["test_counts"] == [50] * 10
    assert meta["data"]["input_shape"] == [1, 8, 8] and len(meta["data"]["mean"]) == 1
    assert yaml.safe_load((log_dir / "config.yaml").read_text())["data"]["init_args"]["imbalance_ratio"] == 10
    for name in ("results_val.md", "results_test.md", "results_test.json", "figures/test_per_class.png", "figures/val_per_class.png"):
        assert (log_dir / name).is_file(), name
    assert "few-shot (<20)" in (log_dir / "results_test.md").read_text()
    assert any(log_dir.glob("events.out.tfevents*"))
    assert list((log_dir / "checkpoints").glob("*.ckpt"))


def test_second_run_never_overwrites_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = ["fit", "--config", "configs/digits_lt.yaml", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    first = Path(build_cli(base).trainer.log_dir)
    before = (first / "run_metadata.json").read_text()
    second = Path(build_cli(base).trainer.log_dir)
    assert first != second and (first / "run_metadata.json").read_text() == before


def test_backbone_by_class_path(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "class_path": "ImbalancedClassifier",
                    "init_args": {"backbone": {"class_path": "lt_imbalance.models.DigitsCNN", "init_args": {"in_channels": 1, "width": 8}}},
                },
                "data": {"class_path": "DigitsLT"},
            }
        )
    )
    cli = build_cli(["fit", "--config", str(cfg), "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)])
    assert cli.model.net.backbone.out_features == 32


def test_num_classes_mismatch_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match="model.num_classes=7 disagrees with the data, which has 10 classes"):
        build_cli(["--config", "configs/digits_lt.yaml", "--model.init_args.num_classes", "7"], run=False)


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "lt_imbalance", "fit", "--help"], capture_output=True, text=True, check=True)
    assert "--test_after_fit" in out.stdout and "--data" in out.stdout


@pytest.mark.parametrize("fragment", TRAINER_FRAGMENTS)
def test_trainer_fragments_compose_with_an_experiment(fragment, monkeypatch):
    monkeypatch.chdir(ROOT)
    # parsed and instantiated on CPU (no GPU here): the strategy and sync BatchNorm settings are what is checked
    cli = build_cli(
        ["--config", "configs/digits_lt.yaml", "--config", fragment, "--trainer.accelerator", "cpu", "--trainer.devices", "2"], run=False
    )
    expected = yaml.safe_load((ROOT / fragment).read_text())["trainer"]
    assert cli.trainer.num_nodes == expected["num_nodes"]
    if expected.get("strategy") == "ddp":
        assert type(cli.trainer.strategy).__name__ == "DDPStrategy" and cli.config["trainer"]["sync_batchnorm"]


def test_ckpt_path_last_resumes_or_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.default_root_dir", str(tmp_path), "--test_after_fit", "false"]
    with pytest.raises(FileNotFoundError, match="--ckpt_path last: no last.ckpt under .* drop --ckpt_path to start afresh"):
        build_cli([*base, "--trainer.max_epochs", "1", "--ckpt_path", "last"])
    first = build_cli([*base, "--trainer.max_epochs", "1"])
    assert first.trainer.global_step > 0
    resumed = build_cli([*base, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 2 * first.trainer.global_step  # continued: one more epoch, not two


def test_fast_dev_run_leaves_nothing_that_blocks_the_next_one(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]
    build_cli(args)
    assert build_cli(args).trainer.global_step == 1  # the same smoke test again, same folder
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("calibration.json"))
    assert written == ["fast_dev_run_0/calibration.json", "fast_dev_run_1/calibration.json"]  # nothing overwritten
    assert len(list(tmp_path.rglob("*.ckpt"))) == 2  # one per run, no last-vN.ckpt piling up


def test_fit_with_zero_epochs_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match="max_epochs is 0: fit would train nothing"):
        build_cli(
            ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_epochs", "0", "--trainer.default_root_dir", str(tmp_path)]
        )
    assert not list(tmp_path.rglob("results_test.md"))


QUIET_RUN = ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
# `lt-imbalance` in a fresh interpreter, stdout and stderr merged in the order they were written
COMMAND = [sys.executable, "-m", "lt_imbalance"]
MERGED_OUTPUT = {"cwd": ROOT, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
CHATTER = ("Seed set to", "GPU available", "Tip:", "Loading `train_dataloader`", "Test metric", "| Name", "deprecated")


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_fit_says_where_its_run_is_and_nothing_else_twice(verbose, tmp_path):
    """Default: the progress bar, one results table per stage and the run folder (at the start, and
    at the end with the results tables and the checkpoint); --verbose brings Lightning's own lines back."""
    argv = [*QUIET_RUN, "--trainer.default_root_dir", str(tmp_path), *(["--verbose"] if verbose else [])]
    out = subprocess.run([*COMMAND, *argv], **MERGED_OUTPUT, check=True, env={**os.environ, "LT_IMBALANCE_VERBOSE": ""})
    text = out.stdout
    run_dir = next(tmp_path.glob("lightning_logs/version_*"))
    if verbose:
        assert "Test metric" in text and "Seed set to" in text
        return
    assert [line for line in text.splitlines() if any(c in line for c in CHATTER)] == []
    assert text.count("### ImbalancedClassifier on DigitsLT: test set") == 1
    assert text.count("### ImbalancedClassifier on DigitsLT: validation split") == 1
    assert text.index(f"run folder: {run_dir}") < text.index("Epoch 0")
    end = text[text.rindex(f"run folder: {run_dir}") :]
    assert f"results: {run_dir / 'results_test.md'}" in end and f"checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}" in end


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 1), (signal.SIGTERM, 128 + signal.SIGTERM)], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_fit_saves_last_ckpt_and_resume_continues_from_it(sig, status, tmp_path, monkeypatch):
    argv = ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_epochs", "200", "--trainer.default_root_dir", str(tmp_path)]
    proc = subprocess.Popen(
        [*COMMAND, *argv],
        **MERGED_OUTPUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a job started in the background inherits SIGINT ignored
    )
    for line in proc.stdout:  # the run folder is said before training starts
        if line.startswith("run folder:"):
            break
    first = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline:  # epoch 0 done: the signal lands in training
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(sig)
    out = proc.stdout.read()
    assert proc.wait(timeout=120) == status, out
    last = next(tmp_path.glob("lightning_logs/version_0/checkpoints/last.ckpt"))
    assert f"saved {last}; the same command with --resume true continues from it" in out
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] > 0 and saved["epoch"] < 199
    monkeypatch.chdir(ROOT)
    resumed = build_cli([*argv[:4], str(saved["epoch"] + 2), *argv[5:], "--resume", "true", "--test_after_fit", "false"])
    assert resumed.trainer.global_step > saved["global_step"] and resumed.trainer.current_epoch == saved["epoch"] + 2


def test_a_resume_with_another_loss_or_optimizer_is_refused_naming_it(tmp_path, capfd, caplog):
    """Resuming with another loss, optimizer, split or batch size would mix two trainings: refused
    with the difference and the run's own config; more epochs are said and go on."""
    from lt_imbalance.cli import main

    root = ["--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false", "--test_after_fit", "false"]
    quick = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2"]
    build_cli(["fit", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--trainer.max_epochs", "1", *quick, *root])
    for change, said in (
        (["--model.init_args.loss", "focal"], "model.init_args.loss: ce -> focal"),
        (
            ["--model.init_args.optimizer", "torch.optim.AdamW"],
            "model.init_args.optimizer.class_path: torch.optim.SGD -> torch.optim.AdamW",
        ),
        (["--data.init_args.batch_size", "7"], "data.init_args.batch_size: 64 -> 7"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(
                [
                    "fit",
                    "--config",
                    str(ROOT / "configs/digits_lt_erm.yaml"),
                    "--trainer.max_epochs",
                    "1",
                    *quick,
                    *root,
                    "--resume",
                    "true",
                    *change,
                ]
            )
        message = capfd.readouterr().err
        assert stop.value.code == 2 and said in message and "resume with the config the run started with" in message, message
    assert len(list(tmp_path.rglob("config.yaml"))) == 1  # the refusals left no run folder
    with caplog.at_level("INFO"):
        main(["fit", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--trainer.max_epochs", "2", *quick, *root, "--resume", "true"])
    assert "resume: changed since the run started (kept as given): trainer.max_epochs: 1 -> 2" in caplog.text
