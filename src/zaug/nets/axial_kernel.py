"""A learned axial blur: one 1D kernel applied along the rows (z) of a plane.

Self-Net's degradation generator ``G_AB`` makes lateral planes look axial.
As a ResNet it can change content as well as blur (cellseg3d, x4 Gaussian:
the deblurring net trained on its output scored 1.8 dB below cubic
interpolation); as a kernel it can only blur along the axial direction, which
is what an axial point-spread function does. Measured limit: it stayed near
its start when the user's fixed degradation had half the true blur, so it
does not (yet) learn the blur that model misses.

Examples
--------
>>> import torch
>>> from zaug.nets.axial_kernel import AxialBlurKernel
>>> blur = AxialBlurKernel(half_width=8)
>>> blur(torch.rand(2, 1, 20, 13)).shape
torch.Size([2, 1, 20, 13])
>>> round(float(blur.kernel().detach().sum()), 6)
1.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AxialBlurKernel"]


class AxialBlurKernel(nn.Module):
    """Convolution along rows with a symmetric, non-negative kernel that sums to 1.

    Non-negative and normalised, it conserves intensity (a blur cannot change
    contrast); symmetric, it cannot shift structures. It starts close to the
    identity (centre weight 0.87), i.e. at the user's fixed degradation alone.

    Parameters
    ----------
    half_width : int
        The kernel has ``2 * half_width + 1`` taps (also ``radius``, the
        context a tile needs on each side).
    """

    def __init__(self, half_width: int):
        super().__init__()
        logits = torch.zeros(half_width + 1)
        logits[0] = 4.0
        self.logits = nn.Parameter(logits)  # centre tap, then one side (mirrored)
        self.radius = half_width

    def kernel(self) -> torch.Tensor:
        w = torch.softmax(self.logits, 0)
        w = torch.cat([w[1:].flip(0), 2 * w[:1], w[1:]])
        return w / w.sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel().to(x.dtype).view(1, 1, -1, 1)
        pad = min(self.radius, x.shape[-2] - 1)  # replicate padding needs fewer pads than rows
        if pad < self.radius:
            k = k[:, :, self.radius - pad:self.radius + pad + 1]
            k = k / k.sum()
        return F.conv2d(F.pad(x, (0, 0, pad, pad), mode="replicate"), k)
