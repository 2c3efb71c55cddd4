"""Any model of the ``timm`` library as a feature extractor (plain PyTorch; needs ``timm``:
``pip install 'lt-imbalance[timm]'``).

``timm.create_model(name, num_classes=0)`` drops the model's classifier, so its forward returns
the globally pooled features, ``num_features`` wide. With ``pretrained`` the weights come from the
model's published checkpoint (downloaded by timm, or read from ``pretrained_file`` on machines
without a network), and :attr:`TimmBackbone.pretrained_statistics` holds the per-channel mean and
std the weights were trained with: an image data module whose ``mean`` / ``std`` are not given
normalises with those instead of its own statistics (:mod:`lt_imbalance.data.image`). For
``in_chans`` other than the pretrained 3, timm adapts the first convolution and the statistics are
averaged over the colour channels.

In a config, ``backbone: timm/<name>`` (sized from the data: ``in_chans`` = its channels) with
``backbone_kwargs: {pretrained: true}``, or the class itself::

    backbone:
      class_path: lt_imbalance.models.TimmBackbone
      init_args: {name: convnext_tiny, pretrained: true, in_chans: 3}
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from lt_imbalance.errors import BadValue, MissingFile

#: prefix of a backbone name that :func:`lt_imbalance.models.build_backbone` hands to timm
TIMM_PREFIX = "timm/"


def _timm():
    try:
        import timm
    except ImportError as error:
        raise ImportError("timm backbones need the timm library: pip install 'lt-imbalance[timm]' (or pip install timm)") from error
    return timm


class TimmBackbone(nn.Module):
    """A ``timm`` model without its classifier, returning pooled ``out_features``-d features.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``resnet50``, ``convnext_tiny``.
        pretrained: start from the model's published weights (and normalise the data with their
            statistics); False: random initialisation, nothing downloaded.
        in_chans: input channels (1 for grey images; timm adapts pretrained first layers).
        pretrained_file: a local copy of the pretrained weights (``.pth`` / ``.safetensors``)
            used instead of downloading them.
        **kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``, ``img_size``).

    Examples:
        >>> backbone = TimmBackbone("resnet18", in_chans=1)
        >>> backbone(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 512])
    """

    def __init__(self, name: str, pretrained: bool = False, in_chans: int = 3, pretrained_file: str | None = None, **kwargs: Any):
        super().__init__()
        timm = _timm()
        if not timm.is_model(name):
            close = timm.list_models(f"*{name.split('.')[0][:6]}*")[:8]
            raise BadValue(f"timm has no model {name!r}; similar names: {', '.join(close) or 'none'} (all: timm.list_models())")
        if pretrained_file is not None:
            if not pretrained:
                raise BadValue("pretrained_file is only read with pretrained: true")
            kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
        elif pretrained:
            _check_weights_obtainable(timm, name)
        self.name, self.pretrained = name, pretrained
        self.model = timm.create_model(name, pretrained=pretrained, in_chans=in_chans, num_classes=0, **kwargs)
        self.out_features = int(self.model.num_features)
        self.pretrained_statistics = self._statistics(self.model.pretrained_cfg, in_chans) if pretrained else None

    @staticmethod
    def _statistics(cfg: dict[str, Any], channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) of the pretraining data for ``channels`` inputs (averaged when they differ)."""
        mean, std = cfg.get("mean"), cfg.get("std")
        if mean is None or std is None:
            return None
        if len(mean) != channels:
            mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _check_weights_obtainable(timm, name: str) -> None:
    """Pretrained weights without ``pretrained_file`` come from timm's download cache or its source;
    with neither (a machine without a network), fail at once naming the fix instead of retrying
    the download for a minute."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise BadValue(
            f"timm has no pretrained weights for {name!r}; set pretrained: false or choose a tagged name (timm.list_pretrained())"
        )
    hosts = []
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        if any(
            isinstance(try_to_load_from_cache(repo, f), str)
            for f in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
        ):
            return
        hosts.append(urlparse(constants.ENDPOINT).hostname)
    if cfg.url:
        if (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name).is_file():
            return
        hosts.append(urlparse(cfg.url).hostname)
    if not any(_reachable(host) for host in hosts if host):
        raise MissingFile(
            f"the pretrained weights of {name!r} are not in the download cache and {', '.join(h for h in hosts if h)} cannot be "
            "reached from this machine; download them where there is a network and give their path as "
            "backbone_kwargs.pretrained_file (.pth / .safetensors), or train from scratch with pretrained: false"
        )


def _reachable(host: str, timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False
