"""Training throughput: the framework against a hand-written PyTorch loop (``make bench``; a script,
not part of the installed package).

Measures, in one run on one machine, images per second and peak memory of

- ``hand``: a plain eager PyTorch loop written here (no Lightning): GPU-resident uint8 images,
  crop + flip on the device, ResNet + linear head, SGD with momentum and a cosine schedule, and for
  SAM-A / Joint-SSL the formulas written out (class-weighted ascent, e = rho g / |g|, descent at
  w + e with BatchNorm statistics restored; NT-Xent over two SimCLR views);
- ``framework``: the same work through ``lt_imbalance``: :class:`ImbalancedClassifier`, a
  long-tailed data module with ``device_data``, the :class:`SAM` callback, a Lightning Trainer
  with its TensorBoard logger and the module's metrics;
- ``framework+compile``: the same with ``compile: true`` (``reduce-overhead``, i.e. CUDA graphs, on
  a GPU; Inductor's default mode on a CPU);

for ERM, SAM-A and SAM-A + Joint-SSL at each batch size. The two loops share only the backbone
definition and the augmentation kernels (:mod:`lt_imbalance.data.device_augment`), so the ratio
framework / hand measures everything else. Each cell runs in its own process (peak memory is that
process's: ``torch.cuda.max_memory_allocated`` on a GPU, peak RSS on a CPU). The data are synthetic
32x32 RGB images with CIFAR-10-LT's class counts (12,406 training images at imbalance ratio 100);
throughput does not depend on the pixels.

The report projects a 200-epoch CIFAR-10-LT run of the tuned routine (SAM-A + Joint-SSL, batch 64)
from the measured rate. ``--concurrent K`` also runs K framework ERM runs at once on the device
(the experiment runner's ``--jobs-per-device``) and reports their summed rate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from lt_imbalance.callbacks.sam import SAM
from lt_imbalance.data import DataPart, DatasetParts, ImageDataModule, device_augment
from lt_imbalance.losses import JointSSL
from lt_imbalance.models.backbones import build_backbone
from lt_imbalance.module import ImbalancedClassifier

METHODS = ("erm", "sam_a", "sam_a_ssl")
IMPLS = ("hand", "framework", "framework+compile")
RHO, SSL_WEIGHT, TEMPERATURE, LR = 0.05, 0.5, 0.5, 0.1
CIFAR10_LT_IMAGES = 12406  # CIFAR-10-LT training images at imbalance ratio 100


# ---- data ------------------------------------------------------------------------------------
class SyntheticLT(ImageDataModule):
    """A long-tailed data module over random 32x32 RGB images (10 classes, exponential profile)."""

    def __init__(self, n_max: int, **kwargs):
        super().__init__(**kwargs)
        self.n_max = n_max

    def load_data(self) -> DatasetParts:
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(10), self.n_max)
        images = torch.from_numpy(rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8))
        return DatasetParts([str(c) for c in range(10)], DataPart(labels, images), DataPart(labels[:100], images[:100]))


def synthetic_data(n_max: int, ratio: float, batch_size: int, ssl: bool) -> SyntheticLT:
    return SyntheticLT(
        n_max, batch_size=batch_size, imbalance_ratio=ratio, val_fraction=0.0, ssl_views=ssl, device_data=True,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
    )  # fmt: skip


# ---- the hand-written loop ---------------------------------------------------------------------
def _nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def hand_loop(args, device: torch.device) -> float:
    """Seconds for ``args.steps`` timed steps (after ``args.warmup``) of the hand-written loop."""
    dm = synthetic_data(args.n_max, args.ratio, args.batch_size, False)
    dm.setup("fit")
    images = dm.train_set.images.to(device)
    labels = dm.train_set.labels.to(device)
    counts = torch.bincount(labels, minlength=10).float()
    ascent_weight = counts.max() / counts  # SAM-A: a_c = n_max / n_c
    mean = torch.tensor(dm.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(dm.std, device=device).view(1, 3, 1, 1)
    backbone = build_backbone(args.backbone).to(device)
    head = nn.Linear(backbone.out_features, 10).to(device)
    modules = [backbone, head]
    ssl = args.method == "sam_a_ssl"
    if ssl:
        d = backbone.out_features
        projector = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, 128)).to(device)
        modules.append(projector)
        views = device_augment.build_ssl_transform(32)
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=2e-4)
    total = args.warmup + args.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    g = torch.Generator(device).manual_seed(0)
    norms = [m for mod in modules for m in mod.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]

    def objective(x, y, v, weights=None):
        logits = head(backbone(x))
        per_sample = F.cross_entropy(logits, y, reduction="none")
        loss = (per_sample * weights).sum() / weights.sum() if weights is not None else per_sample.mean()
        if v is not None:
            z1, z2 = projector(backbone(torch.cat(v))).chunk(2)
            loss = loss + SSL_WEIGHT * _nt_xent(z1, z2, TEMPERATURE)
        return loss

    order, pos = torch.randperm(len(labels), device=device), 0
    for step in range(total):
        if step == args.warmup:
            _sync(device)
            start = time.perf_counter()
        if pos + args.batch_size > len(order):
            order, pos = torch.randperm(len(labels), device=device), 0
        idx = order[pos : pos + args.batch_size]
        pos += args.batch_size
        raw, y = images[idx], labels[idx]
        x = (device_augment.crop_flip(raw, 4, True, g).float() / 255 - mean) / std
        v = [(views(raw, g).float() / 255 - mean) / std for _ in range(2)] if ssl else None
        opt.zero_grad(set_to_none=True)
        if args.method == "erm":
            objective(x, y, v).backward()
        else:
            objective(x, y, v, ascent_weight[y]).backward()  # ascent: class-weighted loss
            grads = [p.grad for p in params]
            scale = RHO / (torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(gr) for gr in grads])) + 1e-12)
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, gr in zip(params, grads):
                    p.add_(gr * scale)
            stats = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
            opt.zero_grad(set_to_none=True)
            objective(x, y, v).backward()  # descent gradient at w + e
            with torch.no_grad():
                for p, w in zip(params, saved):
                    p.copy_(w)
                for m, (rm, rv, nb) in zip(norms, stats):
                    m.running_mean.copy_(rm), m.running_var.copy_(rv), m.num_batches_tracked.copy_(nb)
        opt.step()
        sched.step()
    _sync(device)
    return time.perf_counter() - start


# ---- the framework -------------------------------------------------------------------------------
def framework_run(args, device: torch.device, compile: bool) -> float:
    ssl = args.method == "sam_a_ssl"
    dm = synthetic_data(args.n_max, args.ratio, args.batch_size, ssl)
    model = ImbalancedClassifier(
        backbone=args.backbone, class_counts=dm.class_counts, optimizer=partial(torch.optim.SGD, lr=LR, momentum=0.9, weight_decay=2e-4),
        ssl=JointSSL(weight=SSL_WEIGHT if ssl else 0.0, temperature=TEMPERATURE),
        compile=("reduce-overhead" if device.type == "cuda" else "default") if compile else False,
    )  # fmt: skip
    timer = StepTimer(args.warmup, args.warmup + args.steps, device)
    callbacks = [timer] + ([SAM(rho=RHO, gamma=1.0)] if args.method != "erm" else [])
    with tempfile.TemporaryDirectory() as logs:
        trainer = pl.Trainer(
            accelerator=device.type, devices=1, max_steps=args.warmup + args.steps, callbacks=callbacks,
            logger=TensorBoardLogger(logs), enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        )  # fmt: skip
        trainer.fit(model, dm)
    return timer.elapsed


class StepTimer(pl.Callback):
    """Wall time from the start of optimisation step ``first`` to the end of step ``last - 1`` (device synchronised)."""

    def __init__(self, first: int, last: int, device: torch.device):
        self.first, self.last, self.device = first, last, device
        self.start = self.elapsed = float("nan")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.first:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.last:
            _sync(self.device)
            self.elapsed = time.perf_counter() - self.start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- one cell, in its own process ---------------------------------------------------------------
def run_cell(args) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.impl == "hand":
        seconds = hand_loop(args, device)
    else:
        seconds = framework_run(args, device, compile=args.impl == "framework+compile")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"impl": args.impl, "method": args.method, "batch_size": args.batch_size, "seconds": seconds,
            "images_per_s": args.steps * args.batch_size / seconds, "peak_mib": peak}  # fmt: skip


def cell_command(args, impl: str, method: str, batch: int) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--cell", "--impl", impl, "--method", method,
        "--batch-size", str(batch), "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--backbone", args.backbone, "--n-max", str(args.n_max), "--ratio", str(args.ratio),
    ]  # fmt: skip


def _run(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run_cell_process(command: list[str], env: dict) -> dict:
    """Run one cell in its own process and return its record."""
    return _result(_run(command, env))


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark cell {' '.join(proc.args[3:])} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


# ---- the report ------------------------------------------------------------------------------------
def machine_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}"


def report(records: list[dict], args, concurrent: dict | None) -> str:
    rate = {(r["impl"], r["method"], r["batch_size"]): r for r in records}
    lines = [
        f"Machine: {machine_name(args.device)}; backbone {args.backbone}, 32x32 RGB, fp32; "
        f"{args.steps} timed steps after {args.warmup} warm-up steps per cell.",
        "",
        "| method | batch | hand loop img/s | framework img/s | framework / hand | framework+compile img/s | compiled / hand | peak MiB hand / fw / fw+compile |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for method in args.methods:
        for batch in args.batch_sizes:
            cells = [rate.get((impl, method, batch)) for impl in IMPLS]
            hand = cells[0]["images_per_s"] if cells[0] else float("nan")
            fmt = lambda c: f"{c['images_per_s']:,.0f}" if c else "-"  # noqa: E731
            ratio = lambda c, hand=hand: f"{c['images_per_s'] / hand:.2f}x" if c else "-"  # noqa: E731
            peaks = " / ".join(f"{c['peak_mib']:,.0f}" if c else "-" for c in cells)
            lines.append(
                f"| {method} | {batch} | {fmt(cells[0])} | {fmt(cells[1])} | {ratio(cells[1])} | {fmt(cells[2])} | {ratio(cells[2])} | {peaks} |"
            )
    lines.append("")
    for impl in IMPLS:
        cell = rate.get((impl, "sam_a_ssl", 64))
        if cell:
            minutes = 200 * CIFAR10_LT_IMAGES / cell["images_per_s"] / 60
            lines.append(
                f"- 200-epoch CIFAR-10-LT tuned routine (SAM-A + Joint-SSL, batch 64), {impl}: {minutes:,.1f} min projected (training steps only)"
            )
    if concurrent:
        lines.append(
            f"- {concurrent['k']} framework ERM runs at batch 64 at once: {concurrent['total']:,.0f} img/s in total "
            f"({concurrent['total'] / concurrent['single']:.2f}x one run's {concurrent['single']:,.0f} img/s)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=None, help="default: all on a GPU; hand and framework on a CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per cell (default 100 on a GPU, 10 on a CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 30 on a GPU, 3 on a CPU)")
    parser.add_argument("--backbone", default="resnet32")
    parser.add_argument("--n-max", type=int, default=5000, help="images of the largest class (5000: CIFAR-10-LT)")
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--concurrent", type=int, default=0, help="also run K framework ERM runs (batch 64) at once")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run: resnet20, batches 8 and 16, 2 steps")
    parser.add_argument("--out", type=Path, default=None, help="write the records and the table (JSON + .md) here")
    parser.add_argument("--cell", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args)))
        return
    gpu = args.device.startswith("cuda")
    if args.tiny:
        args.backbone, args.batch_sizes, args.n_max, args.ratio = "resnet20", [8, 16], 40, 10.0
        args.steps, args.warmup = args.steps or 2, args.warmup or 1
    args.steps = args.steps or (100 if gpu else 10)
    args.warmup = args.warmup or (30 if gpu else 3)
    impls = args.impls or (list(IMPLS) if gpu else ["hand", "framework"])
    env = dict(os.environ)
    if not gpu:
        env.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    records = []
    for method in args.methods:
        for batch in args.batch_sizes:
            for impl in impls:
                records.append(_result(_run(cell_command(args, impl, method, batch), env)))
                r = records[-1]
                print(
                    f"{impl:18s} {method:10s} batch {batch:4d}: {r['images_per_s']:10,.0f} img/s  peak {r['peak_mib']:,.0f} MiB", flush=True
                )
    concurrent = None
    if args.concurrent > 1:
        command = cell_command(args, "framework", "erm", 64)
        single = _result(_run(command, env))["images_per_s"]
        shared = dict(env)
        if not gpu:  # K processes share the cores, as the runner's --jobs-per-device does
            shared["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // args.concurrent))
        procs = [_run(command, shared) for _ in range(args.concurrent)]
        total = sum(_result(p)["images_per_s"] for p in procs)
        concurrent = {"k": args.concurrent, "single": single, "total": total}
    table = report(records, args, concurrent)
    print("\n" + table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine_name(args.device), "records": records, "concurrent": concurrent}, indent=2))
        args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
