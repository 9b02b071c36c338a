"""Differentiable SSIM for 2D and 3D image batches (Self-Net and RESIN losses).

The local means, variances and covariance use a separable Gaussian window
(size 11, sigma 1.5 by default, as Wang et al. 2004) applied without padding,
so border pixels are not averaged with invented values. The window shrinks
(keeping it odd) on images smaller than it.

Examples
--------
>>> import torch
>>> from zaug.losses_ssim import ssim, ssim_loss
>>> x = torch.rand(2, 1, 32, 32)
>>> round(float(ssim(x, x)), 4)
1.0
>>> bool(ssim_loss(x, torch.rand(2, 1, 32, 32)) > 0.5)
True
>>> round(float(ssim(torch.rand(1, 1, 16, 16, 16), torch.zeros(1, 1, 16, 16, 16))), 2) < 0.1
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ssim", "ssim_loss"]


def _gaussian(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(t * t) / (2 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of ``(N, 1, *spatial)`` along every spatial axis."""
    dims = x.dim() - 2
    conv = F.conv2d if dims == 2 else F.conv3d
    for axis in range(dims):
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = kernel.numel()
        x = conv(x, kernel.reshape(shape))
    return x


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of two batches.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, D, H, W)``, same shape.
    data_range : float
        Intensity span (sets the stabilising constants).
    window : int
        Gaussian window size (odd); reduced on small images.
    sigma : float
        Gaussian window sigma.

    Returns
    -------
    torch.Tensor
        Scalar, 1 for identical images.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() not in (4, 5):
        raise ValueError(f"ssim needs 4D or 5D tensors, got {pred.dim()}D")
    size = min(window, *pred.shape[2:])
    size = size if size % 2 else size - 1
    kernel = _gaussian(size, sigma * size / window, pred)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # Channels folded into the batch: every channel is compared on its own.
    x = pred.reshape(-1, 1, *pred.shape[2:])
    y = target.reshape(-1, 1, *target.shape[2:])
    maps = _blur(torch.cat([x, y, x * x, y * y, x * y]), kernel)
    mu_x, mu_y, xx, yy, xy = maps.chunk(5)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """``1 - ssim(pred, target)``: 0 for identical images."""
    return 1.0 - ssim(pred, target, data_range)
