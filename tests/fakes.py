"""Fake data in the datasets' real on-disk formats, written by the tests (no network)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_fake_cifar10(root: Path, per_class_train: int = 300, per_class_test: int = 10, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with 5 train batches, a test batch and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10), per_class_train)
    rng.shuffle(labels)
    for i, part in enumerate(np.array_split(labels, 5), start=1):
        data = rng.integers(0, 256, (len(part), 3072), dtype=np.uint8)
        _pickle(folder / f"data_batch_{i}", {"data": data, "labels": part.tolist(), "batch_label": f"training batch {i} of 5"})
    test_labels = np.repeat(np.arange(10), per_class_test)
    _pickle(folder / "test_batch", {"data": rng.integers(0, 256, (len(test_labels), 3072), dtype=np.uint8), "labels": test_labels.tolist()})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": len(labels) // 5, "num_vis": 3072})
    return root


def read_pickle_labels(folder: Path, files: list[str], key: str) -> np.ndarray:
    """The labels of CIFAR pickle ``files`` in ``folder``, concatenated in order (as the training set is)."""
    labels = []
    for name in files:
        with open(folder / name, "rb") as f:
            labels.append(np.asarray(pickle.load(f, encoding="latin1")[key]))
    return np.concatenate(labels)


def write_fake_cifar100(root: Path, per_class_train: int = 100, per_class_test: int = 2, seed: int = 0) -> Path:
    """``root/cifar-100-python`` with train, test and meta pickles (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, per_class in (("train", per_class_train), ("test", per_class_test)):
        fine = np.repeat(np.arange(100), per_class)
        rng.shuffle(fine)
        data = rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
        _pickle(folder / name, {"data": data, "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist()})
    _pickle(
        folder / "meta",
        {"fine_label_names": [f"class_{i:02d}" for i in range(100)], "coarse_label_names": [f"super_{i}" for i in range(20)]},
    )
    return root


def write_image_folder(root: Path, counts: dict[str, int], size: int = 12, modes=("RGB",), seed: int = 0) -> Path:
    """``root/<class>/img_<i>.png`` (and .jpg for every third image), cycling through PIL ``modes``."""
    rng = np.random.default_rng(seed)
    k = 0
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            mode = modes[k % len(modes)]
            k += 1
            channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
            pixels = rng.integers(0, 256, (size, size + 3, channels), dtype=np.uint8).squeeze()
            suffix = ".jpg" if i % 3 == 2 and mode != "RGBA" else ".png"
            Image.fromarray(pixels, mode=mode).save(root / name / f"img_{i}{suffix}")
    return root


def write_fake_tiny_imagenet(root: Path, wnids=("n01443537", "n01629819", "n01641577"), per_class=20, val_per_class=4, seed=0) -> Path:
    """``root/tiny-imagenet-200`` with wnids.txt, words.txt, train/<wnid>/images/*.JPEG and val/."""
    rng = np.random.default_rng(seed)
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")  # not sorted, like the real file
    (base / "words.txt").write_text("".join(f"{w}\tthing {i}, other name\n" for i, w in enumerate(wnids)))
    lines = []
    for w in wnids:
        folder = base / "train" / w / "images"
        folder.mkdir(parents=True)
        (base / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{w}_{i}.JPEG", format="JPEG")
        for _ in range(val_per_class):
            name = f"val_{len(lines)}.JPEG"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(base / "val" / "images" / name, format="JPEG")
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_fake_medmnist(path: Path, num_classes=7, counts=(60, 30, 15, 8, 5, 4, 3), size=28, rgb=True, seed=0) -> Path:
    """A MedMNIST-style .npz: {train,val,test}_{images,labels}, labels of shape N x 1."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, scale in (("train", 1.0), ("val", 0.3), ("test", 0.5)):
        labels = np.concatenate([[c] * max(1, int(n * scale)) for c, n in enumerate(counts[:num_classes])])
        shape = (len(labels), size, size, 3) if rgb else (len(labels), size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def write_fake_isic(root: Path, counts=None, seed=0) -> tuple[Path, Path]:
    """``root/images/ISIC_<n>.jpg`` and ``root/GroundTruth.csv`` with one-hot columns (UNK all zero)."""
    counts = counts or {"MEL": 12, "NV": 30, "BCC": 8, "DF": 4}
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    classes = list(counts) + ["UNK"]
    rows, k = ["image," + ",".join(classes)], 0
    for c, n in counts.items():
        for _ in range(n):
            name = f"ISIC_{k:07d}"
            k += 1
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"{name}.jpg")
            rows.append(name + "," + ",".join("1.0" if x == c else "0.0" for x in classes))
    csv_path = root / "GroundTruth.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    return images, csv_path


def write_fake_eurosat(root: Path, per_class=40, classes=("AnnualCrop", "Forest", "Highway", "River"), seed=0) -> Path:
    """torchvision's EuroSAT layout: ``root/eurosat/2750/<class>/<class>_<n>.jpg`` (64x64 RGB)."""
    rng = np.random.default_rng(seed)
    for c in classes:
        folder = root / "eurosat" / "2750" / c
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{c}_{i + 1}.jpg")
    return root


def write_fake_table(path: Path, counts=(80, 30, 10), seed=0) -> Path:
    """A CSV or Parquet table (by suffix): numeric, categorical and missing values, target 'label'."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = np.concatenate([[f"class_{c}"] * n for c, n in enumerate(counts)])
    codes = np.array([int(s[-1]) for s in labels])
    frame = pd.DataFrame(
        {
            "id": np.arange(len(labels)),
            "signal": codes * 2.0 + rng.normal(0, 0.5, len(labels)),
            "noise": rng.normal(0, 1, len(labels)),
            "colour": rng.choice(["red", "green", "blue"], len(labels)),
            "label": labels,
        }
    )
    frame.loc[::7, "noise"] = np.nan
    frame.loc[::11, "colour"] = None
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


def _jpeg(path: Path, rng: np.random.Generator, size=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path


#: training images per class of the fake list benchmarks: a long tail with many / medium / few-shot classes
FAKE_LIST_COUNTS = (120, 40, 25, 12, 6, 3)
FAKE_SCENES = ("airfield", "bakery", "canyon", "desert", "field", "harbor")


def write_fake_list_benchmark(root: Path, kind: str, counts=FAKE_LIST_COUNTS, val_per_class=2, test_per_class=3, seed=0) -> Path:
    """A fake ImageNet-LT (``imagenet``) or Places-LT (``places``) tree with its three list files,
    in the published formats: ``train/<wnid>/<wnid>_<i>.JPEG <label>`` over the ImageNet tree and
    ``train/<scene>/<8 digits>.jpg <label>`` over Places-365-Standard's tree (test images from
    ``val/<wnid>/ILSVRC2012_val_<n>.JPEG`` and ``val/<scene>/Places365_val_<n>.jpg``)."""
    rng = np.random.default_rng(seed)
    prefix = {"imagenet": "ImageNet_LT", "places": "Places_LT"}[kind]
    parts = {"train": counts, "val": [val_per_class] * len(counts), "test": [test_per_class] * len(counts)}
    for part, per_class in parts.items():
        lines = []
        for label, n in enumerate(per_class):
            for i in range(n):
                number = len(lines) + 1000 * (part == "val")
                if kind == "imagenet":
                    wnid = f"n{label:08d}"
                    relative = f"val/{wnid}/ILSVRC2012_val_{number:08d}.JPEG" if part == "test" else f"train/{wnid}/{wnid}_{number}.JPEG"
                else:
                    scene = FAKE_SCENES[label % len(FAKE_SCENES)] + ("" if label < len(FAKE_SCENES) else str(label))
                    relative = f"val/{scene}/Places365_val_{number:08d}.jpg" if part == "test" else f"train/{scene}/{number:08d}.jpg"
                _jpeg(root / relative, rng, size=(40 + 4 * (i % 3), 30))
                lines.append(f"{relative} {label}")
        (root / f"{prefix}_{part}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_fake_inaturalist(root: Path, counts=FAKE_LIST_COUNTS, test_per_class=3, seed=0) -> Path:
    """``train2018.json`` / ``val2018.json`` (COCO-style) and ``train_val2018/<kingdom>/<id>/*.jpg``."""
    rng = np.random.default_rng(seed)
    categories = [{"id": c, "name": f"Species {c}", "supercategory": "Plantae"} for c in range(len(counts))]
    image_id = 0
    for name, per_class in (("train2018.json", counts), ("val2018.json", [test_per_class] * len(counts))):
        images, annotations = [], []
        for c, n in enumerate(per_class):
            for _ in range(n):
                file_name = f"train_val2018/Plantae/{c}/{image_id:06x}.jpg"
                _jpeg(root / file_name, rng)
                images.append({"id": image_id, "file_name": file_name, "width": 40, "height": 30})
                annotations.append({"id": image_id, "image_id": image_id, "category_id": c})
                image_id += 1
        (root / name).write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root
