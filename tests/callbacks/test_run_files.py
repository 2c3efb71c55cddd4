"""Two runs logging to one shared save directory each keep their own files, and the loggers that
store files (MLflow, W&B) receive the figures and the results tables; the checkpoints are in the run folder
whatever the logger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lt_imbalance.commands.lightning_cli import build_cli

ROOT = Path(__file__).resolve().parents[2]
RUN_FILES = (
    "config.yaml",
    "run_metadata.json",
    "results_val.md",
    "results_test.json",
    "figures/test_per_class.png",
    "checkpoints/last.ckpt",
)


def logger_args(kind: str, shared: Path) -> list[str]:
    if kind == "csv":
        return ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(shared)]
    if kind == "mlflow":
        return [
            "--trainer.logger", "MLFlowLogger", "--trainer.logger.tracking_uri", f"sqlite:///{shared / 'mlflow.db'}",
            "--trainer.logger.artifact_location", (shared / "artifacts").as_uri(),
        ]  # fmt: skip
    return ["--trainer.logger", "WandbLogger", "--trainer.logger.save_dir", str(shared), "--trainer.logger.offline", "true"]


def short_fit(tmp_path: Path, kind: str):
    (tmp_path / "shared").mkdir(exist_ok=True)
    args = [
        "fit", "--config", "configs/digits_lt.yaml", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.default_root_dir", str(tmp_path / "root"), *logger_args(kind, tmp_path / "shared"),
    ]  # fmt: skip
    return build_cli(args)


@pytest.mark.parametrize("kind", ["csv", "mlflow", "wandb"])
def test_two_runs_in_one_save_dir_keep_their_own_files(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from lt_imbalance.rundir import run_directory

    folders = []
    for seed in (1, 2):
        monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))
        cli = short_fit(tmp_path, kind)
        folder = Path(run_directory(cli.trainer))
        folders.append(folder)
        for name in RUN_FILES:
            assert (folder / name).is_file(), (kind, name)
        assert yaml.safe_load((folder / "config.yaml").read_text())["trainer"]["max_epochs"] == 1
        if kind == "wandb":
            import wandb

            wandb.finish()  # one process, two runs: as two `lt-imbalance fit` commands would
    assert folders[0] != folders[1]
    first = json.loads((folders[0] / "results_test.json").read_text())
    assert first["metrics"], "the first run's results survive the second run"
    if kind == "mlflow":
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}")
        run_id = cli.trainer.logger.run_id
        stored = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "figures")}
        assert {"config.yaml", "results_test.md", "run_metadata.json", "figures/test_per_class.png"} <= stored
    if kind == "wandb":
        files = {p.name for p in (tmp_path / "shared").rglob("files/*")}
        assert {"config.yaml", "results_test.md", "run_metadata.json"} <= files
        media = list((tmp_path / "shared").rglob("media/images/test/*.png"))
        assert media, "the per-class figure is logged as a W&B image"
