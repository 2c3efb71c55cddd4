"""The GPU path, verified and timed in one call (``make gpu-check``; ``--cpu`` for the seconds-long CPU mode).

On a CUDA machine, within a wall-time budget (default 7.5 minutes) and with no network:

1. writes CIFAR-10 in its real on-disk format with random pixels (or uses real CIFAR-10 when
   ``data/cifar-10-batches-py`` exists);
2. runs ``lt-imbalance fit`` of ``configs/cifar10_lt/tuned.yaml`` for a few epochs (SAM-A and the
   label-smoothing ramp moved to epoch 1 so that they act) in four variants: eager fp32, eager
   bf16-mixed, ``compile: true`` bf16-mixed and ``compile: reduce-overhead`` (CUDA graphs)
   bf16-mixed. A probe callback checks, in each: the loss finite at every step; SAM's descent pass
   ran on every step from its start epoch; the learning rate of every step equals the schedule's;
   every backbone BatchNorm counted exactly one update per forward of the training step (SAM's
   descent pass adds none); and it measures seconds per epoch (after the first) and peak GPU
   memory. The compiled runs' weights after the first step are compared with eager bf16's;
3. runs a short tuner study, two trials at once on the device (``lt-imbalance tune`` of the same
   config, a balanced pool validation split), and reports trials per hour and the GPU's utilisation;
4. times the streaming data pipeline at 224 px (``scripts/data_throughput.py --gpu-decode``: 512
   fake ImageNet-size JPEGs, 4 and 8 loader workers, with and without ``gpu_decode``), within a
   minute;
5. runs the benchmark (``scripts/benchmark.py`` cells: hand-written loop, framework, framework
   compiled) for ERM, SAM-A and SAM-A + Joint-SSL at batch 64 and 512, with step counts cut to
   fit, as long as the budget lasts (cells left out are listed);
6. prints one markdown table, writes it and a JSON of every figure to ``$GPU_CHECK_OUT`` (default
   ``runs/gpu-check``), and exits non-zero when a check failed.

On a machine that has torch, Lightning, torchvision, torchmetrics and tensorboard but not this
project (the lent GPU machines), ``scripts/gpu_wheels.sh`` prepares the missing wheels in
``.gpu-wheels/`` beforehand and ``make gpu-check`` installs them first.

    make gpu-check                                       # GPU
    python scripts/gpu_check.py --cpu --out /tmp/check   # the CPU mode the tests run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
VARIANTS = {  # name -> (precision, compile)
    "eager fp32": ("32-true", False),
    "eager bf16-mixed": ("bf16-mixed", False),
    "compile bf16-mixed": ("bf16-mixed", True),
    "reduce-overhead bf16-mixed": ("bf16-mixed", "reduce-overhead"),
}
#: a compiled run's first weight update may differ from eager bf16's by this fraction of its norm
#: (bf16 keeps 8 bits of mantissa, and fused kernels round in other places)
FIRST_STEP_TOLERANCE = 0.05


# ---- the probe: runs inside each fit (``--trainer.callbacks+=gpu_check.RunProbe``) ---------------
class RunProbe(pl.Callback):
    """Records what the checks need during a fit and writes it to ``<out>/probe.json`` (weights
    before and after the first step to ``<out>/first_step.pt``)."""

    def __init__(self, out: str):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.epoch_seconds: list[float] = []
        self.sam_steps = 0
        self._epoch_start = 0.0

    @staticmethod
    def _sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_start(self, trainer, pl_module):
        self.initial = {k: v.detach().float().cpu().clone() for k, v in pl_module.state_dict().items() if isinstance(v, torch.Tensor)}
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_epoch_start(self, trainer, pl_module):
        self._sync(pl_module)
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self._sync(pl_module)
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        sam = next((c for c in trainer.callbacks if type(c).__name__ == "SAM"), None)
        if sam is not None and trainer.current_epoch >= sam.start_epoch:
            self.sam_steps += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"].detach().float()))
        if trainer.global_step == 1:
            after = {k: v.detach().float().cpu().clone() for k, v in pl_module.state_dict().items() if isinstance(v, torch.Tensor)}
            torch.save({"initial": self.initial, "after": after}, self.out / "first_step.pt")

    def on_fit_end(self, trainer, pl_module):
        from lt_imbalance.training.optimization import lr_factor

        total = int(trainer.estimated_stepping_batches)
        schedule = pl_module.lr_schedule
        warmup = int(round(schedule.warmup_epochs * total / max(1, trainer.max_epochs)))
        base = self.lrs[0] / lr_factor(0, warmup, total, schedule.name, schedule.min_lr_ratio)
        expected = [base * lr_factor(s, warmup, total, schedule.name, schedule.min_lr_ratio) for s in range(len(self.lrs))]
        sam = next((c for c in trainer.callbacks if type(c).__name__ == "SAM"), None)
        forwards = 2 if pl_module.ssl_objective is not None else 1  # Joint-SSL's views pass through the backbone too
        tracked = [
            int(m.num_batches_tracked) for m in pl_module.net.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm.BatchNorm2d)
        ]
        record = {
            "steps": trainer.global_step,
            "losses_finite": all(math.isfinite(v) for v in self.losses),
            "sam_steps_expected": self.sam_steps,
            "sam_descent_passes": sam.descent_passes if sam is not None else None,
            "lr_max_relative_error": max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(self.lrs, expected)),
            "batchnorm_updates": sorted(set(tracked)),
            "batchnorm_expected": trainer.global_step * forwards,
            "seconds_per_epoch": self.epoch_seconds[1:] or self.epoch_seconds,
            "peak_mib": torch.cuda.max_memory_allocated(pl_module.device) / 2**20 if pl_module.device.type == "cuda" else None,
        }
        (self.out / "probe.json").write_text(json.dumps(record, indent=2))


# ---- data ------------------------------------------------------------------------------------------
def write_fake_cifar10(root: Path, per_class_train: int, per_class_test: int, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` in the real pickle format, random pixels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    labels = rng.permutation(np.repeat(np.arange(10), per_class_train))
    for i, part in enumerate(np.array_split(labels, 5), start=1):
        batch = {
            "data": rng.integers(0, 256, (len(part), 3072), dtype=np.uint8),
            "labels": part.tolist(),
            "batch_label": f"training batch {i} of 5",
        }
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test = np.repeat(np.arange(10), per_class_test)
    (folder / "test_batch").write_bytes(
        pickle.dumps({"data": rng.integers(0, 256, (len(test), 3072), dtype=np.uint8), "labels": test.tolist()})
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return root


# ---- one fit per variant -----------------------------------------------------------------------------
def variant_config(out: Path, cpu: bool, epochs: int, data_dir: Path) -> Path:
    """``configs/cifar10_lt/tuned.yaml`` shortened to ``epochs``: SAM-A from epoch 1, the smoothing
    ramp and the warm-up over the first epoch; in the CPU mode tiny (small CNN, 4 batches of 16)."""
    cfg = yaml.safe_load((ROOT / "configs" / "cifar10_lt" / "tuned.yaml").read_text())
    trainer, model, data = cfg["trainer"], cfg["model"]["init_args"], cfg["data"]["init_args"]
    trainer.update(max_epochs=epochs, num_sanity_val_steps=0, limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False)
    for callback in trainer["callbacks"]:
        if callback["class_path"] == "SAM":
            callback["init_args"]["start_epoch"] = 1
        if callback["class_path"] == "LabelSmoothingSchedule":
            callback["init_args"]["ramp_epochs"] = 1
    model["lr_schedule"]["warmup_epochs"] = 1
    data.update(data_dir=str(data_dir), num_workers=0)
    if cpu:
        trainer.update(accelerator="cpu", limit_train_batches=4)
        model["backbone"] = "digits_cnn"
        data.update(batch_size=16, imbalance_ratio=10)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_fit(name: str, precision: str, compile_setting, config: Path, out: Path, timeout: float) -> dict:
    """One ``lt-imbalance fit`` in its own process; the probe's record plus status and wall time."""
    folder = out / name.replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "lt_imbalance", "fit", "--config", str(config), "--trainer.precision", precision,
        "--model.init_args.compile", str(compile_setting).lower(), "--trainer.default_root_dir", str(folder / "run"),
        "--test_after_fit", "false", "--trainer.callbacks+=gpu_check.RunProbe", f"--trainer.callbacks.out={folder}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(10.0, timeout))
        status, tail = ("ok" if proc.returncode == 0 else f"exit {proc.returncode}"), (proc.stdout + proc.stderr)[-2500:]
    except subprocess.TimeoutExpired as err:
        status, tail = "timed out", str(err.stdout or "")[-2500:]
    (folder / "fit.log").write_text(tail)
    record = {"variant": name, "status": status, "wall_s": round(time.perf_counter() - start, 1)}
    probe = folder / "probe.json"
    if status == "ok" and probe.is_file():
        record.update(json.loads(probe.read_text()))
    else:
        record["error"] = tail[-800:]
    return record


def fit_checks(record: dict) -> dict[str, bool]:
    """Pass / fail of each check of one fit."""
    if record["status"] != "ok":
        return {"ran": False}
    return {
        "ran": True,
        "loss finite": record["losses_finite"],
        "SAM descent every step": record["sam_descent_passes"] == record["sam_steps_expected"] > 0,
        "LR follows schedule": record["lr_max_relative_error"] < 1e-5,
        "BatchNorm one update per forward": record["batchnorm_updates"] == [record["batchnorm_expected"]],
    }


def first_step_difference(out: Path, name: str, reference: str = "eager bf16-mixed") -> float | None:
    """||update - reference update|| / ||reference update|| over all floating-point parameters after step 1."""
    paths = [out / n.replace(" ", "_") / "first_step.pt" for n in (name, reference)]
    if not all(p.is_file() for p in paths):
        return None
    ours, ref = (torch.load(p, weights_only=True) for p in paths)
    diff = norm = 0.0
    for key, w0 in ref["initial"].items():
        if w0.is_floating_point() and "running" not in key and "num_batches" not in key:
            d_ref, d_ours = ref["after"][key] - w0, ours["after"][key] - ours["initial"][key]
            diff += float((d_ours - d_ref).pow(2).sum())
            norm += float(d_ref.pow(2).sum())
    return math.sqrt(diff) / max(math.sqrt(norm), 1e-12)


# ---- a short study, two trials at once ------------------------------------------------------------------
def gpu_utilisation() -> float | None:
    """The device's current utilisation in % (None where it cannot be read)."""
    try:
        return float(torch.cuda.utilization())
    except Exception:  # no NVML binding: ask nvidia-smi
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10
            )
            return float(out.stdout.split()[0])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None


def run_tune(args, config: Path, timeout: float) -> dict:
    """``lt-imbalance tune`` with 2 trials at once; wall time, trials per hour, mean GPU utilisation."""
    space = args.out / "tune_space.yaml"
    space.write_text(yaml.safe_dump({"model.init_args.optimizer.init_args.lr": {"float": [0.01, 0.1], "log": True}}))
    cmd = [
        sys.executable, "-m", "lt_imbalance", "tune", "--config", str(config), "--space", str(space), "--n_trials", "2", "--jobs", "2",
        "--seeds", "--no-report", "--pruner", "none", "--folds", "0", "--out", str(args.out / "tune"), "--trainer.limit_val_batches", "2" if args.cpu else "1.0",
        "--data.init_args.val_source", "pool", "--data.init_args.val_fraction", "0", "--data.init_args.val_per_class", "2" if args.cpu else "20",
        "--data.init_args.split_protocol", "seeded",  # a pool validation set leaves the literature's split (which uses every image)
    ]  # fmt: skip
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            value = gpu_utilisation()
            if value is not None:
                samples.append(value)

    sampler = threading.Thread(target=sample, daemon=True)
    if not args.cpu:
        sampler.start()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, timeout))
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        tail = (proc.stdout + proc.stderr)[-800:]
    except subprocess.TimeoutExpired:
        status, tail = "timed out", ""
    finally:
        done.set()
    wall = time.perf_counter() - start
    complete = (proc.stdout.count(": complete,") if status == "ok" else 0) if status != "timed out" else 0
    return {
        "status": status, "wall_s": round(wall, 1), "complete": complete, "trials_per_hour": round(3600 * complete / wall, 1) if complete else 0.0,
        "gpu_utilisation_mean": round(sum(samples) / len(samples), 1) if samples else None, "tail": tail if status != "ok" else "",
    }  # fmt: skip


# ---- the data pipeline ---------------------------------------------------------------------------------
def run_data_pipeline(args, timeout: float) -> dict:
    """``scripts/data_throughput.py --gpu-decode`` in its own process: its table, or why there is none."""
    out = args.out / "data_pipeline"
    sizes = ["--tiny", "--device", "cpu"] if args.cpu else ["--images", "512", "--workers", "4", "8"]
    cmd = [sys.executable, str(SCRIPTS / "data_throughput.py"), "--gpu-decode", *sizes, "--out", str(out)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, timeout))
    except subprocess.TimeoutExpired:
        return {"status": "timed out", "table": ""}
    if proc.returncode != 0:
        return {"status": f"exit {proc.returncode}", "table": "", "tail": (proc.stdout + proc.stderr)[-800:]}
    return {"status": "ok", "table": (out / "throughput.md").read_text().strip(), **json.loads((out / "throughput.json").read_text())}


# ---- the benchmark cells -------------------------------------------------------------------------------
def run_benchmark(args, deadline: float) -> tuple[list[dict], list[str]]:
    """Benchmark cells while time lasts; returns (records, cells left out)."""
    sys.path.insert(0, str(SCRIPTS))
    import benchmark

    impls = ["hand", "framework"] + ([] if args.cpu else ["framework+compile"])
    methods = ["sam_a_ssl"] if args.cpu else list(benchmark.METHODS)  # the CPU mode: the fullest path only
    bench_args = argparse.Namespace(
        device="cpu" if args.cpu else "cuda", steps=args.bench_steps, warmup=args.bench_warmup, backbone="resnet20" if args.cpu else "resnet32",
        n_max=40 if args.cpu else 5000, ratio=10.0 if args.cpu else 100.0,
    )  # fmt: skip
    records, skipped = [], []
    env = dict(os.environ)
    for method in methods:
        for batch in args.bench_batches:
            for impl in impls:
                cell = f"{impl} {method} batch {batch}"
                if time.perf_counter() > deadline:
                    skipped.append(cell)
                    continue
                try:
                    records.append(benchmark.run_cell_process(benchmark.cell_command(bench_args, impl, method, batch), env))
                except RuntimeError as err:
                    records.append({"impl": impl, "method": method, "batch_size": batch, "error": str(err)[-500:]})
    return records, skipped


# ---- report ------------------------------------------------------------------------------------------------
def report(
    device: str, fits: list[dict], first_step: dict, tune: dict, pipeline: dict, bench: list[dict], skipped: list[str], failures: list[str]
) -> str:
    lines = [
        f"### GPU check on {device}",
        "",
        "| variant | status | checks | s / epoch | peak MiB | first-step update vs eager bf16 |",
        "|---|---|---|---:|---:|---:|",
    ]
    for record in fits:
        checks = fit_checks(record)
        failed = [k for k, ok in checks.items() if not ok]
        epoch = f"{np.mean(record['seconds_per_epoch']):.2f}" if record.get("seconds_per_epoch") else "-"
        peak = f"{record['peak_mib']:,.0f}" if record.get("peak_mib") else "-"
        diff = first_step.get(record["variant"])
        lines.append(
            f"| {record['variant']} | {record['status']} | {'all pass' if not failed else 'FAILED: ' + ', '.join(failed)} | {epoch} | {peak} | "
            f"{'-' if diff is None else f'{100 * diff:.2f}%'} |"
        )
    utilisation = "n/a" if tune.get("gpu_utilisation_mean") is None else f"{tune['gpu_utilisation_mean']:.0f}%"
    lines += ["", f"Tuner, 2 trials at once: {tune['status']}, {tune['complete']} complete in {tune['wall_s']} s: "
              f"{tune['trials_per_hour']} trials per hour; mean GPU utilisation {utilisation}."]  # fmt: skip
    lines += ["", pipeline["table"] if pipeline["status"] == "ok" else f"Data pipeline: {pipeline['status']}."]
    if bench:
        lines += ["", "| method | batch | impl | img/s | peak MiB |", "|---|---:|---|---:|---:|"]
        for r in bench:
            rate = f"{r['images_per_s']:,.0f}" if "images_per_s" in r else "FAILED"
            lines.append(f"| {r['method']} | {r['batch_size']} | {r['impl']} | {rate} | {r.get('peak_mib', 0):,.0f} |")
    if skipped:
        lines += ["", f"Benchmark cells left out for time: {', '.join(skipped)}."]
    lines += ["", "Result: " + ("all checks passed." if not failures else "FAILED: " + "; ".join(failures))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the CPU mode: tiny sizes, seconds")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("GPU_CHECK_OUT", "runs/gpu-check")))
    parser.add_argument("--budget", type=float, default=450.0, help="wall seconds for the whole check")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 3 on a GPU, 2 on the CPU)")
    parser.add_argument("--bench-steps", type=int, default=None)
    parser.add_argument("--bench-warmup", type=int, default=None)
    parser.add_argument("--bench-batches", type=int, nargs="+", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run the CPU mode with --cpu", file=sys.stderr)
        return 2
    epochs = args.epochs or (2 if args.cpu else 3)
    args.bench_steps = args.bench_steps or (2 if args.cpu else 30)
    args.bench_warmup = args.bench_warmup or (1 if args.cpu else 10)
    args.bench_batches = args.bench_batches or ([8] if args.cpu else [64, 512])
    args.out.mkdir(parents=True, exist_ok=True)
    device = "CPU" if args.cpu else f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    real = ROOT / "data" / "cifar-10-batches-py"
    data_dir = (
        real.parent
        if (real / "data_batch_1").is_file() and not args.cpu
        else write_fake_cifar10(args.out / "data", *((60, 10) if args.cpu else (5000, 1000)))
    )
    config = variant_config(args.out, args.cpu, epochs, data_dir)
    fits, failures = [], []
    fit_budget = 0.5 * args.budget
    for name, (precision, compile_setting) in VARIANTS.items():
        remaining = start + fit_budget - time.perf_counter()
        fits.append(run_fit(name, precision, compile_setting, config, args.out, remaining))
        failures += [f"{name}: {check}" for check, ok in fit_checks(fits[-1]).items() if not ok]
    first_step = {}
    for name in ("compile bf16-mixed", "reduce-overhead bf16-mixed"):
        first_step[name] = diff = first_step_difference(args.out, name)
        if diff is None or diff > FIRST_STEP_TOLERANCE:
            shown = "missing" if diff is None else f"{100 * diff:.2f}% from eager"
            failures.append(f"{name}: first-step weights {shown} (tolerance {100 * FIRST_STEP_TOLERANCE:.0f}%)")
    tune = run_tune(args, config, start + 0.75 * args.budget - time.perf_counter())
    if tune["complete"] != 2:
        failures.append(f"tuner study: {tune['status']}, {tune['complete']} of 2 trials complete {tune['tail'][-300:]}")
    pipeline = run_data_pipeline(args, 60.0)
    if pipeline["status"] != "ok":
        failures.append(f"data pipeline: {pipeline['status']} {pipeline.get('tail', '')[-300:]}")
    bench, skipped = run_benchmark(args, start + args.budget - 20)
    failures += [f"benchmark {r['impl']} {r['method']} {r['batch_size']}" for r in bench if "error" in r]
    table = report(device, fits, first_step, tune, pipeline, bench, skipped, failures)
    print(table)
    (args.out / "gpu_check.md").write_text(table + "\n")
    figures = {
        "device": device,
        "fits": fits,
        "first_step_difference": first_step,
        "tune": tune,
        "data_pipeline": pipeline,
        "benchmark": bench,
        "skipped": skipped,
        "failures": failures,
    }
    (args.out / "gpu_check.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"\n{len(failures)} failed check(s); {time.perf_counter() - start:.0f} s; files in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
