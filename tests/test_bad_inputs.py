"""Bad inputs through the command, one row each: the command, its exit status, and the words its
message must hold; then the cases that were silently wrong, each checked for what it now does."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import write_image_folder
from lt_imbalance.cli import main

ROOT = Path(__file__).resolve().parents[1]
ERM = str(ROOT / "configs/digits_lt_erm.yaml")


def _run(argv: list[str], capfd) -> tuple[int, str]:
    """``lt-imbalance ARGV`` in this process: its exit status and what it said (Lightning's info
    lines go to a handler made before the capture, so the file descriptors are read)."""
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capfd.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def prior_files(tmp_path) -> dict[str, Path]:
    twice = tmp_path / "twice.csv"
    twice.write_text("class,share\n" + "".join(f"{c},0.1\n" for c in range(10)) + "3,0.5\n")
    return {"twice": twice}


def _cases(ckpt: Path, tmp: Path, files: dict[str, Path]) -> list[tuple[list[str], int, list[str]]]:
    root = ["--trainer.default_root_dir", str(tmp / "runs")]
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
    ]


def test_each_bad_input_gets_its_exit_status_and_message(digits_checkpoint, tmp_path, prior_files, capfd):
    for argv, status, words in _cases(digits_checkpoint, tmp_path, prior_files):
        code, said = _run(argv, capfd)
        assert code == status, (argv, said)
        assert "Traceback" not in said and len(said.strip().splitlines()) <= 15, (argv, said)
        for word in words:
            assert word in said, (argv, word, said)


def test_test_takes_a_run_folder_or_untrained_on_request(digits_checkpoint, tmp_path, capfd):
    run_folder = digits_checkpoint.parents[1]
    for folder, how in (("a", ["--ckpt_path", str(run_folder)]), ("b", ["--untrained", "true"])):
        code, said = _run(["test", "--config", ERM, *how, "--trainer.default_root_dir", str(tmp_path / folder)], capfd)
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
    code, said = _run(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(images), "--output", str(out), "--strict"], capfd)
    assert code != 0 and not out.exists() and not list(tmp_path.glob("*.partial"))
    broken.unlink()
    code, said = _run(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(images), "--output", str(out)], capfd)
    assert code == 0 and len(list(csv.DictReader(open(out)))) == 2


def test_a_table_with_an_infinite_or_text_value_is_refused_at_its_row(train_checkpoint, tmp_path_factory, tmp_path, capfd):
    import pandas as pd

    from lt_imbalance.data.tabular import load_builtin

    ckpt = train_checkpoint(tmp_path_factory, "configs/tabular/erm.yaml")
    frame, _ = load_builtin("penguins")
    numeric = next(c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]))
    bad = frame.copy()
    bad.loc[5, numeric] = np.inf
    bad.to_csv(tmp_path / "inf.csv", index=False)
    code, said = _run(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "inf.csv"), "--output", str(tmp_path / "a.csv")], capfd
    )
    assert code == 2 and f"row 5 (line 7 of a CSV with a header): column {numeric!r}" in said and "is infinite" in said
    assert not (tmp_path / "a.csv").exists()
    text = frame.astype({numeric: object})
    text.loc[2, numeric] = "n/a?"
    text.to_csv(tmp_path / "text.csv", index=False)
    code, said = _run(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "text.csv"), "--output", str(tmp_path / "b.csv")], capfd
    )
    assert code == 2 and "row 2" in said and "is not a number" in said
    bad.to_csv(tmp_path / "train.csv", index=False)
    code, said = _run(
        ["fit", "--config", "configs/tabular/erm.yaml", "--data.init_args.builtin", "null", "--data.init_args.path", str(tmp_path / "train.csv")]
        + ["--data.init_args.target", "species", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "r")],
        capfd,
    )  # fmt: skip
    assert code == 2 and "is infinite" in said and "Traceback" not in said
