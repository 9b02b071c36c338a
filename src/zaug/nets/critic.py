"""WGAN-GP critic (ZAugNet discriminator)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Critic", "critic_preset"]

_PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(base=32, n_down=6),
    "fast": dict(base=8, n_down=6),
}


def critic_preset(name: str) -> dict[str, Any]:
    """Return :class:`Critic` keyword arguments for a named preset.

    Parameters
    ----------
    name : {"paper", "fast"}
        ``paper``: 1->32->...->1024 channels (about 11.19 M parameters);
        ``fast``: 1->8->...->256 channels.

    Returns
    -------
    dict
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown critic preset {name!r}; choose from {sorted(_PRESETS)}")
    return dict(_PRESETS[name])


class Critic(nn.Module):
    """Strided-conv critic returning one unbounded score per image.

    No normalisation layers: batch norm would break the per-sample gradient
    penalty of WGAN-GP.

    Parameters
    ----------
    base : int
        Channels of the first conv; doubled at every stage.
    n_down : int
        Number of 4x4 stride-2 convs.
    in_ch : int
        Image channels.
    """

    def __init__(self, base: int = 32, n_down: int = 6, in_ch: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_ch
        for k in range(n_down):
            out = base * 2**k
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, 3, padding=1)
        # Each stride-2 conv maps size s to floor(s/2): this keeps >= 1 pixel.
        self.min_size = 2**n_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score a batch ``(B, C, H, W)``; returns shape ``(B,)``."""
        h, w = x.shape[-2:]
        ph, pw = max(self.min_size - h, 0), max(self.min_size - w, 0)
        if ph or pw:
            # Reflect needs pad < size; replicate works for any size.
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        return self.head(self.features(x)).mean(dim=(1, 2, 3))
