"""niiv: an EDSR encoder and an implicit MLP decoder queried at any coordinate.

The encoder (EDSR without upsampler) maps a low-res axial plane to a latent
grid of the same size. The decoder predicts the intensity at any continuous
query coordinate from

- the latent code sampled bilinearly at the query,
- the input intensity sampled bilinearly at the query,
- a 2-octave sinusoidal encoding of the query's offset from the nearest latent
  cell centre (``sin/cos(pi 2^k r)``, ``r`` in [-1, 1] across a cell): periodic
  over a cell, so continuous across cell borders, and independent of the plane
  size, so patches and whole planes are decoded alike,
- optionally the output cell size in low-res pixels (as in LIIF).

The output is the decoded value plus the bilinear input sample (``residual``,
on in the presets; the last layer starts at zero, so an untrained network is
bilinear interpolation).

Coordinates follow ``grid_sample(align_corners=False)``: ``(-1, -1)`` is the
outer corner of the first pixel, so low-res pixel ``i`` of ``h`` has its centre
at ``-1 + (2 i + 1) / h``. ``coords[..., 0]`` is along axis 0 (rows, the z
axis of an xz plane), ``coords[..., 1]`` along axis 1.

Examples
--------
>>> import torch
>>> from zaug.nets.edsr_liif import NIIV, niiv_preset
>>> net = NIIV(**niiv_preset("fast"))
>>> lr = torch.rand(2, 1, 5, 12)
>>> net.predict_plane(lr, (20, 12)).shape
torch.Size([2, 1, 20, 12])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NIIV", "EDSREncoder", "ResBlock", "niiv_preset", "query_grid", "rows_to_coords"]

_PRESETS: dict[str, dict[str, Any]] = {
    # paper: EDSR 64 ch x 16 blocks; MLP of 5 hidden layers of 256 -> about 1.50 M parameters
    "paper": dict(channels=64, n_blocks=16, hidden=256, n_hidden=5, octaves=2, res_scale=1.0,
                  use_cell=False, residual=True),
    "fast": dict(channels=32, n_blocks=4, hidden=128, n_hidden=3, octaves=2, res_scale=1.0,
                 use_cell=False, residual=True),
}


def niiv_preset(name: str) -> dict[str, Any]:
    """Return :class:`NIIV` keyword arguments for a named preset.

    Parameters
    ----------
    name : {"paper", "fast"}
        ``paper``: 64 channels, 16 residual blocks, MLP 5 x 256 (about 1.50 M
        parameters); ``fast``: 32 channels, 4 blocks, MLP 3 x 128 (about 0.12 M).

    Returns
    -------
    dict
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown niiv preset {name!r}; choose from {sorted(_PRESETS)}")
    return dict(_PRESETS[name])


def query_grid(h_out: int, w_out: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised centres of an ``h_out x w_out`` grid covering the plane, ``(h_out * w_out, 2)``.

    Examples
    --------
    >>> query_grid(2, 1)
    tensor([[-0.5000,  0.0000],
            [ 0.5000,  0.0000]])
    """
    ys = (2 * torch.arange(h_out, dtype=torch.float32, device=device) + 1) / h_out - 1
    xs = (2 * torch.arange(w_out, dtype=torch.float32, device=device) + 1) / w_out - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def rows_to_coords(out_rows: np.ndarray, h_lr: int, w: int) -> torch.Tensor:
    """Queries for rows given in low-res sample units (row ``k`` at ``k``) at every column.

    Returns ``(len(out_rows) * w, 2)`` normalised coordinates, row-major, for
    decoding planes whose axis 1 is not resampled.

    Examples
    --------
    >>> rows_to_coords(np.array([0.0, 0.5]), 2, 1)
    tensor([[-0.5000,  0.0000],
            [ 0.0000,  0.0000]])
    """
    ys = (2 * torch.as_tensor(np.asarray(out_rows), dtype=torch.float32) + 1) / h_lr - 1
    xs = (2 * torch.arange(w, dtype=torch.float32) + 1) / w - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


class ResBlock(nn.Module):
    """EDSR residual block: conv-ReLU-conv, scaled, plus the input (no normalisation)."""

    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class EDSREncoder(nn.Module):
    """EDSR without upsampler: head conv, residual blocks, conv, global skip."""

    def __init__(self, in_ch: int = 1, channels: int = 64, n_blocks: int = 16, res_scale: float = 1.0) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_ch, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(channels, res_scale) for _ in range(n_blocks)],
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return h + self.body(h)


class NIIV(nn.Module):
    """niiv: EDSR latent grid + MLP decoder at continuous coordinates (one channel).

    Parameters
    ----------
    channels, n_blocks, res_scale : int, int, float
        EDSR width, residual blocks and residual scaling.
    hidden, n_hidden : int, int
        MLP width and number of hidden layers (ReLU), followed by a linear output.
    octaves : int
        Frequencies ``pi * 2^k``, ``k < octaves``, of the in-cell position encoding.
    use_cell : bool
        Also feed the output cell size (low-res pixels per output pixel, per axis).
    residual : bool
        Add the bilinear input sample to the decoded value.
    """

    def __init__(self, channels: int = 64, n_blocks: int = 16, hidden: int = 256, n_hidden: int = 5,
                 octaves: int = 2, res_scale: float = 1.0, use_cell: bool = False,
                 residual: bool = True) -> None:
        super().__init__()
        self.encoder = EDSREncoder(1, channels, n_blocks, res_scale)
        self.octaves, self.use_cell, self.residual = octaves, use_cell, residual
        in_dim = channels + 1 + 4 * octaves + (2 if use_cell else 0)
        layers: list[nn.Module] = []
        for k in range(n_hidden):
            layers += [nn.Linear(in_dim if k == 0 else hidden, hidden), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(hidden if n_hidden else in_dim, 1))
        self.decoder = nn.Sequential(*layers)
        if residual:  # start as bilinear interpolation
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """Latent grid ``(B, C, h, w)`` of a low-res batch ``(B, 1, h, w)``."""
        return self.encoder(lr)

    def decode(self, latent: torch.Tensor, lr: torch.Tensor, coords: torch.Tensor,
               cell: torch.Tensor | None = None) -> torch.Tensor:
        """Values ``(B, Q)`` at ``coords`` ``(B, Q, 2)`` or ``(Q, 2)`` from an encoded batch."""
        b, _, h, w = lr.shape
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(b, -1, -1)
        grid = coords.flip(-1).unsqueeze(2)  # grid_sample wants (x, y)
        feat = F.grid_sample(latent, grid, mode="bilinear", padding_mode="border", align_corners=False)
        value = F.grid_sample(lr, grid, mode="bilinear", padding_mode="border", align_corners=False)
        feat, value = feat[..., 0].transpose(1, 2), value[..., 0].transpose(1, 2)  # (B, Q, C), (B, Q, 1)
        parts = [feat, value, self._encode_position(coords, h, w)]
        if self.use_cell:
            if cell is None:
                raise ValueError("this network was built with use_cell=True: pass the output cell size")
            parts.append(torch.as_tensor(cell, dtype=coords.dtype, device=coords.device).expand(b, coords.shape[1], 2))
        out = self.decoder(torch.cat(parts, dim=-1))
        if self.residual:
            out = out + value
        return out[..., 0]

    def _encode_position(self, coords: torch.Tensor, h: int, w: int) -> torch.Tensor:
        size = torch.tensor([h, w], dtype=coords.dtype, device=coords.device)
        pixel = ((coords + 1) * size - 1) / 2  # continuous pixel index, centres at integers
        r = 2 * (pixel - torch.round(pixel))  # in [-1, 1] across a cell
        freqs = math.pi * 2.0 ** torch.arange(self.octaves, dtype=coords.dtype, device=coords.device)
        angles = (r.unsqueeze(-1) * freqs).flatten(-2)  # (B, Q, 2 * octaves)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def forward(self, lr: torch.Tensor, coords: torch.Tensor, cell: torch.Tensor | None = None) -> torch.Tensor:
        """Intensities ``(B, Q)`` at ``coords`` ``(B, Q, 2)`` of low-res planes ``(B, 1, h, w)``."""
        return self.decode(self.encode(lr), lr, coords, cell)

    @torch.no_grad()
    def predict_coords(self, lr: torch.Tensor, coords: torch.Tensor, cell: torch.Tensor | None = None,
                       chunk: int = 65536) -> torch.Tensor:
        """:meth:`forward` without gradients, decoding ``chunk`` queries at a time over the whole batch
        (the decoder's memory grows with planes times queries)."""
        latent = self.encode(lr)
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(lr.shape[0], -1, -1)
        step = max(1, chunk // lr.shape[0])
        pieces = [self.decode(latent, lr, coords[:, s:s + step], cell) for s in range(0, coords.shape[1], step)]
        return torch.cat(pieces, dim=1)

    def predict_plane(self, lr: torch.Tensor, out_shape: tuple[int, int], chunk: int = 65536) -> torch.Tensor:
        """The plane ``(B, 1, h_out, w_out)`` covering the same field as ``lr`` (no gradients)."""
        h_out, w_out = out_shape
        coords = query_grid(h_out, w_out, lr.device).to(lr.dtype)
        cell = torch.tensor([lr.shape[-2] / h_out, lr.shape[-1] / w_out], dtype=lr.dtype, device=lr.device)
        values = self.predict_coords(lr, coords, cell if self.use_cell else None, chunk)
        return values.reshape(lr.shape[0], 1, h_out, w_out)
