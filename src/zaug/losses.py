"""Training losses: Laplacian pyramid L1, WGAN-GP gradient penalty, Charbonnier."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["laplacian_pyramid_loss", "gradient_penalty", "charbonnier"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    """Binomial 5x5 blur ([1,4,6,4,1]/16 per axis) sampled at even pixels.

    Written as separable shifted sums: on CPU this is much faster (forward and
    backward) than a depthwise 5x5 conv on one-channel maps.
    """
    h, w = x.shape[-2:]
    # Reflect padding needs size > pad; replicate covers tiny maps.
    mode = "reflect" if h > 2 and w > 2 else "replicate"
    p = F.pad(x, (2, 2, 2, 2), mode=mode)
    ho, wo = (h + 1) // 2, (w + 1) // 2
    rows = sum(c * p[..., k : k + 2 * ho - 1 : 2, :] for k, c in enumerate(_BINOMIAL))
    out = sum(c * rows[..., k : k + 2 * wo - 1 : 2] for k, c in enumerate(_BINOMIAL))
    return out / 256.0


def _expand(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Gaussian expand of :func:`_blur_down`'s output back to ``size``: zeros between the samples, then the
    binomial blur times 4, with reflect padding.

    Each low-pass sample lands on the even pixel it was taken at; a bilinear
    resize would put it half a pixel off, so smooth differences would leak
    into the finest band.
    """
    rows = _expand_last(low.transpose(-1, -2), size[0]).transpose(-1, -2)
    return _expand_last(rows, size[1])


def _expand_last(low: torch.Tensor, n_out: int) -> torch.Tensor:
    """One axis of :func:`_expand`, by its two phases: even pixels weigh the samples (1, 6, 1) / 8, odd
    pixels the two samples either side (4, 4) / 8.

    A reflected zero-filled signal has, beyond the last sample, that sample's
    left neighbour again where ``n_out`` is odd and the last sample itself where
    it is even.
    """
    n = low.shape[-1]
    left = low[..., 1:2] if n > 1 else low[..., :1]
    right = low[..., n - 2 : n - 1] if n_out % 2 and n > 1 else low[..., n - 1 :]
    p = torch.cat([left, low, right], dim=-1)
    even = (p[..., :n] + 6.0 * p[..., 1 : n + 1] + p[..., 2:]) / 8.0
    odd = (p[..., 1 : n + 1] + p[..., 2:]) / 2.0
    return torch.stack([even, odd], dim=-1).flatten(-2)[..., :n_out]


def _laplacian_step(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``x`` into its band (x - expand(down(x))) and the downsampled low-pass."""
    low = _blur_down(x)
    return x - _expand(low, x.shape[-2:]), low


def laplacian_pyramid_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    levels: int = 5,
    include_residual: bool = True,
) -> torch.Tensor:
    """Sum over pyramid levels of the L1 distance between Laplacian bands.

    Parameters
    ----------
    pred, target : torch.Tensor
        Images ``(B, C, H, W)``; any ``H, W``.
    levels : int
        Maximum number of band-pass levels; fewer are used when the image
        becomes smaller than 2 pixels on a side.
    include_residual : bool
        Also add the L1 distance of the final low-pass image.  Without it the
        loss cannot see a global intensity offset.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    # The pyramid is linear, so decomposing the difference equals the
    # difference of the decompositions at half the cost.
    x = pred - target
    loss = pred.new_zeros(())
    for _ in range(levels):
        if min(x.shape[-2:]) < 2:
            break
        band, x = _laplacian_step(x)
        loss = loss + band.abs().mean()
    if include_residual:
        loss = loss + x.abs().mean()
    return loss


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad_x D(x_hat)||_2 - 1)^2)``.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per
    sample.  ``fake`` is detached; the graph is kept so the penalty can be
    back-propagated into the critic.

    Parameters
    ----------
    critic : callable
        Maps ``(B, C, H, W)`` to scores of shape ``(B,)`` (or ``(B, 1)``).
    real, fake : torch.Tensor
        Batches of the same shape.

    Returns
    -------
    torch.Tensor
        Scalar penalty (>= 0).
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier (smooth L1) loss ``mean(sqrt((pred - target)^2 + eps^2))``."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()
