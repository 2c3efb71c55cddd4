"""Images per second of the streaming training pipeline at 224 px (a script, not a test).

    python scripts/data_throughput.py [--images 768] [--workers 0 1 2] [--batch-size 64] [--gpu-decode] [--out DIR]

Writes a fake ImageNet-LT tree (JPEGs of ImageNet's typical size, 500 x 375, quality 90, with
its list files) to a temporary folder, then for each worker count iterates the training loader of
``ImageNetLT`` as ``configs/imagenet_lt/erm.yaml`` builds it (decode, RandomResizedCrop 224,
flip, collate) and the evaluation loader (decode, resize 256, centre crop 224), after one
warm-up batch, and prints a markdown table of images/s with the machine it ran on. A GPU needs
about (its training images/s) / (images/s per worker) workers. ``--gpu-decode`` adds, for each
worker count, the training pipeline with ``gpu_decode: true`` (workers read the files' bytes; each
batch is decoded and cropped on ``--device``, CUDA when there is one, timed to the device's
finish). ``--tiny`` runs in seconds (the tests use it so the script cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_tree(root: Path, images: int, classes: int, size: tuple[int, int], seed: int = 0) -> None:
    """``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` with the three ImageNet-LT list files."""
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)  # photo-like: mostly low frequencies
    base = np.asarray(Image.fromarray(smooth).resize(size, Image.BILINEAR), dtype=np.int16)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i in range(images):
        label = i % classes
        part = ("val", "test")[(i // 10) % 2] if i % 10 == 0 else "train"
        folder = "val" if part == "test" else "train"
        relative = f"{folder}/n{label:08d}/n{label:08d}_{i}.JPEG"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(-20, 21, base.shape, dtype=np.int16)
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(root / relative, quality=90)
        lines[part].append(f"{relative} {label}")
    for part, entries in lines.items():
        (root / f"ImageNet_LT_{part}.txt").write_text("\n".join(entries) + "\n")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def images_per_second(loader, batches: int, finish=None) -> float:
    """Images/s over ``batches`` batches after a warm-up one; ``finish`` turns a loader batch into
    the training batch (``gpu_decode``) and waits for the device."""
    finish = finish or (lambda batch: batch)
    iterator = iter(loader)
    finish(next(iterator))  # warm-up: worker start, first decode
    start, seen = time.perf_counter(), 0
    for _, batch in zip(range(batches), iterator):
        seen += len(finish(batch)[1])
    return seen / (time.perf_counter() - start)


def device_decoder(data, device: torch.device):
    """``gpu_decode``'s step between the loader and the model, synchronised so that it is timed."""

    def finish(batch):
        decoded = data.decode_batch(batch, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return decoded

    return finish


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=768)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gpu-decode", action="store_true", help="also time the training pipeline with gpu_decode: true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where gpu_decode decodes")
    parser.add_argument("--tiny", action="store_true", help="a few small images (seconds; for the tests)")
    parser.add_argument("--out", default=None, help="also write throughput.md / throughput.json here")
    args = parser.parse_args(argv)
    size, crop, resize = ((500, 375), 224, 256) if not args.tiny else ((40, 30), 24, 28)
    if args.tiny:
        args.images, args.batch_size, args.workers = 120, 4, [0]
    from lt_imbalance.data import ImageNetLT

    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_tree(root, args.images, args.classes, size)

        def data_module(workers: int, gpu_decode: bool = False):
            data = ImageNetLT(
                data_dir=str(root), num_classes=args.classes, batch_size=args.batch_size, num_workers=workers,
                image_size=crop, resize_size=resize, mean=[0.5] * 3, std=[0.25] * 3, gpu_decode=gpu_decode,
            )  # fmt: skip
            data.setup("fit")
            return data

        for workers in args.workers:
            data = data_module(workers)
            batches = max(1, len(data.train_set) // args.batch_size - 1)
            train = images_per_second(data.train_dataloader(), batches)
            evaluation = data.train_eval_dataset()  # the training images through the evaluation transform
            test = images_per_second(data.eval_loader(evaluation), max(1, len(evaluation) // args.batch_size - 1))
            row = {"workers": workers, "train_images_per_s": train, "eval_images_per_s": test}
            if args.gpu_decode:
                decoding = data_module(workers, gpu_decode=True)
                row["gpu_decode_train_images_per_s"] = images_per_second(
                    decoding.train_dataloader(), batches, device_decoder(decoding, device)
                )
            rows.append(row)
    machine = f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores"
    decode_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    extra = f" | training images/s with gpu_decode on {decode_device} |" if args.gpu_decode else " |"
    lines = [
        f"Streaming data pipeline at {crop} px ({size[0]}x{size[1]} JPEGs, batch {args.batch_size}; {machine}):",
        "",
        "| loader workers | training images/s (decode, RandomResizedCrop, flip) | evaluation images/s (decode, resize, crop)" + extra,
        "|---:|---:|---:|" + ("---:|" if args.gpu_decode else ""),
    ]
    for r in rows:
        decoded = f" {r['gpu_decode_train_images_per_s']:.0f} |" if args.gpu_decode else ""
        lines.append(f"| {r['workers']} | {r['train_images_per_s']:.0f} | {r['eval_images_per_s']:.0f} |{decoded}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "throughput.md").write_text(table + "\n")
        (out / "throughput.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)  # one thread per loader process, as a multi-worker loader runs
    main()
