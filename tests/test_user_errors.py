"""The command prints a user's mistake as one short block (what is wrong and the fix) and keeps the
traceback for programming errors or when LT_IMBALANCE_TRACEBACK=1 is set."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import write_image_folder
from lt_imbalance.cli import main
from lt_imbalance.user_errors import describe_user_error

ROOT = Path(__file__).resolve().parents[1]
FIT = ["fit", "--config", "configs/digits_lt.yaml", "--trainer.max_epochs", "1"]


def _command(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "LT_IMBALANCE_TRACEBACK"}
    environment.update(OMP_NUM_THREADS="1", **env)
    cmd = [sys.executable, "-m", "lt_imbalance", *args, "--trainer.default_root_dir", str(tmp_path / "runs")]
    return subprocess.run(cmd, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def _check_short(code, text: str, says: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text and "Expected a <class 'NoneType'>" not in text and "Given value" not in text, text
    assert len(text.strip().splitlines()) <= 15, text
    assert re.search(says, text), text
    assert "LT_IMBALANCE_TRACEBACK=1" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (FIT + ["--data.init_args.batch_size", "abc"], "data.init_args.batch_size: expected int, got 'abc'"),
        (FIT + ["--data.init_args.nosuchkey", "3"], "Option 'nosuchkey' is not accepted"),
        (FIT + ["--data.init_args.imbalance_ratio", "0.5"], "imbalance_ratio must be a finite number >= 1"),
        (FIT + ["--model.init_args.loss", "nosuch"], "unknown loss 'nosuch'; choose one of ce, focal"),
        (["fit", "--config", "configs/cifar10_lt/erm.yaml", "--data.init_args.data_dir", "/nonexistent"], "no dataset at .*download: true"),
    ],
)
def test_a_mistake_before_training_is_one_short_block(args, says, capfd, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LT_IMBALANCE_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--trainer.default_root_dir", str(tmp_path)])
    out, err = capfd.readouterr()
    _check_short(exit_info.value.code, out + err, says)


def test_a_mistake_found_by_the_trainer_is_one_short_block_with_its_messages(tmp_path):
    out = _command(FIT + ["--trainer.precision", "bf16-true"], tmp_path)
    _check_short(out.returncode, out.stdout + out.stderr, "SAM does not support trainer.precision='bf16-true'.*Use 'bf16-mixed'")


def test_a_one_class_folder_is_one_short_block(tmp_path):
    folder = write_image_folder(tmp_path / "one", {"only": 6})
    out = _command(["fit", "--data", "ImageFolderLT", "--data.root", str(folder), "--model.backbone", "digits_cnn"], tmp_path)
    _check_short(out.returncode, out.stdout + out.stderr, "a classifier needs at least two classes")


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("negative_lr", r"optimiser refused its settings: Invalid learning rate: -0.1\. Fix model.init_args.optimizer"),
        ("missing_checkpoint", r"checkpoint '.*missing.ckpt' not found; give the path of a checkpoint that training wrote"),
        ("gpu_without_gpu", r"asks for a GPU, but this machine has none .*--trainer.accelerator cpu"),
        ("malformed_space", r"search space '.*space.yaml' is not valid YAML: .* at line 2, column 3; fix the file"),
    ],
)
def test_third_party_and_file_mistakes_are_short_with_the_fix(case, says, tmp_path):
    """Errors raised by torch, Lightning or the YAML reader about the user's input, translated at the boundary."""
    erm = ["--config", "configs/digits_lt_erm.yaml", "--trainer.default_root_dir", str(tmp_path / "runs")]
    if case == "malformed_space":
        (tmp_path / "space.yaml").write_text("model.init_args.loss: {categorical: [ce, focal]\n  bad: [\n")
    args = {
        "negative_lr": ["fit", *erm, "--model.init_args.optimizer.init_args.lr", "-0.1", "--trainer.max_epochs", "1"],
        "missing_checkpoint": ["test", *erm, "--ckpt_path", str(tmp_path / "missing.ckpt")],
        "gpu_without_gpu": ["fit", *erm, "--trainer.accelerator", "gpu"],
        "malformed_space": [
            "tune",
            "--config",
            "configs/digits_lt_erm.yaml",
            "--space",
            str(tmp_path / "space.yaml"),
            "--out",
            str(tmp_path / "t"),
        ],
    }[case]
    environment = {k: v for k, v in os.environ.items() if k != "LT_IMBALANCE_TRACEBACK"}
    out = subprocess.run(
        [sys.executable, "-m", "lt_imbalance", *args], cwd=ROOT, env={**environment, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True
    )
    _check_short(out.returncode, out.stdout + out.stderr, says)


def test_typed_errors_are_user_errors_wherever_they_are_raised():
    from lt_imbalance.errors import BadValue, MissingFile, UnsupportedCombination

    for err in (BadValue("bad; fix"), MissingFile("gone; fix"), UnsupportedCombination("a with b; fix")):
        assert describe_user_error(err).startswith("lt-imbalance: error: ")
    assert isinstance(UnsupportedCombination("x"), ValueError) and isinstance(MissingFile("x"), FileNotFoundError)


def test_the_traceback_on_request(tmp_path):
    out = _command(FIT + ["--data.init_args.imbalance_ratio", "0.5"], tmp_path, LT_IMBALANCE_TRACEBACK="1")
    assert out.returncode != 0 and "Traceback" in out.stderr and "imbalance_ratio must be a finite number" in out.stderr


def test_programming_errors_keep_their_traceback():
    try:
        {}["missing"]
    except KeyError as err:
        assert describe_user_error(err) is None
    try:
        int("x")  # a ValueError raised outside lt_imbalance's code is not the user's input error
    except ValueError as err:
        assert describe_user_error(err) is None
    from lt_imbalance.data.splits import check_imbalance_ratio

    try:
        check_imbalance_ratio(0.5)
    except ValueError as err:
        assert describe_user_error(err).startswith("lt-imbalance: error: imbalance_ratio must be")


@pytest.mark.parametrize("command", ["fit", "test", "tune"])
def test_a_malformed_config_file_is_named(command, tmp_path, capfd):
    bad = tmp_path / "mine.yaml"
    bad.write_text("trainer:\n  max_epochs: 3\n model: [\n")
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--config", str(bad), *(["--out", str(tmp_path / "t")] if command == "tune" else [])])
    _check_short(
        exit_info.value.code, "".join(capfd.readouterr()), rf"config '{re.escape(str(bad))}' is not valid YAML: .* line 3, column 2"
    )


def test_configs_copy_into_a_folder_as_cp_does(tmp_path, capfd):
    main(["configs", "copy", "digits_lt.yaml", str(tmp_path)])
    assert (tmp_path / "digits_lt.yaml").read_text() == (ROOT / "configs" / "digits_lt.yaml").read_text()
    main(["configs", "copy", "tabular/erm.yaml", f"{tmp_path}/new/"])
    assert (tmp_path / "new" / "erm.yaml").is_file()
    with pytest.raises(SystemExit):  # never over a file
        main(["configs", "copy", "digits_lt.yaml", str(tmp_path)])
    assert "exists; choose another target" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (["--config", "configs/tabular/erm.yaml"], r"was trained on 10 classes, but the data of this config \(TabularLT\) has 3"),
        (
            ["--config", "configs/digits_lt_erm.yaml", "--data", "ImageFolderLT", "--data.image_size", "16", "--data.batch_size", "8"],
            r"takes inputs of shape \(1, 8, 8\), .* gives \(3, 16, 16\)",
        ),
    ],
    ids=["classes", "input-shape"],
)
def test_a_checkpoint_that_does_not_fit_the_data_is_named_first(config, says, digits_checkpoint, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(ROOT)
    if "ImageFolderLT" in config:  # ten classes, as the checkpoint, but RGB 16 x 16 images
        config = [*config, "--data.root", str(write_image_folder(tmp_path / "images", {f"c{k}": 12 for k in range(10)}))]
    with pytest.raises(SystemExit) as exit_info:
        main(["test", *config, "--ckpt_path", str(digits_checkpoint), "--trainer.default_root_dir", str(tmp_path)])
    _check_short(exit_info.value.code, "".join(capfd.readouterr()), says)
    assert not list(tmp_path.rglob("results_test.md"))
