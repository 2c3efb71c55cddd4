"""The ``lt-imbalance`` command: LightningCLI over :class:`ImbalancedClassifier` and the data modules.

- ``data.class_counts`` and ``data.input_shape`` are linked into the model when both are
  instantiated, so the model never imports a data module;
- ``data.ssl_views`` follows ``model.ssl.weight`` (the data supplies SSL views when Joint-SSL is on);
- the per-class figures, the results table, the run metadata, RNG state in checkpoints and a
  checkpoint with ``last.ckpt`` at every epoch end are on by default;
- ``--resume true`` continues from the newest ``last.ckpt`` under ``trainer.default_root_dir``;
- ``fit`` evaluates the final weights on the test set afterwards (``--test_after_fit false`` skips it);
- ``fit`` and ``test`` first check that the run directory is writable and has free space;
- a mistake in the command or the config (a bad value, a missing file, an unsupported
  combination) is printed as a short message with the fix (:mod:`lt_imbalance.user_errors`);
  ``LT_IMBALANCE_TRACEBACK=1`` shows the full traceback;
- ``lt-imbalance tune ...`` searches a recipe for the user's data (:mod:`lt_imbalance.tuning`).

This is the only module that knows every part: models, data modules, callbacks.
"""

from __future__ import annotations

import os
import sys

# Lightning 2.6 calls jsonargparse APIs that jsonargparse >= 4.49 flags as deprecated; those
# warnings concern Lightning, not the user's config, so they are off unless asked for.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from pathlib import Path  # noqa: E402

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback  # noqa: E402
from lightning.pytorch.utilities import rank_zero_info  # noqa: E402

import lt_imbalance.losses  # noqa: E402, F401  (short names for the losses)
import lt_imbalance.models  # noqa: E402, F401  (short names for the backbones)
from lt_imbalance.callbacks import PerClassPlots, ResultsTable, RNGState, RunMetadata  # noqa: E402  (and short callback names)
from lt_imbalance.data import (  # noqa: E402, F401  (imported so that configs can name them by class name)
    CIFAR10LT,
    CIFAR100LT,
    ISICLT,
    DigitsLT,
    EuroSATLT,
    ImageFolderLT,
    LongTailedDataModule,
    MedMNISTLT,
    TabularLT,
    TinyImageNetLT,
)
from lt_imbalance.module import ImbalancedClassifier  # noqa: E402
from lt_imbalance.rundir import check_run_directory, newest_last_checkpoint, next_free, resuming_from  # noqa: E402
from lt_imbalance.user_errors import TRACEBACK_VARIABLE, describe_user_error  # noqa: E402


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved ``config.yaml`` and never overwrites one: a run resumed into the same log
    directory (a requeued SLURM job, whose log version is the job id) writes ``config_resume_<k>.yaml``."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and trainer.log_dir and resuming_from(trainer):
            self.config_filename = next_free(Path(trainer.log_dir) / self.config_filename).name
        super().setup(trainer, pl_module, stage)


def _wants_ssl_views(ssl_weight: float) -> bool:
    return ssl_weight > 0


class LTImbalanceCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.class_counts", "model.init_args.class_counts", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.init_args.input_shape", apply_on="instantiate")
        parser.link_arguments("model.init_args.ssl.weight", "data.init_args.ssl_views", compute_fn=_wants_ssl_views, apply_on="parse")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="run `test` on the final weights after `fit`")
        parser.add_argument(
            "--resume", type=bool, default=False,
            help="continue from the newest last.ckpt under trainer.default_root_dir (ignored when ckpt_path is given)",
        )  # fmt: skip

    def before_fit(self) -> None:
        check_run_directory(self.trainer.default_root_dir)
        config = self.config_init[self.subcommand]
        if config.get("resume") and not config.get("ckpt_path"):
            found = newest_last_checkpoint(self.trainer.default_root_dir)
            rank_zero_info(f"resume: {'continuing from ' + str(found) if found else 'no last.ckpt yet, starting afresh'}")
            if found:
                config["ckpt_path"] = str(found)

    def before_test(self) -> None:
        check_run_directory(self.trainer.default_root_dir)

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit") and not self.trainer.interrupted:
            self.trainer.test(self.model, datamodule=self.datamodule)


def build_cli(args: list[str] | None = None, run: bool = True) -> LTImbalanceCLI:
    """Parse ``args`` (default: the command line), instantiate, and run the subcommand if ``run``.
    Errors propagate as exceptions (``main`` turns user errors into short messages)."""
    return LTImbalanceCLI(
        ImbalancedClassifier,
        LongTailedDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"callbacks": [ResultsTable(), PerClassPlots(), RunMetadata(), RNGState(), ModelCheckpoint(save_last=True)]},
        save_config_callback=RunConfigSaver,
        parser_kwargs={"exit_on_error": False},
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``lt-imbalance`` and ``python -m lt_imbalance``: the LightningCLI subcommands,
    and ``tune`` (:mod:`lt_imbalance.tuning.study`)."""
    argv = sys.argv[1:] if args is None else args
    try:
        if argv[:1] == ["tune"]:
            from lt_imbalance.tuning.study import main as tune

            tune(argv[1:])
        else:
            build_cli(args)
    except Exception as err:
        message = describe_user_error(err)
        if message is None or os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(message, file=sys.stderr)
        sys.exit(2)
