"""On-device batched augmentation: per operation against torchvision, per-sample randomness, and
the statistics of each policy against the CPU path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from lt_imbalance.data import augment
from lt_imbalance.data import device_augment as D

NEAREST = InterpolationMode.NEAREST


def reference_op(image: torch.Tensor, name: str, m: float) -> torch.Tensor:
    """torchvision's auto-augment operation ``name`` at magnitude ``m`` (the definitions of its
    auto-augment transforms), through torchvision's public functional API."""
    affine = dict(scale=1.0, interpolation=NEAREST, fill=None)
    shear = math.degrees(math.atan(m))
    ops = {
        "Identity": lambda x: x,
        "ShearX": lambda x: TF.affine(x, angle=0.0, translate=[0, 0], shear=[shear, 0.0], center=[0, 0], **affine),
        "ShearY": lambda x: TF.affine(x, angle=0.0, translate=[0, 0], shear=[0.0, shear], center=[0, 0], **affine),
        "TranslateX": lambda x: TF.affine(x, angle=0.0, translate=[int(m), 0], shear=[0.0, 0.0], **affine),
        "TranslateY": lambda x: TF.affine(x, angle=0.0, translate=[0, int(m)], shear=[0.0, 0.0], **affine),
        "Rotate": lambda x: TF.rotate(x, angle=m, interpolation=NEAREST, fill=None),
        "Brightness": lambda x: TF.adjust_brightness(x, 1.0 + m),
        "Color": lambda x: TF.adjust_saturation(x, 1.0 + m),
        "Contrast": lambda x: TF.adjust_contrast(x, 1.0 + m),
        "Sharpness": lambda x: TF.adjust_sharpness(x, 1.0 + m),
        "Posterize": lambda x: TF.posterize(x, bits=int(m)),
        "Solarize": lambda x: TF.solarize(x, threshold=255.0 * m),
        "AutoContrast": TF.autocontrast,
        "Equalize": TF.equalize,
        "Invert": TF.invert,
    }
    return ops[name](image)


def _images(n: int, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth images with some high-frequency rows (so every operation has something to do)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, size // 4, size // 4, generator=g)
    x = (F.interpolate(base, size=size, mode="bilinear") * 255).to(torch.uint8)
    x[:, :, ::7] = torch.randint(0, 256, x[:, :, ::7].shape, generator=g, dtype=torch.uint8)
    return x


def _magnitudes(name: str) -> list[float]:
    if name in ("Identity", "AutoContrast", "Equalize", "Invert"):
        return [0.0]
    if name == "Posterize":
        return [2.0, 4.0, 6.0]
    if name == "Solarize":
        return [0.2, 0.7]
    if name in ("TranslateX", "TranslateY", "Rotate"):
        return [7.6, -12.0, 30.0]
    return [0.3, -0.45, 0.99]


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("name", D.OPS)
def test_each_operation_matches_torchvision(name, channels):
    x = _images(12, channels)
    for mag in _magnitudes(name):
        ours = D.apply_ops(x, torch.full((12,), D.OP[name]), torch.full((12,), mag))
        ref = torch.stack([reference_op(xi, name, mag) for xi in x])
        diff = (ours.int() - ref.int()).abs()
        assert ours.dtype == torch.uint8 and ours.shape == x.shape
        assert diff.max() <= 1, (name, mag)  # float blending order may round one level differently
        assert (diff == 0).float().mean() > 0.9, (name, mag)


def test_mixed_operations_in_one_batch_are_each_image_own():
    x = _images(len(D.OPS))
    op = torch.arange(len(D.OPS))
    mag = torch.tensor([{"Posterize": 4.0, "Solarize": 0.5}.get(n, 10.0 if n in ("TranslateX", "Rotate") else 0.3) for n in D.OPS])
    mixed = D.apply_ops(x, op, mag)
    for i in range(len(D.OPS)):
        alone = D.apply_ops(x[i : i + 1], op[i : i + 1], mag[i : i + 1])
        assert torch.equal(mixed[i], alone[0]), D.OPS[i]


def test_crop_flip_is_a_shifted_window_of_the_padded_image():
    x = _images(64)
    out = D.crop_flip(x, 4, True, torch.Generator().manual_seed(0))
    padded = F.pad(x, (4,) * 4)
    for i in range(len(x)):
        windows = [padded[i, :, a : a + 32, b : b + 32] for a in range(9) for b in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) > 1


POLICIES = ["standard", "trivialaugment", "randaugment", "autoaugment"]


@pytest.mark.parametrize("policy", POLICIES)
def test_policy_draws_per_sample_and_is_seeded(policy):
    same = _images(1).repeat(256, 1, 1, 1)  # one image, 256 times
    transform = D.build_train_transform(policy, 32)
    out = transform(same, torch.Generator().manual_seed(1))
    assert out.shape == same.shape and out.dtype == torch.uint8
    distinct = len({o.numpy().tobytes() for o in out})
    assert distinct > 100, f"{policy}: only {distinct} different outputs of 256"
    assert torch.equal(out, transform(same, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, transform(same, torch.Generator().manual_seed(2)))


def _stats(x: torch.Tensor) -> torch.Tensor:
    """Pixel mean and std, share of black pixels, and the mean per-image change of brightness."""
    xf = x.float()
    return torch.stack([xf.mean(), xf.std(), (x == 0).float().mean() * 255, xf.mean((1, 2, 3)).std()])


@pytest.mark.parametrize("channels,hflip", [(3, True), (1, False)])
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_statistics_match_the_cpu_path(policy, channels, hflip):
    x = _images(64, channels, seed=3).repeat(24, 1, 1, 1)
    size = x.shape[-1]
    torch.manual_seed(0)
    cpu = augment.build_train_transform(policy, size, hflip)
    cpu_out = torch.stack([cpu(xi) for xi in x])
    dev_out = D.build_train_transform(policy, size, hflip)(x, torch.Generator().manual_seed(0))
    assert dev_out.shape == cpu_out.shape and dev_out.dtype == cpu_out.dtype
    assert torch.allclose(_stats(dev_out), _stats(cpu_out), rtol=0.04, atol=1.5), (_stats(dev_out), _stats(cpu_out))


@pytest.mark.parametrize("channels", [3, 1])
def test_ssl_views_match_the_cpu_views(channels):
    x = _images(64, channels, seed=4).repeat(24, 1, 1, 1)
    torch.manual_seed(0)
    cpu = augment.build_ssl_transform(32, True, channels)
    cpu_out = torch.stack([cpu(xi) for xi in x])
    view = D.build_ssl_transform(32, True, channels)
    dev_out = view(x, torch.Generator().manual_seed(0))
    assert dev_out.shape == x.shape and dev_out.dtype == torch.uint8
    assert torch.allclose(_stats(dev_out), _stats(cpu_out), rtol=0.05, atol=1.5), (_stats(dev_out), _stats(cpu_out))
    # two views of the same image differ
    g = torch.Generator().manual_seed(5)
    assert (view(x[:64], g) != view(x[:64], g)).flatten(1).any(1).all()


def test_resized_crop_of_the_whole_image_is_the_image():
    x = _images(8)
    out = D.resized_crop(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.equal(out, x)


def test_hue_shift_by_a_whole_turn_is_identity_and_a_third_permutes_channels():
    x = torch.rand(4, 3, 5, 5)
    assert torch.allclose(D._shift_hue(x, torch.ones(4)), x, atol=1e-5)
    assert torch.allclose(D._shift_hue(x, torch.full((4,), 1 / 3)), x[:, [2, 0, 1]], atol=1e-5)
