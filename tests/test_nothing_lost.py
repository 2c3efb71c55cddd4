"""Nothing a user has is lost: every writer goes through a temporary file moved into place, so a
full disk or an unwritable folder leaves the earlier file (or nothing) and a short error; an output
that is one of the command's inputs is refused even with --overwrite."""

import errno
import os
from pathlib import Path

import pytest

from fakes import write_image_folder
from helpers import run_command
from lt_imbalance import output_files
from lt_imbalance.errors import CannotAccess, FileInTheWay

ROOT = Path(__file__).resolve().parents[1]


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---- the writer --------------------------------------------------------------------------------------------
def test_a_write_that_fails_leaves_the_earlier_file_and_no_partial(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("the earlier report")

    def half_then_full(partial: Path) -> None:
        partial.write_text("half of the new")
        _full_disk()

    with pytest.raises(CannotAccess, match="the disk is full: free some space") as refused:
        output_files.write_with(path, half_then_full, "the report")
    assert str(path) in str(refused.value) and "nothing was left half-written" in str(refused.value)
    assert _files(tmp_path) == {"report.md": b"the earlier report"}


@pytest.mark.parametrize(
    "code, words", [(errno.EPERM, "operation not permitted"), (errno.EACCES, "permission denied"), (errno.EROFS, "read-only")]
)
def test_an_unwritable_folder_is_said_with_the_fix(tmp_path, monkeypatch, code, words):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(CannotAccess, match=f"{words}.*write to another folder"):
        output_files.make_folder(tmp_path / "new", "the study folder")
    monkeypatch.undo()
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(CannotAccess, match=words):
        output_files.write_text(tmp_path / "a.txt", "x")
    assert _files(tmp_path) == {}


def test_a_symbolic_link_is_written_through_and_a_device_refused(tmp_path):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old")
    link.symlink_to(target)
    output_files.write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    device = tmp_path / "full"
    device.symlink_to("/dev/full")
    with pytest.raises(FileInTheWay, match="is not a regular file"):
        output_files.write_text(device, "x")
    assert Path("/dev/full").is_char_device()


def test_any_other_error_still_removes_the_partial_file(tmp_path):
    def broken(partial: Path) -> None:
        partial.write_text("half")
        raise RuntimeError("the exporter failed")

    with pytest.raises(RuntimeError):
        output_files.write_with(tmp_path / "m.onnx", broken)
    assert _files(tmp_path) == {}


# ---- through the commands ----------------------------------------------------------------------------------
def test_export_never_replaces_its_checkpoint_and_a_full_disk_leaves_nothing(digits_checkpoint, tmp_path, monkeypatch, capfd):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(digits_checkpoint.read_bytes())
    code, said = run_command(["export", "--ckpt_path", str(ckpt), "--out", str(ckpt), "--format", "torchscript", "--overwrite"], capfd)
    assert code == 2 and "would replace the checkpoint being exported" in said and ckpt.read_bytes() == digits_checkpoint.read_bytes()
    code, said = run_command(["export", "--ckpt_path", str(ckpt), "--out", str(tmp_path), "--format", "onnx", "--overwrite"], capfd)
    assert code == 2 and "is a folder; give a file in it" in said and "Traceback" not in said

    from lt_imbalance.inference import export

    def half_then_full(wrapper, spec, outputs, fmt, out):
        out.write_bytes(b"\x08\x01 the first bytes of a model")
        _full_disk()

    monkeypatch.setattr(export, "write_model", half_then_full)
    out = tmp_path / "exported" / "m.pt"
    code, said = run_command(["export", "--ckpt_path", str(ckpt), "--out", str(out)], capfd)
    assert code == 2 and "the exported model" in said and "the disk is full" in said and "Traceback" not in said
    assert _files(tmp_path / "exported") == {}


def test_predict_never_replaces_its_input_and_a_full_disk_leaves_nothing(digits_checkpoint, tmp_path, monkeypatch, capfd):
    images = tmp_path / "images"
    write_image_folder(images, {"a": 3}, size=8, modes=("L",))
    table = tmp_path / "inputs.csv"
    table.write_text("pixel\n1\n")
    code, said = run_command(
        ["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(table), "--output", str(table), "--overwrite"], capfd
    )
    assert code == 2 and "is the --input file" in said and table.read_text() == "pixel\n1\n"

    from lt_imbalance.inference.predict import CsvPredictionWriter

    monkeypatch.setattr(CsvPredictionWriter, "write_rows", lambda self, index, probabilities: _full_disk())
    out = tmp_path / "out" / "p.csv"
    code, said = run_command(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(images), "--output", str(out)], capfd)
    assert code == 2 and "the predictions" in said and "the disk is full" in said and "Traceback" not in said
    assert _files(tmp_path / "out") == {}


def test_configs_copy_into_a_full_disk_leaves_no_empty_file_and_the_retry_works(tmp_path, monkeypatch, capfd):
    import shutil

    dest = tmp_path / "mine.yaml"
    real_copy = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", lambda src, dst: (Path(dst).write_text(""), _full_disk()))
    code, said = run_command(["configs", "copy", "digits_lt.yaml", str(dest)], capfd)
    assert code == 2 and "the disk is full" in said and not dest.exists() and _files(tmp_path) == {}
    monkeypatch.setattr(shutil, "copyfile", real_copy)
    code, said = run_command(["configs", "copy", "digits_lt.yaml", str(dest)], capfd)
    assert code == 0 and dest.read_text().strip()


def test_tune_into_a_full_disk_leaves_no_empty_base_config(tmp_path, monkeypatch):
    import yaml

    from lt_imbalance.tuning.settings import parse_args
    from lt_imbalance.tuning.study import Tuner

    monkeypatch.chdir(ROOT)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16, 32]}}))
    out = tmp_path / "study"
    real_write = Path.write_text

    def full_for_partials(self, *args, **kwargs):
        if self.name.startswith(".partial."):
            real_write(self, "half")  # the disk fills up half-way through the file
            _full_disk()
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_for_partials)
    with pytest.raises(CannotAccess, match="was not written: the disk is full"):
        Tuner(parse_args(["--config", "configs/digits_lt_erm.yaml", "--out", str(out), "--space", str(space), "--folds", "0"]))
    assert not [p for p in out.iterdir() if p.suffix in (".yaml", ".json") or p.name.startswith(".partial.")]
