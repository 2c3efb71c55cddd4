"""ImageNet-LT, Places-LT and iNaturalist 2018 on fake trees in the published list / JSON formats:
counts, groups, names, errors; streaming gives the batches that in-memory decoding gives."""

import json
import signal

import numpy as np
import pytest
import torch

from fakes import FAKE_LIST_COUNTS, write_fake_inaturalist, write_fake_list_benchmark
from lt_imbalance.data import FileImageDataModule, ImageNetLT, INaturalist2018, PlacesLT
from lt_imbalance.metrics import shot_groups

SMALL = {"num_classes": len(FAKE_LIST_COUNTS), "image_size": 24, "resize_size": 28, "batch_size": 4}


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory):
    return write_fake_list_benchmark(tmp_path_factory.mktemp("imagenet"), "imagenet")


def test_imagenet_lt_counts_names_groups_and_official_splits(imagenet_dir):
    data = ImageNetLT(data_dir=str(imagenet_dir), **SMALL)
    assert data.class_counts == list(FAKE_LIST_COUNTS)  # the list's distribution, no further draw
    assert data.class_names[:2] == ["n00000000", "n00000001"]  # the wnid folders, less the shared train/
    assert shot_groups(data.class_counts) == {"many": [0], "medium": [1, 2], "few": [3, 4, 5]}
    data.setup("fit")
    assert data.val_counts == [2] * 6 and data.test_counts == [3] * 6
    assert all("/val/" in str(p) for p in data.test_set.paths)
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.uint8
    assert data.metadata["in_memory"] is False and data.metadata["resize_size"] == 28


def test_places_lt_names_scenes_and_tests_on_the_places_validation_images(tmp_path):
    root = write_fake_list_benchmark(tmp_path, "places")
    data = PlacesLT(data_dir=str(root), **SMALL)
    assert data.class_counts == list(FAKE_LIST_COUNTS)
    assert data.class_names[:2] == ["airfield", "bakery"]
    data.setup("fit")
    assert all(p.name.startswith("Places365_val_") for p in data.test_set.paths)


def test_a_leading_slash_is_read_as_relative_to_data_dir(tmp_path):
    root = write_fake_list_benchmark(tmp_path, "places")
    train_list = root / "Places_LT_train.txt"
    train_list.write_text("".join(f"/{line}\n" for line in train_list.read_text().splitlines()))  # Places-365's own style
    data = PlacesLT(data_dir=str(root), **SMALL)
    assert data.class_counts == list(FAKE_LIST_COUNTS) and data.class_names[0] == "airfield"


def test_inaturalist_json_names_and_test_set(tmp_path):
    root = write_fake_inaturalist(tmp_path)
    data = INaturalist2018(data_dir=str(root), **SMALL)
    assert data.class_counts == list(FAKE_LIST_COUNTS) and data.class_names[3] == "Species 3"
    data.setup("fit")
    assert data.test_counts == [3] * 6 and data.val_set is data.test_set  # the literature validates on it


def test_evaluation_resizes_then_centre_crops(imagenet_dir):
    data = ImageNetLT(data_dir=str(imagenet_dir), **SMALL)
    data.setup("fit")
    image = data.test_set.load(0)
    assert image.shape == (3, 24, 24)
    from PIL import Image
    from torchvision.transforms import v2

    with Image.open(data.test_set.paths[0]) as raw:
        full = v2.functional.pil_to_tensor(raw.convert("RGB"))
    expected = v2.functional.center_crop(v2.functional.resize(full, 28, antialias=True), 24)
    assert torch.equal(image, expected)
    with Image.open(data.train_set.paths[0]) as raw:
        full_train = v2.functional.pil_to_tensor(raw.convert("RGB"))
    assert torch.equal(data.train_set.load(0), full_train)  # random_resized_crop crops the full image
    assert data.train_set[0][0].shape == (3, 24, 24)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda root: (root / "ImageNet_LT_train.txt").unlink(), "list file .*ImageNet_LT_train.txt' not found"),
        (
            lambda root: (root / "ImageNet_LT_test.txt").write_text("val/x.JPEG\n"),
            "line 1: expected '<relative image path> <integer label>'",
        ),
        (
            lambda root: (root / "ImageNet_LT_val.txt").write_text("train/n00000000/n00000000_1000.JPEG 6\n"),
            "line 1: label 6 is outside 0..5",
        ),
        (
            lambda root: [(root / line.split()[0]).unlink() for line in (root / "ImageNet_LT_train.txt").read_text().splitlines()[:7]],
            "ImageNet_LT_train.txt lists 7 images that do not exist: '[^']*n00000000_0.JPEG'(, '[^']*'){4} and 2 more",
        ),
    ],
)
def test_list_errors_name_the_problem(tmp_path, edit, message):
    root = write_fake_list_benchmark(tmp_path, "imagenet")
    edit(root)
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        ImageNetLT(data_dir=str(root), **SMALL).setup("fit")


def test_inaturalist_errors(tmp_path):
    root = write_fake_inaturalist(tmp_path)
    (root / "val2018.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="is not an iNaturalist .*annotations"):
        INaturalist2018(data_dir=str(root), **SMALL).setup("fit")
    with pytest.raises(ValueError, match="category ids \\[5\\] are outside 0..4"):
        INaturalist2018(data_dir=str(root), **{**SMALL, "num_classes": 5}).class_counts


def test_random_resized_crop_is_refused_in_memory_and_on_device(imagenet_dir):
    with pytest.raises(ValueError, match="set in_memory: false"):
        ImageNetLT(data_dir=str(imagenet_dir), in_memory=True, **SMALL)
    with pytest.raises(ValueError, match="set device_data: false"):
        ImageNetLT(data_dir=str(imagenet_dir), device_data=True, **SMALL)


@pytest.mark.parametrize("augmentation", ["standard", "trivialaugment"])
def test_streaming_gives_the_batches_of_in_memory_decoding(imagenet_dir, augmentation):
    def batches(in_memory: bool):
        data = ImageNetLT(data_dir=str(imagenet_dir), in_memory=in_memory, augmentation=augmentation, ssl_views=True, **SMALL)
        data.setup("fit")
        return [tuple(t.clone() for t in batch) for _, batch in zip(range(5), data.train_dataloader())]

    streamed, held = batches(False), batches(True)
    for a, b in zip(streamed, held):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_statistics_of_streamed_images_equal_those_held_in_memory(imagenet_dir):
    streamed = ImageNetLT(data_dir=str(imagenet_dir), augmentation="standard", **SMALL)
    held = ImageNetLT(data_dir=str(imagenet_dir), augmentation="standard", in_memory=True, **SMALL)
    streamed.setup("fit")
    held.setup("fit")
    assert np.allclose(streamed.mean, held.mean, atol=1e-6) and np.allclose(streamed.std, held.std, atol=1e-6)
    assert isinstance(streamed, FileImageDataModule)


@pytest.mark.parametrize(("augmentation", "workers"), [("random_resized_crop", 0), ("trivialaugment", 2)])
def test_gpu_decode_gives_the_streamed_batches(imagenet_dir, augmentation, workers):
    """On the CPU the batched decode is the same libjpeg as PIL's, so the batches are identical;
    on a GPU (nvJPEG) pixels may differ by a few levels. With loader workers, a batch's bytes cross
    from the worker as one tensor (one file descriptor per batch, not one per file)."""
    settings = {"augmentation": augmentation, "ssl_views": True, "num_workers": workers, **SMALL}
    streamed = ImageNetLT(data_dir=str(imagenet_dir), **settings)
    decoded = ImageNetLT(data_dir=str(imagenet_dir), gpu_decode=True, **settings)
    streamed.setup("fit")
    decoded.setup("fit")
    assert decoded.mean == streamed.mean
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the gpu_decode loader hung (its workers could not send a batch)"))
    signal.alarm(60)
    try:
        for _, a, encoded in zip(range(3), streamed.train_dataloader(), decoded.train_dataloader()):
            assert isinstance(encoded, dict) and encoded["encoded"].dim() == 1 and len(encoded["lengths"]) == 4  # the loader read bytes
            b = decoded.on_before_batch_transfer(encoded, 0)
            assert len(a) == len(b) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))
    finally:
        signal.alarm(0)
    assert not isinstance(decoded.test_set, type(decoded.train_set))  # evaluation streams as usual


def test_gpu_decode_names_a_file_that_is_not_a_jpeg(tmp_path):
    root = write_fake_list_benchmark(tmp_path, "imagenet")
    victim = root / next(line.split()[0] for line in (root / "ImageNet_LT_train.txt").read_text().splitlines() if line.endswith(" 3"))
    from PIL import Image

    Image.new("RGB", (8, 8)).save(victim, format="PNG")  # a PNG under a JPEG name
    data = ImageNetLT(data_dir=str(root), gpu_decode=True, **{**SMALL, "batch_size": 8})
    data.setup("fit")
    with pytest.raises(OSError, match=f"cannot decode '{victim}' as a JPEG"):
        for batch in data.train_dataloader():
            data.on_before_batch_transfer(batch, 0)


def test_gpu_decode_trains_through_the_command(tmp_path, monkeypatch, imagenet_dir):
    from pathlib import Path

    from lt_imbalance.commands.lightning_cli import build_cli

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cli = build_cli(
        ["fit", "--config", "configs/imagenet_lt/erm.yaml", "--trainer.fast_dev_run", "2", "--trainer.precision", "32-true",
         "--trainer.default_root_dir", str(tmp_path), "--data.init_args.data_dir", str(imagenet_dir), "--data.init_args.gpu_decode", "true",
         "--data.init_args.num_classes", "6", "--data.init_args.image_size", "32", "--data.init_args.resize_size", "36",
         "--data.init_args.batch_size", "8", "--data.init_args.num_workers", "0", "--trainer.callbacks+=OverfittingMonitor"]
    )  # fmt: skip
    assert cli.trainer.global_step == 2 and "test" in cli.model.evaluations


def test_gpu_decode_excludes_in_memory_and_device_data(imagenet_dir):
    with pytest.raises(ValueError, match="gpu_decode .* excludes in_memory and device_data"):
        ImageNetLT(data_dir=str(imagenet_dir), gpu_decode=True, in_memory=True, augmentation="standard", **SMALL)
