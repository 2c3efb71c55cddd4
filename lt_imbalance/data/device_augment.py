"""The augmentation policies of :mod:`lt_imbalance.data.augment`, applied per batch on the device.

Same names and semantics as the per-sample CPU path (torchvision v2), but every image of a batch
draws its own parameters in one vectorised pass: a uint8 ``[B, C, H, W]`` batch in, a uint8 batch
of the same shape out, no host synchronisation, randomness from a ``torch.Generator`` on the
batch's device. That removes the CPU data-loading bottleneck of small images (per-image
TrivialAugment on 15 CPU workers delivers about 19k img/s, less than one H100 trains ResNet-32 at).

How the per-sample operations are vectorised:

- **crop + flip** (``standard``): zero padding of size/8, one random offset per image (a gather),
  horizontal flip where a per-image coin says so;
- **auto-augment operations** (``trivialaugment``, ``randaugment``, ``autoaugment``): each image
  draws an operation id and a signed magnitude from the policy's table (the published
  augmentation spaces, identical to torchvision's); the batch then computes each *kind* of
  operation once for all images and every image keeps the result of its own:

  - geometric (shear, translate, rotate): one affine warp with a per-image inverse matrix,
    nearest-neighbour, zero fill, matrix and sampling grid as in torchvision's ``affine``;
  - colour blends (brightness, colour, contrast, sharpness): out = clip(r x + (1 - r) d) with
    r = 1 + magnitude and d the image's degenerate (black, grey, mean grey, 3x3-smoothed);
  - posterize (per-image bit mask), solarize (per-image threshold), autocontrast, equalize, invert.

  Matching torchvision operation by operation is tested, so the policies are statistically the
  same as the CPU path's (the random streams differ);
- **SimCLR views** (Joint-SSL, :func:`build_ssl_transform`): random resized crop (scale 0.2-1,
  ratio 3/4-4/3, bilinear), flip, colour jitter (brightness, contrast, saturation 0.4, hue 0.1,
  p = 0.8, in a per-image random order) and grey-scale with p = 0.2.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from lt_imbalance.data.augment import check_policy
from lt_imbalance.errors import UnsupportedCombination

Generator = torch.Generator
DeviceTransform = Callable[[torch.Tensor, Generator], torch.Tensor]

OPS = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
    "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
    "AutoContrast", "Equalize", "Invert",
)  # fmt: skip
OP = {name: i for i, name in enumerate(OPS)}
# the kind of each operation: 0 identity, 1 geometric, 2 colour blend, 3..7 the rest
_KIND = torch.tensor([0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 5, 6, 7])


def _linspace(hi: float, signed: bool = True):
    return lambda bins, h, w: (torch.linspace(0.0, hi, bins), signed)


def _space(translate: Callable[[int, int], float], shear: float, rotate: float, colour: float, posterize_span: int):
    """An augmentation space: operation -> (magnitudes(num_bins, H, W) -> (values, signed))."""
    return {
        "ShearX": _linspace(shear),
        "ShearY": _linspace(shear),
        "TranslateX": lambda bins, h, w: (torch.linspace(0.0, translate(h, w), bins), True),
        "TranslateY": lambda bins, h, w: (torch.linspace(0.0, translate(w, h), bins), True),
        "Rotate": _linspace(rotate),
        "Brightness": _linspace(colour),
        "Color": _linspace(colour),
        "Contrast": _linspace(colour),
        "Sharpness": _linspace(colour),
        "Posterize": lambda bins, h, w: ((8 - torch.arange(bins) / ((bins - 1) / posterize_span)).round(), False),
        "Solarize": lambda bins, h, w: (torch.linspace(1.0, 0.0, bins), False),
    }


# AutoAugment / RandAugment (Cubuk et al. 2019, 2020): translate up to 150/331 of the side
_RA_SPACE = _space(lambda h, w: 150.0 / 331.0 * w, shear=0.3, rotate=30.0, colour=0.9, posterize_span=4)
# TrivialAugment Wide (Mueller and Hutter 2021): wider ranges, translate up to 32 px
_TA_SPACE = _space(lambda h, w: 32.0, shear=0.99, rotate=135.0, colour=0.99, posterize_span=6)
_TA_RA_OPS = OPS[:14]  # TrivialAugment and RandAugment draw from all but Invert
# AutoAugment's CIFAR-10 policy: 25 sub-policies of two (operation, probability, magnitude bin of 10)
_AA_CIFAR10 = (
    (("Invert", 0.1, 0), ("Contrast", 0.2, 6)), (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)), (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, 0), ("Equalize", 0.9, 0)), (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)), (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, 0), ("Equalize", 0.5, 0)), (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)), (("Equalize", 0.3, 0), ("AutoContrast", 0.4, 0)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)), (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, 0)), (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.2, 0), ("Equalize", 0.6, 0)), (("Color", 0.9, 9), ("Equalize", 0.6, 0)),
    (("AutoContrast", 0.8, 0), ("Solarize", 0.2, 8)), (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 0)), (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, 0), ("Solarize", 0.8, 3)), (("Equalize", 0.8, 0), ("Invert", 0.1, 0)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 0)),
)  # fmt: skip


def magnitude_table(space: dict, bins: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [len(OPS), bins], signed [len(OPS)])``; operations without a magnitude get zeros."""
    values, signed = torch.zeros(len(OPS), bins), torch.zeros(len(OPS), dtype=torch.bool)
    for name, fn in space.items():
        values[OP[name]], signed[OP[name]] = fn(bins, height, width)
    return values, signed


# (id, device) -> (the table, kept alive so its id is never reused; its copy on the device)
_DEVICE_COPIES: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _on_device(table: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``table`` on ``device``, copied once (not a host-to-device copy per batch)."""
    key = (id(table), device)
    if key not in _DEVICE_COPIES:
        _DEVICE_COPIES[key] = (table, table.to(device))
    return _DEVICE_COPIES[key][1]


# ---- per-sample operations ------------------------------------------------------------------
def _uniform(n: int, lo: float, hi: float, g: Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def crop_flip(x: torch.Tensor, padding: int, hflip: bool, g: Generator) -> torch.Tensor:
    """Random crop of the zero-padded image (offsets uniform in [0, 2 padding]) and, if ``hflip``, a
    horizontal flip with p = 0.5, drawn per image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (b, 1), generator=g, device=x.device)
    ox = torch.randint(0, 2 * padding + 1, (b, 1), generator=g, device=x.device)
    rows = oy + torch.arange(h, device=x.device)
    cols = ox + torch.arange(w, device=x.device)
    if hflip:
        flip = torch.rand(b, 1, generator=g, device=x.device) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def _inverse_affine(angle, shear_x, shear_y, tx, ty, cx, cy) -> torch.Tensor:
    """Per-image inverse affine matrices [B, 2, 3] (output pixel -> input pixel, coordinates relative
    to the image centre), the batched form of torchvision's ``_get_inverse_affine_matrix`` at scale 1.
    Angles in radians."""
    a = torch.cos(angle - shear_y) / torch.cos(shear_y)
    b = -(a * torch.tan(shear_x) + torch.sin(angle))
    c = torch.sin(angle - shear_y) / torch.cos(shear_y)
    d = torch.cos(angle) - c * torch.tan(shear_x)
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * (cx + tx) - m1 * (cy + ty)
    m5 = cy - m3 * (cx + tx) - m4 * (cy + ty)
    return torch.stack([m0, m1, m2, m3, m4, m5], 1).view(-1, 2, 3)


def _warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "nearest", padding_mode: str = "zeros") -> torch.Tensor:
    """Sample ``x`` (float) at theta @ (pixel centres relative to the image centre), per image."""
    b, _, h, w = x.shape
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=x.device)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=x.device)
    base = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, device=x.device)], -1)
    grid = base.view(1, h * w, 3) @ theta.transpose(1, 2).to(x.dtype)
    grid[..., 0] /= 0.5 * w
    grid[..., 1] /= 0.5 * h
    return F.grid_sample(x, grid.view(b, h, w, 2), mode=mode, padding_mode=padding_mode, align_corners=False)


def _geometric(xf: torch.Tensor, op: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """ShearX / ShearY (about the top-left corner), TranslateX / TranslateY (whole pixels), Rotate
    (about the centre, counter-clockwise), as torchvision's auto-augment applies them."""
    _, _, h, w = xf.shape
    m = mag.double()
    zero = torch.zeros_like(m)
    shear = op == OP["ShearX"], op == OP["ShearY"]
    corner = shear[0] | shear[1]
    theta = _inverse_affine(
        angle=torch.where(op == OP["Rotate"], -m, zero) * (math.pi / 180.0),
        shear_x=torch.where(shear[0], torch.atan(m), zero),
        shear_y=torch.where(shear[1], torch.atan(m), zero),
        tx=torch.where(op == OP["TranslateX"], m.trunc(), zero),
        ty=torch.where(op == OP["TranslateY"], m.trunc(), zero),
        cx=torch.where(corner, zero - w * 0.5, zero),
        cy=torch.where(corner, zero - h * 0.5, zero),
    )
    return _warp(xf, theta.float()).round_()


def _grey(xf: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, floored as torchvision does for uint8 ([B, 1, H, W]; grey images unchanged)."""
    if xf.shape[1] == 1:
        return xf
    r, g, b = xf.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).floor_().unsqueeze(1)


def _smoothed(xf: torch.Tensor) -> torch.Tensor:
    """Sharpness' degenerate: the 3x3 kernel [[1,1,1],[1,5,1],[1,1,1]]/13 inside, the border kept."""
    c = xf.shape[1]
    kernel = torch.full((3, 3), 1.0 / 13.0, device=xf.device)
    kernel[1, 1] = 5.0 / 13.0
    blurred = F.conv2d(xf, kernel.expand(c, 1, 3, 3), groups=c).round_()
    out = xf.clone()
    out[..., 1:-1, 1:-1] = blurred
    return out


def _blend(x: torch.Tensor, xf: torch.Tensor, op: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """clip(r x + (1 - r) d) with r = 1 + magnitude and d black (Brightness), grey (Color),
    mean grey (Contrast) or smoothed (Sharpness); Color leaves grey images as they are."""
    grey = _grey(xf)
    ratio = 1.0 + mag
    if x.shape[1] == 1:
        ratio = torch.where(op == OP["Color"], torch.ones_like(ratio), ratio)
    sel = [(op == OP[n]).view(-1, 1, 1, 1) for n in ("Brightness", "Color", "Contrast")]
    degenerate = torch.where(sel[0], 0.0, torch.where(sel[1], grey, torch.where(sel[2], grey.mean((1, 2, 3), keepdim=True), _smoothed(xf))))
    r = ratio.view(-1, 1, 1, 1)
    return (xf * r + degenerate * (1.0 - r)).clamp_(0, 255)


def apply_ops(x: torch.Tensor, op: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """Apply operation ``OPS[op[i]]`` with magnitude ``mag[i]`` to image i of the uint8 batch ``x``."""
    xf = x.float()
    bits = mag.clamp(0, 8).to(torch.int64)
    posterize_mask = (256 - torch.pow(2, 8 - bits)).to(torch.uint8).view(-1, 1, 1, 1)
    candidates = torch.stack(
        [
            x,
            _geometric(xf, op, mag).to(torch.uint8),
            _blend(x, xf, op, mag).to(torch.uint8),
            x & posterize_mask,
            torch.where(xf >= 255.0 * mag.view(-1, 1, 1, 1), 255 - x, x),
            TF.autocontrast(x),
            TF.equalize(x),
            255 - x,
        ]
    )
    kind = _on_device(_KIND, x.device)[op]
    return candidates[kind, torch.arange(len(x), device=x.device)]


# ---- policies ----------------------------------------------------------------------------------
class _AutoAugmentPolicy:
    """Per-image draws of one auto-augment policy; ``__call__(x, g)`` applies it to a uint8 batch."""

    def __init__(self, policy: str, height: int, width: int):
        self.policy = policy
        self.ops = torch.tensor([OP[n] for n in _TA_RA_OPS])
        if policy == "trivialaugment":
            self.table = magnitude_table(_TA_SPACE, 31, height, width)
        elif policy == "randaugment":
            self.table = magnitude_table(_RA_SPACE, 31, height, width)
        else:  # autoaugment, CIFAR-10 policy
            self.table = magnitude_table(_RA_SPACE, 10, height, width)
            self.sub_op = torch.tensor([[OP[s[0]] for s in sub] for sub in _AA_CIFAR10])
            self.sub_p = torch.tensor([[s[1] for s in sub] for sub in _AA_CIFAR10])
            self.sub_bin = torch.tensor([[s[2] for s in sub] for sub in _AA_CIFAR10])

    def _signed(self, op: torch.Tensor, bins: torch.Tensor, g: Generator) -> torch.Tensor:
        values, signed = (_on_device(t, op.device) for t in self.table)
        mag = values[op, bins]
        flip = signed[op] & (torch.rand(len(op), generator=g, device=op.device) <= 0.5)
        return torch.where(flip, -mag, mag)

    def stages(self, n: int, g: Generator, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (operation, magnitude) of every image for each stage of the policy."""
        if self.policy == "trivialaugment":
            op = _on_device(self.ops, device)[torch.randint(len(self.ops), (n,), generator=g, device=device)]
            bins = torch.randint(31, (n,), generator=g, device=device)
            return [(op, self._signed(op, bins, g))]
        if self.policy == "randaugment":
            out = []
            for _ in range(2):  # N = 2 operations at magnitude M = 9 of 31 bins
                op = _on_device(self.ops, device)[torch.randint(len(self.ops), (n,), generator=g, device=device)]
                out.append((op, self._signed(op, torch.full_like(op, 9), g)))
            return out
        sub = torch.randint(len(_AA_CIFAR10), (n,), generator=g, device=device)
        out = []
        for stage in range(2):
            op = _on_device(self.sub_op, device)[sub, stage]
            active = torch.rand(n, generator=g, device=device) <= _on_device(self.sub_p, device)[sub, stage]
            op = torch.where(active, op, torch.zeros_like(op))
            out.append((op, self._signed(op, _on_device(self.sub_bin, device)[sub, stage], g)))
        return out

    def __call__(self, x: torch.Tensor, g: Generator) -> torch.Tensor:
        for op, mag in self.stages(len(x), g, x.device):
            x = apply_ops(x, op, mag.float())
        return x


def build_train_transform(policy: str, image_size: int, hflip: bool = True) -> DeviceTransform | None:
    """The batched device counterpart of :func:`lt_imbalance.data.augment.build_train_transform`."""
    check_policy(policy)
    if policy == "none":
        return None
    if policy == "random_resized_crop":
        raise UnsupportedCombination("random_resized_crop crops full-resolution images per sample; set device_data: false for it")
    padding = max(1, image_size // 8)
    auto = _AutoAugmentPolicy(policy, image_size, image_size) if policy != "standard" else None

    def transform(x: torch.Tensor, g: Generator) -> torch.Tensor:
        x = crop_flip(x, padding, hflip, g)
        return auto(x, g) if auto is not None else x

    return transform


# ---- SimCLR views --------------------------------------------------------------------------------
def resized_crop(x: torch.Tensor, g: Generator, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), tries: int = 10) -> torch.Tensor:
    """RandomResizedCrop per image: area share ~ U(scale), log aspect ~ U(log ratio), first of
    ``tries`` draws that fits (else the whole image), resized back bilinearly."""
    b, _, h, w = x.shape
    dev = x.device
    area = h * w * _uniform(b * tries, *scale, g, dev).view(b, tries)
    aspect = torch.exp(_uniform(b * tries, math.log(ratio[0]), math.log(ratio[1]), g, dev)).view(b, tries)
    cw, ch = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.float().argmax(1, keepdim=True)
    found = fits.any(1)
    cw = torch.where(found, cw.gather(1, first).squeeze(1), torch.full_like(found, w, dtype=cw.dtype))
    ch = torch.where(found, ch.gather(1, first).squeeze(1), torch.full_like(found, h, dtype=ch.dtype))
    top = (torch.rand(b, generator=g, device=dev) * (h - ch + 1)).floor()
    left = (torch.rand(b, generator=g, device=dev) * (w - cw + 1)).floor()
    # output pixel centre u (relative to the image centre) samples the crop at left + (u + w/2) cw / w - 1/2
    zero = torch.zeros_like(cw)
    theta = torch.stack([cw / w, zero, left + cw / 2 - w / 2, zero, ch / h, top + ch / 2 - h / 2], 1).view(b, 2, 3)
    return _warp(x.float(), theta, mode="bilinear", padding_mode="border").round_().clamp_(0, 255).to(torch.uint8)


def _shift_hue(xf: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB images in [0, 1] by ``shift`` (fractions of a turn), via HSV."""
    r, g, b = xf.unbind(1)
    v, _ = xf.max(1)
    delta = v - xf.min(1)[0]
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (v - r) / safe, (v - g) / safe, (v - b) / safe
    hue = torch.where(v == r, bc - gc, torch.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(delta > 0, (hue / 6.0).remainder(1.0), torch.zeros_like(hue))
    sat = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    hue = (hue + shift.view(-1, 1, 1)).remainder(1.0) * 6.0
    sector = hue.floor()
    f = hue - sector
    p, q, t = v * (1 - sat), v * (1 - sat * f), v * (1 - sat * (1 - f))
    sector = sector.long().remainder(6).unsqueeze(0)
    pick = lambda *vals: torch.stack(vals).gather(0, sector).squeeze(0)  # noqa: E731
    return torch.stack([pick(v, q, p, p, t, v), pick(t, v, v, q, p, p), pick(p, p, t, v, v, q)], 1)


def colour_jitter(x: torch.Tensor, g: Generator, strength: float = 0.4, hue: float = 0.1) -> torch.Tensor:
    """ColorJitter(strength, strength, strength, hue) per image, the four adjustments in a random
    order per image (grey images: brightness and contrast only). Each step rounds down to uint8, as
    torchvision's uint8 path does."""
    b, c = x.shape[:2]
    dev = x.device
    n_adj = 4 if c == 3 else 2
    factors = [_uniform(b, 1 - strength, 1 + strength, g, dev) for _ in range(3)]
    shift = _uniform(b, -hue, hue, g, dev)
    order = torch.rand(b, n_adj, generator=g, device=dev).argsort(1)
    for step in range(n_adj):
        xf = x.float()
        brightness = (xf * factors[0].view(-1, 1, 1, 1)).clamp_(0, 255)
        mean = _grey(xf).mean((1, 2, 3), keepdim=True)
        contrast = (xf * factors[1].view(-1, 1, 1, 1) + mean * (1 - factors[1].view(-1, 1, 1, 1))).clamp_(0, 255)
        outs = [brightness, contrast]
        if c == 3:
            s = factors[2].view(-1, 1, 1, 1)
            outs.append((xf * s + _grey(xf) * (1 - s)).clamp_(0, 255))
            outs.append(_shift_hue(xf / 255.0, shift).mul_(255.0).round_())
        x = torch.stack(outs)[order[:, step], torch.arange(b, device=dev)].to(torch.uint8)
    return x


def build_ssl_transform(image_size: int, hflip: bool = True, channels: int = 3) -> DeviceTransform:
    """The batched device counterpart of :func:`lt_imbalance.data.augment.build_ssl_transform`."""

    def view(x: torch.Tensor, g: Generator) -> torch.Tensor:
        b = len(x)
        x = resized_crop(x, g)
        if hflip:
            x = torch.where((torch.rand(b, generator=g, device=x.device) < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
        jittered = colour_jitter(x, g, 0.4, 0.1 if channels == 3 else 0.0)
        x = torch.where((torch.rand(b, generator=g, device=x.device) < 0.8).view(-1, 1, 1, 1), jittered, x)
        if channels == 3:
            grey = _grey(x.float()).to(torch.uint8).expand_as(x)
            x = torch.where((torch.rand(b, generator=g, device=x.device) < 0.2).view(-1, 1, 1, 1), grey, x)
        return x

    return view
