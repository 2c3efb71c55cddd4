"""``lt-imbalance fit | validate | test``: LightningCLI over :class:`ImbalancedClassifier` and the data modules.

- ``data.class_counts`` and ``data.input_shape`` are linked into the model when both are
  instantiated, so the model never imports a data module;
- ``data.ssl_views`` follows ``model.ssl.weight`` (the data supplies SSL views when Joint-SSL is on);
- the per-class figures, the results table, the run metadata, RNG state in checkpoints and a
  checkpoint with ``last.ckpt`` at every epoch end come from the module itself
  (:meth:`ImbalancedClassifier.configure_callbacks`), so a run from Python gets them too;
- ``--resume true`` (or ``--ckpt_path last``) continues from the newest ``last.ckpt`` under
  ``trainer.default_root_dir``; ``--ckpt_path last`` with none there is refused (``--resume``
  starts afresh);
- ``fit`` evaluates the final weights on the test set afterwards (``--test_after_fit false`` skips it),
  calibrated when fit ends (:class:`~lt_imbalance.callbacks.CalibrateAfterFit`);
- ``--prior train|uniform|<file>`` (``test``, and the test after ``fit``) also scores the model
  adapted to that class prior on the test set re-weighted to it (:class:`~lt_imbalance.callbacks.TargetPriorReport`);
- ``fit`` and ``test`` first check that the run directory is writable and has free space;
- a mistake in the command or the config (a bad value, a missing file, an unsupported
  combination) is printed as a short message with the fix (:mod:`lt_imbalance.user_errors`);
  ``LT_IMBALANCE_TRACEBACK=1`` shows the full traceback.

This is the only module that knows every part: models, data modules, callbacks. The other
commands resolve configs through it (:mod:`lt_imbalance.commands.config`); it imports none of them.
"""

from __future__ import annotations

import os
import sys

from lt_imbalance.errors import BadValue, MissingFile

# Lightning 2.6 calls jsonargparse APIs that jsonargparse >= 4.49 flags as deprecated; those
# warnings concern Lightning, not the user's config, so they are off unless asked for.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from lightning.pytorch.accelerators import CPUAccelerator  # noqa: E402
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback  # noqa: E402
from lightning.pytorch.utilities import rank_zero_info  # noqa: E402

import lt_imbalance.callbacks  # noqa: E402, F401  (short callback names)
import lt_imbalance.losses  # noqa: E402, F401  (short names for the losses)
import lt_imbalance.models  # noqa: E402, F401  (short names for the backbones)
from lt_imbalance.callbacks import TargetPriorReport  # noqa: E402
from lt_imbalance.callbacks.run_files import WritesRunFiles, log_files  # noqa: E402
from lt_imbalance.checkpoint_file import check_fits, checkpoint_path  # noqa: E402
from lt_imbalance.console import verbose  # noqa: E402
from lt_imbalance.data import (  # noqa: E402, F401  (imported so that configs can name them by class name)
    CIFAR10LT,
    CIFAR100LT,
    ISICLT,
    DigitsLT,
    EuroSATLT,
    ImageFolderLT,
    ImageNetLT,
    INaturalist2018,
    LongTailedDataModule,
    MedMNISTLT,
    PlacesLT,
    TabularLT,
    TinyImageNetLT,
)
from lt_imbalance.label_shift import parse_prior  # noqa: E402
from lt_imbalance.module import ImbalancedClassifier  # noqa: E402
from lt_imbalance.rundir import check_run_directory, newest_last_checkpoint, next_free, run_directory  # noqa: E402
from lt_imbalance.user_errors import option_values  # noqa: E402

#: trainer options that take a number of batches (int) or a share of them (float)
LIMIT_KEYS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches")


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved ``config.yaml`` in the run's own folder (:func:`~lt_imbalance.rundir.run_directory`,
    so MLflow and W&B runs sharing one save directory each keep theirs) and never overwrites one: a run
    resumed into the same folder (a requeued SLURM job, whose log version is the job id) writes
    ``config_resume_<k>.yaml``."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved:
            return
        folder = Path(run_directory(trainer))  # a collective: every rank calls it
        if trainer.is_global_zero:
            if self.save_to_log_dir:
                folder.mkdir(parents=True, exist_ok=True)
                path = next_free(folder / self.config_filename)
                self.parser.save(self.config, str(path), skip_none=False, multifile=self.multifile)
                log_files(trainer, str(folder), [path])
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)


def _wants_ssl_views(ssl_weight: float) -> bool:
    return ssl_weight > 0


class LTImbalanceCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test (``predict`` is the checkpoint command, :mod:`lt_imbalance.commands.predict`)."""
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name != "predict"}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.class_counts", "model.init_args.class_counts", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.init_args.input_shape", apply_on="instantiate")
        parser.link_arguments("model.init_args.ssl.weight", "data.init_args.ssl_views", compute_fn=_wants_ssl_views, apply_on="parse")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="run `test` on the final weights after `fit`")
        parser.add_argument(
            "--resume", type=bool, default=False,
            help="continue from the newest last.ckpt under trainer.default_root_dir (ignored when ckpt_path is given)",
        )  # fmt: skip
        parser.add_argument(
            "--untrained", type=bool, default=False,
            help="test / validate without --ckpt_path: evaluate the model as initialised (refused otherwise)",
        )  # fmt: skip
        parser.add_argument(
            "--prior", type=str | None, default=None,
            help="test (and the test after fit): also score the model adapted to this class prior (train, uniform, or a "
            "file of 'class,share' lines) on the test set re-weighted to it; fit: its checkpoints deploy for it",
        )  # fmt: skip

    def target_prior(self):
        """``--prior`` read (:func:`~lt_imbalance.label_shift.parse_prior`), or ``None``."""
        data = self.datamodule
        return parse_prior(self.config[self.subcommand].get("prior"), list(data.class_names), list(data.class_counts), self.subcommand)

    def set_target_prior(self) -> None:
        """``--prior``: the outputs deploy for it from the start of fit or test (once any checkpoint is
        loaded), and the test is also scored under it (:class:`~lt_imbalance.callbacks.TargetPriorReport`)."""
        target = self.target_prior()
        if target is not None:
            self.trainer.callbacks.append(TargetPriorReport(target))

    def warn_about_settings(self) -> None:
        """Settings that run but rarely mean what they say, each said in one line (rank 0)."""
        config = self.config[self.subcommand]
        said = []
        override = config.get("optimizer")
        if override is not None:
            name = str(override.get("class_path", override)).rsplit(".", 1)[-1] if hasattr(override, "get") else override
            said.append(
                f"--optimizer {name} replaces the model's optimizer and its learning-rate schedule (model.init_args.lr_schedule: "
                "warm-up, cosine); to keep the schedule, set model.init_args.optimizer: {class_path: torch.optim."
                f"{name}, init_args: {{lr: ...}}}} instead"
            )
        for where, settings in (
            ("model.init_args.optimizer", config.model.get("init_args", {}).get("optimizer")),
            ("--optimizer", override),
        ):
            lr = settings.get("init_args", {}).get("lr") if hasattr(settings, "get") else None
            if lr is not None and float(lr) == 0:
                said.append(f"{where} has lr 0: the weights will never change; set a positive learning rate (e.g. 0.05)")
        cores = os.cpu_count() or 1
        if isinstance(self.trainer.accelerator, CPUAccelerator) and self.trainer.num_devices > cores:
            said.append(
                f"trainer.devices {self.trainer.num_devices} on a CPU with {cores} cores starts {self.trainer.num_devices} processes "
                f"that share {cores} cores (slower than one); set trainer.devices 1"
            )
        if self.trainer.is_global_zero:
            for line in said:
                print(f"lt-imbalance {self.subcommand}: warning: {line}", file=sys.stderr)

    def before_fit(self) -> None:
        self.warn_about_settings()
        if self.trainer.max_epochs == 0:
            raise BadValue(
                "trainer.max_epochs is 0: fit would train nothing and then test an untrained model; set it to 1 or "
                "more, or evaluate a trained checkpoint with `lt-imbalance test --ckpt_path ...`"
            )
        check_run_directory(self.trainer.default_root_dir)
        self.set_target_prior()

    def before_instantiate_classes(self) -> None:
        """``ckpt_path`` resolved (:meth:`resolve_checkpoint`), and a checkpoint trained on other classes
        or inputs than this config's data refused before anything is built (LightningCLI takes the
        model's settings from the checkpoint, so the data is what can disagree)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand:
            self.resolve_checkpoint(config)
        path = config.get("ckpt_path")
        if self.subcommand == "fit" and str(config.get("model", {}).get("class_path", "")).endswith("EnsembleClassifier"):
            raise BadValue(  # before the run folder is made: a refused command leaves none
                "an ensemble is not trained: its members are; fit each member's config, then build the ensemble from their checkpoints"
            )
        if self.subcommand == "fit" and path and Path(path).is_file() and getattr(self, "given_config", None):
            from lt_imbalance.commands.resume_check import check_resume

            changed = check_resume(path, self.given_config)
            if changed:
                rank_zero_info(f"resume: changed since the run started (kept as given): {'; '.join(changed)}")
        if path and path not in ("last", "best") and Path(path).is_file():
            data = instantiate_data({"data": config.data.as_dict()})
            check_fits(path, len(data.class_counts), data.input_shape, f"the data of this config ({type(data).__name__})")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        self.command_line = list(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)
        #: the fit's config as given, before Lightning merges a checkpoint's hyper-parameters into it (a
        #: resume is checked against the run's saved config.yaml, which is dumped the same way)
        self.given_config: dict | None = None
        if self.config.get("subcommand") == "fit":
            import yaml

            dumped = parser.dump(self.config, skip_link_targets=False, skip_none=False, format="yaml")
            self.given_config = (yaml.safe_load(dumped) or {}).get("fit")

    def instantiate_trainer(self, **kwargs: Any):
        """The trainer, with a ``limit_*_batches`` / ``overfit_batches`` written as an integer on the
        command line kept an integer: ``--trainer.limit_train_batches 1`` is one batch, as in
        Lightning's Python API (the parser reads it as the float 1.0, which Lightning takes as all batches)."""
        counts = {}
        for key in LIMIT_KEYS:
            given = option_values(getattr(self, "command_line", []), f"--trainer.{key}")
            if given and given[-1].strip().lstrip("+").isdigit():
                counts[key] = int(given[-1])
        return super().instantiate_trainer(**counts, **kwargs)

    def resolve_checkpoint(self, config) -> None:
        """Which checkpoint a command starts from, decided once, before anything is built: ``last`` is
        the newest ``last.ckpt`` under ``trainer.default_root_dir`` (Lightning would look only in this
        run's new folder, find nothing and start afresh); a run folder is its newest ``last.ckpt``;
        ``fit --resume true`` without ``ckpt_path`` continues from the newest one if there is one.
        ``test`` / ``validate`` evaluate a trained model: without ``ckpt_path`` they are refused
        (``--untrained true`` evaluates the model as initialised)."""
        path = config.get("ckpt_path")
        fit = self.subcommand == "fit"
        root = config.get("trainer", {}).get("default_root_dir") or os.getcwd()  # the trainer's own default
        if path is None:
            if fit and config.get("resume"):
                found = newest_last_checkpoint(root)
                rank_zero_info(f"resume: {'continuing from ' + str(found) if found else 'no last.ckpt yet, starting afresh'}")
                config["ckpt_path"] = str(found) if found else None
            elif not fit and not config.get("untrained"):
                raise BadValue(
                    f"{self.subcommand} needs a trained model: give --ckpt_path CKPT (a checkpoint, or a run folder for its "
                    "newest last.ckpt, or `last` for the newest under trainer.default_root_dir); --untrained true evaluates "
                    "the model as initialised"
                )
        elif path == "last":
            found = newest_last_checkpoint(root)
            if found is None:
                fix = (
                    " to resume from; drop --ckpt_path to start afresh, or give the checkpoint's path (or the "
                    "trainer.default_root_dir of the run to resume)"
                    if fit
                    else "; give the checkpoint's path or its run folder"
                )
                raise MissingFile(f"--ckpt_path last: no last.ckpt under '{root}'{fix}")
            if fit:
                rank_zero_info(f"ckpt_path last: continuing from {found}")
            config["ckpt_path"] = str(found)
        elif path != "best":
            config["ckpt_path"] = str(checkpoint_path(path))  # a run folder: its newest last.ckpt; missing: said

    def before_validate(self) -> None:
        if self.config[self.subcommand].get("prior") is not None:
            raise BadValue("--prior applies to test, predict and the test after fit; validate scores the model as trained")
        if getattr(self.datamodule, "validates_on_test", False):
            raise BadValue(
                "validate scores the validation split, and this config has none (val_fraction 0: its validation would be "
                "the test set); score the test set with `lt-imbalance test`, or give --data.init_args.val_fraction 0.1"
            )
        check_run_directory(self.trainer.default_root_dir)
        if not verbose():  # our results table gives the same numbers
            self.config_init[self.subcommand]["verbose"] = False

    def before_test(self) -> None:
        check_run_directory(self.trainer.default_root_dir)
        self.set_target_prior()
        if not verbose():  # our results table gives the same numbers
            self.config_init[self.subcommand]["verbose"] = False

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit") and not self.trainer.interrupted:
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=verbose())
        self.say_where_results_are()

    def say_where_results_are(self) -> None:
        """The run folder, its results tables and the checkpoint to resume or deploy from (rank 0)."""
        folders = {c.run_dir for c in self.trainer.callbacks if isinstance(c, WritesRunFiles) and c.run_dir}
        if not self.trainer.is_global_zero or not folders:
            return
        folder = Path(folders.pop())
        lines = [f"run folder: {folder}"]
        lines += [f"  results: {path}" for path in sorted(folder.glob("results_*.md"))]
        checkpoint = self.trainer.checkpoint_callback
        last = checkpoint.last_model_path if checkpoint is not None else ""
        if last:
            lines.append(f"  checkpoint: {last}   (lt-imbalance fit ... --resume true continues from it)")
        print("\n".join(lines), file=sys.stderr)


def instantiate_data(config: dict[str, Any]):
    """The data module of a resolved config (its ``data`` entry), built alone."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data")
    return parser.instantiate_classes(parser.parse_object({"data": config["data"]})).data


def build_cli(args: list[str] | None = None, run: bool = True, cli_class: type[LTImbalanceCLI] = LTImbalanceCLI) -> LTImbalanceCLI:
    """Parse ``args`` (default: the command line), instantiate, and run the subcommand if ``run``.
    Errors propagate as exceptions (:func:`lt_imbalance.cli.main` turns user errors into short messages)."""
    return cli_class(
        ImbalancedClassifier,
        LongTailedDataModule,
        trainer_defaults={} if verbose() else {"enable_model_summary": False},
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=RunConfigSaver,
        parser_kwargs={"exit_on_error": False},
        args=args,
        run=run,
    )
