"""Bad inputs through the command, one row each: the command, its exit status, and the words its
message must hold; then the cases that were silently wrong, each checked for what it now does."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import write_image_folder
from helpers import run_command
from lt_imbalance.cli import main

ROOT = Path(__file__).resolve().parents[1]
ERM = str(ROOT / "configs/digits_lt_erm.yaml")


@pytest.fixture
def prior_files(tmp_path) -> dict[str, Path]:
    twice = tmp_path / "twice.csv"
    twice.write_text("class,share\n" + "".join(f"{c},0.1\n" for c in range(10)) + "3,0.5\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- trainer\n- model\n")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01\x02 not yaml")
    (tmp_path / "space.yaml").write_text("model.init_args.los.class_path: {categorical: [CrossEntropy]}\n")
    (tmp_path / "truncated.ckpt").write_bytes(b"PK\x03\x04 a zip cut short")
    (tmp_path / "table.csv").write_text("pixel\n1\n")
    (tmp_path / "types.yaml").write_text("data.init_args.batch_size: {categorical: [big, small]}\n")
    (tmp_path / "sizes.yaml").write_text("data.init_args.batch_size: {int: [-8, 0]}\n")
    (tmp_path / "policies.yaml").write_text("data.init_args.augmentation: {categorical: [standard, stronk]}\n")
    (tmp_path / "png.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    names = ("empty", "list", "binary", "space", "truncated", "table", "png", "sizes", "policies", "types")
    suffix = {"truncated": ".ckpt", "table": ".csv"}
    return {"twice": twice, **{n: tmp_path / f"{n}{suffix.get(n, '.yaml')}" for n in names}}


def _cases(ckpt: Path, tmp: Path, files: dict[str, Path]) -> list[tuple[list[str], int, list[str]]]:
    root = ["--trainer.default_root_dir", str(tmp / "runs")]
    cut = tmp / "cut.ckpt"  # a real checkpoint's first 20 KB
    cut.write_bytes(ckpt.read_bytes()[:20000])
    return [
        (["test", "--config", ERM, *root], 2, ["test needs a trained model", "--ckpt_path", "--untrained true"]),
        (["validate", "--config", ERM, *root], 2, ["validate needs a trained model"]),
        (["test", "--config", ERM, "--ckpt_path", "last", "--trainer.default_root_dir", str(tmp / "empty")], 2, ["no last.ckpt under"]),
        (["test", "--config", ERM, "--ckpt_path", str(tmp / "missing.ckpt"), *root], 2, ["not found"]),
        (["predict", "--ckpt_path", str(ckpt), "--input", "x", "--prior", str(files["twice"])], 2, ["class '3' is listed twice"]),
        (["predict", "--ckpt_path", str(ckpt), "--input", "x", "--output", str(tmp / "p.parquet")], 2, ["writes a CSV", "ending in .csv"]),
        (["predict", "--ckpt_path", str(ckpt), "--input", "x", "--num_workers", "-1"], 2, ["--num_workers must be 0"]),
        (["predict", "--config", ERM, "--ckpt_path", str(ckpt)], 2, ["predict takes no --config", "lt-imbalance predict --ckpt_path"]),
        (["export", "--ckpt_path", str(ckpt), "--out", str(tmp / "m.pt"), "--prior", "estimate"], 2, ["no inputs to estimate from"]),
        (["fit", "--config", str(tmp / "missing.yaml")], 2, ["config", "missing.yaml' not found", "lt-imbalance configs"]),
        (["fit", "--config", str(files["empty"])], 2, ["is empty", "trainer:, model: and data:"]),
        (["fit", "--config", str(files["list"])], 2, ["holds a list, not a mapping"]),
        (["fit", "--config", str(files["binary"])], 2, ["is not valid YAML"]),
        (["fit", "--config", ERM, "--trainer.strategy", "dpp", *root], 2, ["trainer.strategy 'dpp' is not one Lightning knows", "ddp"]),
        (["fit", "--config", ERM, "--trainer.max_epochs", "-2", *root], 2, ["trainer.max_epochs is -2", "-1 to train"]),
        (["fit", "--config", ERM, "--data.init_args.split_seed", "-1", *root], 2, ["split_seed must be 0 or more"]),
        (["fit", "--config", ERM, "--data.init_args.num_workers", "-1", *root], 2, ["num_workers must be 0"]),
        (["fit", "--config", ERM, "--data", "DigitLT", *root], 2, ["data 'DigitLT' is not a data module", "DigitsLT", "TabularLT"]),
        (["fit", "--config", ERM, "--model.init_args.optimizer.init_args.lr", "fast", *root], 2,
         ["model.init_args.optimizer.init_args.lr: expected float, got 'fast'"]),
        (["fit", *root], 2, ["fit needs a config", "--config configs/digits_lt.yaml"]),
        (["test", "--config", ERM, "--ckpt_path", str(files["truncated"]), *root], 2, ["cannot be read: it is truncated"]),
        (["test", "--config", ERM, "--ckpt_path", str(cut), *root], 2, ["cannot be read: it is truncated", "copy it again"]),
        (["predict", "--ckpt_path", str(tmp / "gone.ckpt"), "--input", "x"], 2, ["checkpoint", "gone.ckpt' not found"]),
        (["predict", "--ckpt_path", str(ckpt), "--input", "x", "--output", str(tmp), "--overwrite"], 2, ["give a path ending in .csv"]),
        (["tune", "--config", ERM, "--space", str(files["space"]), "--out", str(tmp / "tune"), "--n_trials", "1"], 2,
         ["'model.init_args.los.class_path' does not fit the config", "no option 'los.class_path'"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune2"), "--target-prior", "estimate"], 2,
         ["--target-prior estimate: trials are judged for one fixed class mix", "give uniform, train or a file"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune3"), "--target-prior", "unifrom"], 2,
         ["--target-prior 'unifrom' is neither uniform, train nor an existing file"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune4"), "--folds", "1"], 2,
         ["--folds 1: cross-fitting needs at least 2 folds (0 turns it off)"]),
        (["fit", "--config", ERM, "--trainer.max_time", "soon", *root], 2, ["trainer.max_time 'soon' is not a duration"]),
        (["fit", "--config", str(files["png"])], 2, ["is not a text file (byte 0 is b'\\x89'", "give the YAML file"]),
        (["validate", "--config", ERM, "--ckpt_path", str(ckpt), "--data.init_args.val_fraction", "0", *root], 2,
         ["validate scores the validation split, and this config has none", "lt-imbalance test"]),
        (["tune", "--config", ERM, "--space", str(files["types"]), "--out", str(tmp / "tune11")], 2,
         ["search-space entry 'data.init_args.batch_size' does not fit the config: data.init_args.batch_size: expected int, got 'big'"]),
        (["tune", "--config", ERM, "--space", str(files["sizes"]), "--out", str(tmp / "tune9")], 2,
         ["search-space entry 'data.init_args.batch_size': the value -8 is refused: batch_size must be >= 1"]),
        (["tune", "--config", ERM, "--space", str(files["policies"]), "--out", str(tmp / "tune10")], 2,
         ["the value 'stronk' is refused: unknown augmentation policy 'stronk'"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune5"), "--timeout", "-5"], 2, ["--timeout -5: give the seconds", "more than 0"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune6"), "--seeds", "-1"], 2, ["--seeds -1: the retrains' seeds are 0 or more"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune7"), "--storage", "bogus://x"], 2,
         ["--storage bogus://x: not a study storage", "sqlite:///PATH.db, journal:PATH"]),
        (["tune", "--config", ERM, "--out", str(tmp / "tune8"), "--storage", f"sqlite:///{tmp}/missing_dir/x.db"], 2,
         ["missing_dir does not exist; create it"]),
        (["sweep", ERM, "--jobs-per-device", "0", "--out", str(tmp / "sweep")], 2, ["--jobs-per-device 0: give 1 or more"]),
        (["sweep", ERM, "--devices", "0,99", "--out", str(tmp / "sweep2")], 2, ["--devices 0,99: this machine has", "leave --devices out"]),
        (["export", "--ckpt_path", str(ckpt), "--out", str(ckpt), "--format", "torchscript", "--overwrite"], 2,
         ["would replace the checkpoint being exported", "choose another --out"]),
        (["export", "--ckpt_path", str(ckpt), "--out", str(tmp), "--format", "onnx", "--overwrite"], 2, ["is a folder; give a file in it"]),
        (["predict", "--ckpt_path", str(ckpt), "--input", str(files["table"]), "--output", str(files["table"]), "--overwrite"], 2,
         ["is the --input file", "the input is never replaced"]),
        # run, but rarely meant: warned (max_epochs 0 then stops the run before it trains)
        (["fit", "--config", ERM, "--optimizer", "Adam", "--trainer.max_epochs", "0", *root], 2,
         ["warning: --optimizer Adam replaces the model's optimizer and its learning-rate schedule"]),
        (["fit", "--config", ERM, "--model.init_args.optimizer.init_args.lr", "0", "--trainer.max_epochs", "0", *root], 2,
         ["warning: model.init_args.optimizer has lr 0: the weights will never change"]),
        (["fit", "--config", ERM, "--trainer.accelerator", "cpu", "--trainer.devices", "64", "--trainer.max_epochs", "0", *root], 2,
         ["warning: trainer.devices 64 on a CPU with", "set trainer.devices 1"]),
    ]  # fmt: skip


def test_each_bad_input_gets_its_exit_status_and_message(digits_checkpoint, tmp_path, prior_files, capfd):
    for argv, status, words in _cases(digits_checkpoint, tmp_path, prior_files):
        code, said = run_command(argv, capfd)
        assert code == status, (argv, said)
        assert "Traceback" not in said and len(said.strip().splitlines()) <= 15, (argv, said)
        for word in words:
            assert word in said, (argv, word, said)


def test_test_takes_a_run_folder_or_untrained_on_request(digits_checkpoint, tmp_path, capfd):
    run_folder = digits_checkpoint.parents[1]
    for folder, how in (("a", ["--ckpt_path", str(run_folder)]), ("b", ["--untrained", "true"])):
        code, said = run_command(["test", "--config", ERM, *how, "--trainer.default_root_dir", str(tmp_path / folder)], capfd)
        assert code == 0 and "| balanced accuracy |" in next((tmp_path / folder).rglob("results_test.md")).read_text(), said


def test_an_integer_batch_limit_is_a_number_of_batches(tmp_path):
    main(["fit", "--config", ERM, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches=1"]
         + ["--test_after_fit", "false", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])  # fmt: skip
    stored = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)
    assert stored["global_step"] == 1  # one batch, not the whole epoch (13 batches)


def test_a_failed_predict_leaves_no_file_and_the_rerun_works(digits_checkpoint, tmp_path, capfd):
    images = tmp_path / "images"
    write_image_folder(images, {"a": 3}, size=8, modes=("L",))
    broken = next(images.rglob("*.png"))
    broken.write_bytes(b"not an image")
    out = tmp_path / "p.csv"
    code, said = run_command(
        ["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(images), "--output", str(out), "--strict"], capfd
    )
    assert code != 0 and not out.exists() and not list(tmp_path.glob("*.partial"))
    broken.unlink()
    code, said = run_command(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(images), "--output", str(out)], capfd)
    assert code == 0 and len(list(csv.DictReader(open(out)))) == 2


def test_a_table_with_an_infinite_or_text_value_is_refused_at_its_row(train_checkpoint, tmp_path_factory, tmp_path, capfd):
    import pandas as pd

    from lt_imbalance.data.readers.tables import load_builtin

    ckpt = train_checkpoint(tmp_path_factory, "configs/tabular/erm.yaml")
    frame, _ = load_builtin("penguins")
    numeric = next(c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]))
    bad = frame.copy()
    bad.loc[5, numeric] = np.inf
    bad.to_csv(tmp_path / "inf.csv", index=False)
    code, said = run_command(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "inf.csv"), "--output", str(tmp_path / "a.csv")], capfd
    )
    assert code == 2 and f"row 5 (line 7 of a CSV with a header): column {numeric!r}" in said and "is infinite" in said
    assert not (tmp_path / "a.csv").exists()
    text = frame.astype({numeric: object})
    text.loc[2, numeric] = "n/a?"
    text.to_csv(tmp_path / "text.csv", index=False)
    code, said = run_command(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "text.csv"), "--output", str(tmp_path / "b.csv")], capfd
    )
    assert code == 2 and "row 2" in said and "is not a number" in said
    (tmp_path / "zero.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text(",".join(frame.columns) + "\n")
    for name, words in (("zero", "is empty (no header, no rows)"), ("header", "has no rows (columns: [")):
        code, said = run_command(
            ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / f"{name}.csv"), "--output", str(tmp_path / "z.csv")], capfd
        )
        assert code == 2 and words in said and "Traceback" not in said and not (tmp_path / "z.csv").exists(), said
    far = frame.copy()
    far.loc[3, numeric] = -1e30
    far.to_csv(tmp_path / "far.csv", index=False)
    code, said = run_command(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "far.csv"), "--output", str(tmp_path / "c.csv")], capfd
    )
    assert code == 0 and f"predict: warning: '{tmp_path / 'far.csv'}', row 3 (line 5 of a CSV with a header): column {numeric!r}" in said
    assert "1 such rows are predicted by extrapolation" in said
    bad.to_csv(tmp_path / "train.csv", index=False)
    code, said = run_command(
        ["fit", "--config", "configs/tabular/erm.yaml", "--data.init_args.builtin", "null", "--data.init_args.path", str(tmp_path / "train.csv")]
        + ["--data.init_args.target", "species", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "r")],
        capfd,
    )  # fmt: skip
    assert code == 2 and "is infinite" in said and "Traceback" not in said


def test_a_16_bit_image_is_scaled_not_clipped_to_white(digits_checkpoint, tmp_path):
    """A 16-bit grey PNG of a digit decodes as its 8-bit twin (Pillow's own conversion clips every value
    above 255 to white, and every image was predicted as one class)."""
    from PIL import Image

    from lt_imbalance.data.datasets import ImageFileDataset

    ramp = np.tile(np.arange(0, 65536, 4096, dtype=np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "wide.png")
    Image.fromarray(np.round(ramp / 257).astype(np.uint8)).save(tmp_path / "narrow.png")  # 4096 / 257 = 15.9 -> 16
    files = ImageFileDataset([tmp_path / "wide.png", tmp_path / "narrow.png"], torch.zeros(2), 16, 1)
    wide, narrow = files.load(0), files.load(1)
    assert torch.equal(wide, narrow) and int(wide.max()) == 239 and int(wide.min()) == 0
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(OSError, match="floating-point pixels"):
        ImageFileDataset([tmp_path / "float.tiff"], torch.zeros(1), 16, 1).load(0)


def test_a_config_mistake_is_answered_before_the_framework_is_imported(tmp_path):
    """What makes `fit --config missing.yaml` answer at once: torch and Lightning are never imported."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom lt_imbalance.cli import main\n"
        f"try:\n    main(['fit', '--config', {str(tmp_path / 'missing.yaml')!r}])\nexcept SystemExit as stop:\n    print(stop.code)\n"
        "print(sorted(m for m in ('torch', 'lightning', 'jsonargparse') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2", "[]"]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (PermissionError(13, "Permission denied", "/data/out/p.csv"), ["cannot write '/data/out/p.csv': permission denied"]),
        (
            "You restored a checkpoint with current_epoch=30, but you have set Trainer(max_epochs=10).",
            ["already trained 30 epochs", "max_epochs (10)", "the config it was trained with"],
        ),
        ("`max_epochs` must be a non-negative integer or -1. You passed in -2.", ["trainer.max_epochs is -2"]),
        (
            "`Timer(duration='soon')` is not a valid duration. Expected a string in the format DD:HH:MM:SS.",
            ["trainer.max_time 'soon' is not a duration", "DD:HH:MM:SS"],
        ),
        (PermissionError(1, "Operation not permitted", "/data/out/m.onnx"), ["cannot write '/data/out/m.onnx': operation not permitted"]),
        (OSError(28, "No space left on device", "/data/out/last.ckpt"), ["the disk is full (writing '/data/out/last.ckpt')"]),
    ],
)
def test_library_errors_about_the_input_are_translated(error, words):
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from lt_imbalance.user_errors import describe_user_error

    said = describe_user_error(MisconfigurationException(error) if isinstance(error, str) else error)
    assert said is not None and all(w in said for w in words), said


def test_images_far_from_the_training_size_are_predicted_with_a_warning(digits_checkpoint, tmp_path, capfd):
    write_image_folder(tmp_path / "big", {"a": 2}, size=32, modes=("L",))
    code, said = run_command(
        ["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "big"), "--output", str(tmp_path / "p.csv")], capfd
    )
    assert code == 0 and "warning: the inputs are 32 px on their shorter side" in said and "trained on 8 px images" in said
    write_image_folder(tmp_path / "small", {"a": 2}, size=8, modes=("L",))
    code, said = run_command(
        ["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "small"), "--output", str(tmp_path / "q.csv")], capfd
    )
    assert code == 0 and "warning" not in said


def test_the_data_modules_an_error_lists_are_the_shipped_ones():
    import lt_imbalance.data as data
    from lt_imbalance.user_errors import DATA_MODULES

    bases = {"LongTailedDataModule", "ImageDataModule", "FileImageDataModule", "FileListDataModule"}
    shipped = {n for n in data.__all__ if isinstance(getattr(data, n), type) and issubclass(getattr(data, n), data.LongTailedDataModule)}
    assert set(DATA_MODULES) == shipped - bases


#: how every line our commands print begins (the results tables and their notes included)
OUR_LINES = (
    "run folder:", "  results:", "  checkpoint:", "calibration:", "### ", "| ", "|---", "Worst classes:", "**",
    "predict:", "export:", "lt-imbalance ",
)  # fmt: skip


def test_without_verbose_only_our_own_lines_are_printed(digits_checkpoint, tmp_path):
    """fit of the default config for one epoch, and test, validate, predict and export of a digits
    checkpoint: every line begins with one of :data:`OUR_LINES` (no library's log line or
    warning); the progress bar is off here."""
    import os
    import subprocess
    import sys

    write_image_folder(tmp_path / "images", {"a": 2}, size=8, modes=("L",))
    quiet = ["--trainer.enable_progress_bar", "false"]
    commands = {
        "fit": ["fit", "--config", "configs/digits_lt.yaml", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "f"), *quiet],
        "test": ["test", "--config", ERM, "--ckpt_path", str(digits_checkpoint), "--trainer.default_root_dir", str(tmp_path / "t"), *quiet],
        "validate": ["validate", "--config", ERM, "--ckpt_path", str(digits_checkpoint), "--trainer.default_root_dir", str(tmp_path / "v"), *quiet],
        "predict": ["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "p.csv")],
        "export": ["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "m.onnx")],
    }  # fmt: skip
    environment = {**os.environ, "LT_IMBALANCE_VERBOSE": "", "OMP_NUM_THREADS": "1"}
    for name, argv in commands.items():
        out = subprocess.run([sys.executable, "-m", "lt_imbalance", *argv], cwd=ROOT, env=environment, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        strangers = [line for line in lines if not line.startswith(OUR_LINES)]
        assert lines and strangers == [], (name, strangers)
    validation = next((tmp_path / "v").rglob("results_val.md")).read_text()
    assert "### ImbalancedClassifier on DigitsLT: validation split" in validation  # validate: our table, not Lightning's box


def test_an_ensemble_file_is_refused_where_it_cannot_serve(digits_checkpoint, tmp_path, capfd):
    """An ensemble file given to `fit` (it is not trained; its members are) or to `test` with another
    dataset's config: exit 2 with the fix, no traceback."""
    from lt_imbalance.ensemble_classifier import save_ensemble
    from lt_imbalance.inference.ensemble_builder import build_ensemble

    ensemble = save_ensemble(build_ensemble([(digits_checkpoint, 1.0), (digits_checkpoint, 1.0)], "uniform"), tmp_path / "e.ckpt")
    root = ["--trainer.default_root_dir", str(tmp_path / "runs")]
    code, said = run_command(["fit", "--config", ERM, "--ckpt_path", str(ensemble), "--trainer.max_epochs", "1", *root], capfd)
    assert code == 2 and "an ensemble is not trained: its members are" in said and "Traceback" not in said
    assert not (tmp_path / "runs").exists()  # the refusal left no run folder
    code, said = run_command(["test", "--config", str(ROOT / "configs/tabular/erm.yaml"), "--ckpt_path", str(ensemble), *root], capfd)
    assert code == 2 and "was trained on 10 classes" in said and "Traceback" not in said


def test_a_second_study_in_the_same_out_is_refused_through_the_command(tmp_path, capfd, monkeypatch):
    """`tune --out DIR --study other` (and another config, or --direction minimize on a resume) where
    DIR holds a study: exit 2 with the fix, and none of that study's files changed."""
    import yaml

    from lt_imbalance.tuning.settings import parse_args
    from lt_imbalance.tuning.study import Tuner

    monkeypatch.chdir(ROOT)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16, 32]}}))
    out = tmp_path / "study"
    command = ["--config", ERM, "--out", str(out), "--space", str(space), "--folds", "0"]
    Tuner(parse_args(command))  # the study this folder holds
    (out / "report.md").write_text("the first study's report")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for extra, words in (
        (["--study", "other"], "study 'other' (the study's: 'lt-imbalance')"),
        (["--data.init_args.imbalance_ratio", "20"], "another base config"),
        (["--direction", "minimize"], "direction 'minimize' (the study's: 'maximize')"),
    ):
        code, said = run_command(["tune", *command, *extra], capfd)
        assert code == 2 and words in said and "Start it in a new --out" in said and "Traceback" not in said, said
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
