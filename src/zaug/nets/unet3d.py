"""RESIN networks: a 3D U-Net (restoration and degradation) and 2D/3D PatchGAN discriminators.

The U-Net has one encoder level per entry of ``features`` (two 3x3x3 convs
with LeakyReLU(0.2), no normalisation, so intensities keep their meaning),
max-pooling between levels, and a decoder that upsamples trilinearly,
reduces channels with a 1x1x1 conv and concatenates the skip connection.
With ``residual`` the output is the input plus a correction whose last conv
starts small: an untrained network is near the identity, the right start for
both RESIN networks (restoring or degrading an image changes it little).
Inputs of any size are padded (replicate) to a multiple of
``2 ** (len(features) - 1)`` and cropped back.

Examples
--------
>>> import torch
>>> from zaug.nets.unet3d import PatchDiscriminatorND, UNet3D, count_parameters, resin_preset
>>> p = resin_preset("paper")
>>> round(count_parameters(UNet3D(**p["net"])) / 1e6, 1)
5.1
>>> net = UNet3D(**resin_preset("fast")["net"])
>>> net(torch.rand(1, 1, 10, 13, 17)).shape
torch.Size([1, 1, 10, 13, 17])
>>> PatchDiscriminatorND(**resin_preset("fast")["volume_discriminator"])(torch.rand(2, 1, 16, 16, 16)).shape
torch.Size([2, 1, 2, 2, 2])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .resnet2d import count_parameters  # zaug-bundle: one definition for both networks

__all__ = ["UNet3D", "PatchDiscriminatorND", "resin_preset", "count_parameters"]

_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # paper: 64/128/256 features -> 5.13 M parameters (RESIN's public code: about 5 M per U-Net)
    "paper": {"net": dict(features=(64, 128, 256), residual=True),
              "volume_discriminator": dict(dims=3, base=32, n_layers=2),
              "mip_discriminator": dict(dims=2, base=64, n_layers=3)},
    "fast": {"net": dict(features=(8, 16, 32), residual=True),
             "volume_discriminator": dict(dims=3, base=8, n_layers=2),
             "mip_discriminator": dict(dims=2, base=16, n_layers=2)},
}


def resin_preset(name: str) -> dict[str, dict[str, Any]]:
    """Keyword arguments of the RESIN networks for a named preset.

    Parameters
    ----------
    name : {"paper", "fast"}
        ``paper``: U-Nets of about 5.13 M parameters; ``fast``: about 0.08 M
        (trains on a CPU with 32^3 cubes).

    Returns
    -------
    dict
        ``net`` (:class:`UNet3D`, used for both F and D),
        ``volume_discriminator`` and ``mip_discriminator``
        (:class:`PatchDiscriminatorND`).
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown RESIN preset {name!r}; choose from {sorted(_PRESETS)}")
    return {k: {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in v.items()}
            for k, v in _PRESETS[name].items()}


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv3d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


class UNet3D(nn.Module):
    """Size-preserving 3D U-Net.

    Parameters
    ----------
    features : sequence of int
        Channels per level, finest first (``len - 1`` poolings).
    residual : bool
        Output = input + correction (last conv scaled to 0.1 at start).
    in_ch, out_ch : int
        Volume channels.
    """

    def __init__(self, features=(64, 128, 256), residual: bool = True, in_ch: int = 1, out_ch: int = 1) -> None:
        super().__init__()
        features = [int(f) for f in features]
        self.encoders = nn.ModuleList()
        ch = in_ch
        for f in features:
            self.encoders.append(_block(ch, f))
            ch = f
        self.reduce = nn.ModuleList(nn.Conv3d(features[i + 1], features[i], 1) for i in range(len(features) - 1))
        self.decoders = nn.ModuleList(_block(2 * features[i], features[i]) for i in range(len(features) - 1))
        self.head = nn.Conv3d(features[0], out_ch, 1)
        self.residual = bool(residual and in_ch == out_ch)
        if self.residual:
            with torch.no_grad():
                self.head.weight.mul_(0.1)
                self.head.bias.zero_()
        self.multiple = 2 ** (len(features) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, D, H, W)`` to the same shape (any size)."""
        size = x.shape[-3:]
        pads = [(-s) % self.multiple for s in size]
        h = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]), mode="replicate") if any(pads) else x
        skips = []
        for i, enc in enumerate(self.encoders):
            h = enc(h if i == 0 else F.max_pool3d(h, 2))
            skips.append(h)
        for i in reversed(range(len(self.decoders))):
            h = F.interpolate(h, size=skips[i].shape[-3:], mode="trilinear", align_corners=False)
            h = self.decoders[i](torch.cat([self.reduce[i](h), skips[i]], dim=1))
        out = self.head(h)[..., :size[0], :size[1], :size[2]]
        return x + out if self.residual else out


class PatchDiscriminatorND(nn.Module):
    """PatchGAN discriminator for 2D images (MIPs) or 3D volumes; unbounded scores (LSGAN).

    Parameters
    ----------
    dims : {2, 3}
        Spatial dimensions.
    base : int
        Channels of the first conv, doubled per layer (at most 8x).
    n_layers : int
        Number of stride-2 4^dims convs; then one stride-1 conv and the
        stride-1 score conv. All but the first conv are instance-normalised.
    in_ch : int
        Image channels.
    """

    def __init__(self, dims: int = 3, base: int = 32, n_layers: int = 2, in_ch: int = 1) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
        layers: list[nn.Module] = [conv(in_ch, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = base
        for k in range(1, n_layers + 1):
            out = base * min(2**k, 8)
            layers += [conv(ch, out, 4, 2 if k < n_layers else 1, 1), norm(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(conv(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.dims = dims
        #: smallest input side that leaves at least 2 scores per axis
        self.min_size = 2**n_layers * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score map for ``(B, C, *spatial)``; small inputs are padded (replicate)."""
        pads: list[int] = []
        for s in reversed(x.shape[2:]):
            p = max(self.min_size - s, 0)
            pads += [p // 2, p - p // 2]
        if any(pads):
            x = F.pad(x, pads, mode="replicate")
        return self.net(x)
