"""Self-Net networks: a ResNet image-to-image generator and a PatchGAN discriminator.

The generator (used for both CycleGAN generators and the deblurring network)
keeps the image size: a 7x7 conv in, ``n_pre`` 3x3 convs, ``n_blocks``
residual blocks of two 3x3 convs without normalisation, ``n_pre`` 3x3 convs
and a 7x7 conv out, LeakyReLU(0.2) throughout, reflection padding. With
``global_skip`` the network predicts a correction added to its input and its
last conv starts small, so an untrained generator is close to the identity:
for Self-Net every generator maps an image to a similar-looking one (lateral
to axial-looking, axial-looking to sharp), and starting from the identity
means the deblurring net starts as plain cubic interpolation.

The discriminator is the pix2pix/CycleGAN PatchGAN: 4x4 convs (stride 2 for
the first ``n_layers``, then two of stride 1) with instance normalisation,
giving a map of real/fake scores over overlapping patches (LSGAN targets).

Examples
--------
>>> import torch
>>> from zaug.nets.resnet2d import PatchDiscriminator, ResNetGenerator, count_parameters, selfnet_preset
>>> preset = selfnet_preset("paper")
>>> round(count_parameters(ResNetGenerator(**preset["generator"])) / 1e6, 2)
0.6
>>> net = ResNetGenerator(**selfnet_preset("fast")["generator"])
>>> net(torch.rand(2, 1, 20, 13)).shape
torch.Size([2, 1, 20, 13])
>>> PatchDiscriminator(**preset["discriminator"])(torch.rand(2, 1, 32, 32)).shape
torch.Size([2, 1, 6, 6])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNetGenerator", "PatchDiscriminator", "ResBlock2d", "selfnet_preset", "count_parameters"]

_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # paper: 64 channels, 2 + 6 x 2 + 2 3x3 convs -> 0.597 M parameters (Self-Net's public code: ~0.6 M)
    "paper": {"generator": dict(channels=64, n_blocks=6, n_pre=2, global_skip=True),
              "discriminator": dict(base=64, n_layers=2)},
    "fast": {"generator": dict(channels=24, n_blocks=4, n_pre=1, global_skip=True),
             "discriminator": dict(base=16, n_layers=2)},
}


def selfnet_preset(name: str) -> dict[str, dict[str, Any]]:
    """Keyword arguments of the Self-Net networks for a named preset.

    Parameters
    ----------
    name : {"paper", "fast"}
        ``paper``: generator of about 0.60 M parameters, discriminator of
        about 0.66 M; ``fast``: about 0.054 M and 0.042 M (trains on a CPU).

    Returns
    -------
    dict
        ``{"generator": {...}, "discriminator": {...}}``.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown Self-Net preset {name!r}; choose from {sorted(_PRESETS)}")
    return {k: dict(v) for k, v in _PRESETS[name].items()}


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _reflect_conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    # Reflection padding avoids dark borders: planes are restored whole or in tiles.
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode="reflect")


class ResBlock2d(nn.Module):
    """Two 3x3 convs with a LeakyReLU between them and an identity skip (no normalisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_reflect_conv(channels, channels, 3), nn.LeakyReLU(0.2, inplace=True),
                                  _reflect_conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """Size-preserving ResNet generator (Self-Net's degradation and deblurring networks).

    Parameters
    ----------
    channels : int
        Feature channels.
    n_blocks : int
        Residual blocks.
    n_pre : int
        Plain 3x3 convs after the input conv and before the output conv.
    global_skip : bool
        Output = input + network(input); the output conv starts at 0.1 of its
        default scale so the untrained network is near the identity.
    in_ch, out_ch : int
        Image channels.
    """

    def __init__(self, channels: int = 64, n_blocks: int = 6, n_pre: int = 2, global_skip: bool = True,
                 in_ch: int = 1, out_ch: int = 1) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2, inplace=True)
        layers: list[nn.Module] = [_reflect_conv(in_ch, channels, 7), act]
        for _ in range(n_pre):
            layers += [_reflect_conv(channels, channels, 3), act]
        layers += [ResBlock2d(channels) for _ in range(n_blocks)]
        for _ in range(n_pre):
            layers += [_reflect_conv(channels, channels, 3), act]
        self.body = nn.Sequential(*layers)
        self.head = _reflect_conv(channels, out_ch, 7)
        self.global_skip = bool(global_skip and in_ch == out_ch)
        if self.global_skip:
            with torch.no_grad():
                self.head.weight.mul_(0.1)
                self.head.bias.zero_()
        #: pixels of context each output pixel depends on, either side
        self.radius = 3 + n_pre + 2 * n_blocks + n_pre + 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` to the same shape; H and W of 4 or more."""
        out = self.head(self.body(x))
        return x + out if self.global_skip else out


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: a map of unbounded real/fake scores (use with LSGAN).

    Parameters
    ----------
    base : int
        Channels of the first conv, doubled per layer (at most 8x).
    n_layers : int
        Number of stride-2 convs (the first one and ``n_layers - 1`` more);
        then one stride-1 conv and the stride-1 score conv. All but the first
        conv are instance-normalised.
    in_ch : int
        Image channels.
    """

    def __init__(self, base: int = 64, n_layers: int = 2, in_ch: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = base
        for k in range(1, n_layers + 1):
            out = base * min(2**k, 8)
            stride = 2 if k < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        #: smallest input side that leaves at least a 2x2 score map
        self.min_size = 2**n_layers * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, 1, h, w)`` for images ``(B, C, H, W)``; small images are padded (replicate)."""
        h, w = x.shape[-2:]
        ph, pw = max(self.min_size - h, 0), max(self.min_size - w, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        return self.net(x)
