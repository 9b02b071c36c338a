"""zaug's networks applied to a whole z-stack, as self-contained modules.

:class:`ZStackInterpolator` takes a ``(B, Z, Y, X)`` stack in its own intensity
units and returns it with ``factor`` times finer z sampling, ``factor * (Z - 1) + 1``
planes: the acquired planes as they are, the new ones from the generator
(8-fold flips and rotations averaged, large planes in blended tiles), each
weighted against linear and cubic interpolation with fixed calibration weights.
It is what :func:`zaug.export.export_bioimageio` ships: this file and
``ifnet.py`` are its whole architecture, so it depends on torch, numpy and scipy
only. ``zaug predict`` does the same through :class:`zaug.methods.zaugnet.ZAugNetModel`,
which measures the calibration weights on every stack instead, and shares the
tiling and averaging functions below. :class:`ZStackRestorer` (Self-Net),
:class:`ZStackNiivRestorer` (niiv) and :class:`ZVolumeRestorer` (RESIN) do the same
for the restoration models.

Examples
--------
>>> import torch
>>> from zaug.nets.ifnet import ifnet_preset
>>> from zaug.nets.zstack import ZStackInterpolator
>>> net = dict(ifnet_preset("fast"), position_input=False)
>>> model = ZStackInterpolator(net, low=0.0, high=1.0, factor=2, weights=[[1.0, 0.0]], tta=False).eval()
>>> stack = torch.rand(1, 3, 20, 24)
>>> out = model(stack)
>>> out.shape
torch.Size([1, 5, 20, 24])
>>> bool(torch.equal(out[:, ::2], stack))
True
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.interpolate import CubicSpline
from torch import nn

from .ifnet import IFNet  # zaug-bundle: the exported file holds IFNet itself
from .resnet2d import ResNetGenerator  # zaug-bundle: and the ResNet
from .unet3d import UNet3D  # zaug-bundle: and the 3D U-Net
from .edsr_liif import NIIV, rows_to_coords  # zaug-bundle: and niiv's network

__all__ = ["ZStackInterpolator", "ZStackRestorer", "ZStackNiivRestorer", "ZVolumeRestorer", "run_generator",
           "tiled_generator", "BAND_SIGMAS", "band_weights", "band_split", "clipping_offset", "weighted_departure",
           "apply_exact_tiles", "apply_blended_cubes", "spline_matrix", "restoration_rows", "transfer_planes"]


#: In-plane Gaussian sigmas (pixels) that split a plane into detail bands, finest first: the
#: calibration weighs the model against cubic interpolation band by band (a two-plane model wins on fine
#: detail, a spline through four planes on large structures).
BAND_SIGMAS = (1.0, 2.0, 4.0, 8.0)


def band_weights(weights) -> tuple[tuple[float, float], ...]:
    """``(model, cubic)`` weights per detail band, finest first, from one pair (every band alike) or one per band."""
    arr = np.asarray(weights, np.float64)
    if arr.shape == (2,):
        arr = np.repeat(arr[None], len(BAND_SIGMAS) + 1, 0)
    if arr.shape != (len(BAND_SIGMAS) + 1, 2):
        raise ValueError(f"expected one (model, cubic) pair or {len(BAND_SIGMAS) + 1}, got shape {arr.shape}")
    return tuple((float(a), float(c)) for a, c in arr)


def gaussian_blur(x: torch.Tensor, sigma: float, dims=(-2, -1)) -> torch.Tensor:
    """Separable Gaussian along ``dims`` (radius 3 sigma, at most the size - 1; edges mirrored)."""
    for d in dims:
        n = x.shape[d]
        radius = min(int(3 * sigma + 0.5), n - 1)
        if radius < 1:
            continue
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum()).to(x)
        y = x.movedim(d, -1)
        shape = y.shape
        y = F.conv1d(F.pad(y.reshape(-1, 1, n), (radius, radius), mode="reflect"), kernel.view(1, 1, -1))
        x = y.reshape(shape).movedim(-1, d)
    return x


def band_split(x: torch.Tensor, dims=(-2, -1)) -> list[torch.Tensor]:
    """Detail bands of ``x`` along ``dims``, finest first (differences of Gaussians); they sum to ``x``."""
    levels = [x] + [gaussian_blur(x, s, dims) for s in BAND_SIGMAS]
    return [levels[i] - levels[i + 1] for i in range(len(BAND_SIGMAS))] + [levels[-1]]


def clipping_offset(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """Linear interpolation of ``a`` and ``b`` at ``t`` minus that of the same planes clipped to [0, 1].

    The generator sees planes clipped to the range it learnt on; this, added to its prediction, keeps
    intensities outside that range as linear interpolation has them (zero inside the range).
    """
    return (1 - t) * (a - a.clamp(0, 1)) + t * (b - b.clamp(0, 1))


def weighted_departure(d_model: torch.Tensor, d_cubic: torch.Tensor | None, weights,
                       dims=(-2, -1)) -> torch.Tensor:
    """``sum_b band_b(a_b d_model + c_b d_cubic)`` for per-band weights ``(a_b, c_b)`` (see :func:`band_split`).

    Bands are differences of Gaussians ``G_b - G_{b+1}`` (``G_0`` the identity, the last band ``G_B``
    alone), so the sum telescopes to ``y_0 + sum_b G_b (y_b - y_{b-1})`` with ``y_b = a_b d_model +
    c_b d_cubic``: one blur per band. ``d_cubic`` may be None when every ``c_b`` is 0.
    """
    w = band_weights(weights)

    def y(b):
        out = w[b][0] * d_model
        return out if d_cubic is None else out + w[b][1] * d_cubic

    out = y(0)
    for b, sigma in enumerate(BAND_SIGMAS, 1):
        if w[b] != w[b - 1]:
            out = out + gaussian_blur(y(b) - y(b - 1), sigma, dims)
    return out


def run_generator(net: nn.Module, a: torch.Tensor, b: torch.Tensor, t, tta: bool = True) -> torch.Tensor:
    """The generator's prediction, averaged over the 8 flips and rotations of the planes with ``tta``.

    Interpolating between two planes does not depend on their orientation, so
    the average keeps the structure and cancels part of the network's own errors
    (measured on cells3d x2: +0.14 dB).
    """
    if not tta:
        return net(a, b, t=t).pred
    total = torch.zeros_like(a)
    for k in range(4):
        for flip in (False, True):
            def forward(x: torch.Tensor, k: int = k, flip: bool = flip) -> torch.Tensor:
                x = torch.rot90(x, k, (-2, -1))
                return x.flip(-1) if flip else x

            pred = net(forward(a), forward(b), t=t).pred
            pred = pred.flip(-1) if flip else pred
            total += torch.rot90(pred, -k, (-2, -1))
    return total / 8


def tile_starts(n: int, tile: int, step: int) -> list[int]:
    """Starts of ``tile``-long windows ``step`` apart that cover ``n`` pixels (the last one flush)."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def blend_ramp(shape, overlap: int, device) -> torch.Tensor:
    """Blending weights that fall off linearly over ``overlap`` pixels at tile edges."""
    def ramp1d(n: int) -> torch.Tensor:
        r = torch.ones(n, device=device)
        k = min(overlap, n // 2)
        if k > 0:
            edge = torch.linspace(1.0 / (k + 1), 1.0, k, device=device)
            r[:k], r[-k:] = edge, edge.flip(0)
        return r

    return ramp1d(shape[0])[:, None] * ramp1d(shape[1])[None, :]


def tiled_generator(net: nn.Module, a: torch.Tensor, b: torch.Tensor, t, tile: int, overlap: int,
                    tta: bool, done=None) -> torch.Tensor:
    """:func:`run_generator` on planes of any size: overlapping tiles above ``tile`` pixels, blended.

    ``done(fraction)``, if given, is called after each tile with the share of the work it was (a progress bar
    moves during a batch of large planes, not only after it).
    """
    h, w = a.shape[-2:]
    if h <= tile and w <= tile:
        out = run_generator(net, a, b, t, tta)
        if done is not None:
            done(1.0)
        return out
    if tile <= 2 * overlap:  # tiles would not advance, or leave pixels no tile's centre covers
        raise ValueError(f"the tile side ({tile}) must be more than twice the overlap ({overlap})")
    out = torch.zeros_like(a)
    weight = torch.zeros((1, 1, h, w), device=a.device)
    step = tile - 2 * overlap
    starts = [(y, x) for y in tile_starts(h, tile, step) for x in tile_starts(w, tile, step)]
    for y, x in starts:
        sl = (..., slice(y, y + tile), slice(x, x + tile))
        pred = run_generator(net, a[sl], b[sl], t, tta)
        ramp = blend_ramp(pred.shape[-2:], overlap, a.device)
        out[sl] += pred * ramp
        weight[sl] += ramp
        if done is not None:
            done(1.0 / len(starts))
    return out / weight


@torch.no_grad()
def apply_exact_tiles(net: nn.Module, x: torch.Tensor, device, tile: int = 256,
                      max_pixels: int = 1 << 21) -> torch.Tensor:
    """Run a size-preserving net on ``(n, 1, h, w)`` planes of any size, tile by tile.

    Each tile is computed with ``net.radius`` pixels of real context on every
    side that has any, and only its centre is kept, so the result equals the
    untiled one. Planes smaller than 8 pixels are padded (replicate) first.
    """
    n, _, h, w = x.shape
    ph, pw = max(0, 8 - h), max(0, 8 - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    hp, wp = x.shape[-2:]
    out = torch.empty_like(x)
    m = net.radius
    spans = lambda size: [(s, min(s + tile, size)) for s in range(0, size, tile)]  # noqa: E731
    chunk = max(1, max_pixels // ((min(tile, hp) + 2 * m) * (min(tile, wp) + 2 * m)))
    for y0, y1 in spans(hp):
        for x0, x1 in spans(wp):
            cy0, cy1, cx0, cx1 = max(0, y0 - m), min(hp, y1 + m), max(0, x0 - m), min(wp, x1 + m)
            for i in range(0, n, chunk):
                part = net(x[i:i + chunk, :, cy0:cy1, cx0:cx1].to(device)).float().to(x.device)
                out[i:i + chunk, :, y0:y1, x0:x1] = part[..., y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    return out[..., :h, :w]


def spline_matrix(z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
    """Weights ``(len(z_out), len(z_in))`` of the not-a-knot cubic spline through planes at ``z_in``.

    The spline is linear in the data, so interpolating the identity gives its
    weights (as :func:`zaug.classic.interpolate_stack`, linear below 4 planes).
    """
    z_in, z_out = np.asarray(z_in, np.float64), np.asarray(z_out, np.float64)
    n = len(z_in)
    if n < 4:
        hi = np.clip(np.searchsorted(z_in, z_out, side="right"), 1, n - 1)
        w = (z_out - z_in[hi - 1]) / (z_in[hi] - z_in[hi - 1])
        out = np.zeros((len(z_out), n))
        out[np.arange(len(z_out)), hi - 1] = 1 - w
        out[np.arange(len(z_out)), hi] += w
        return out
    return CubicSpline(z_in, np.eye(n), axis=0, bc_type="not-a-knot")(z_out)


def transfer_planes(planes: torch.Tensor, estimates: torch.Tensor, z_in: np.ndarray, z_out: np.ndarray,
                    alpha: float = 0.5) -> torch.Tensor:
    """Planes at ``z_out`` from ``(N, Y, X)`` planes at ``z_in`` and estimates of the ``N - 2`` inner ones.

    Each inner plane becomes ``alpha * measured + (1 - alpha) * estimate``;
    between planes, linear interpolation of these plus the curvature term of a
    quadratic, ``-0.5 (z - z_i)(z_{i+1} - z) f''``, with ``f''`` from their divided
    differences (interpolated linearly, constant beyond the outer inner planes).
    The computation of :func:`zaug.methods.zaugnet.transfer_interpolate` (ZAugNet's
    ``transfer`` mode), in torch so the exported module needs nothing else.
    """
    z_in, z_out = np.asarray(z_in, np.float64), np.asarray(z_out, np.float64)
    s = planes.clone()
    s[1:-1] = alpha * planes[1:-1] + (1 - alpha) * estimates.to(planes)
    h = np.diff(z_in)
    column = lambda v: torch.as_tensor(np.asarray(v, np.float32), device=planes.device)[:, None, None]  # noqa: E731
    slopes = (s[1:] - s[:-1]) / column(h)
    curv = torch.empty_like(s)
    curv[1:-1] = 2 * (slopes[1:] - slopes[:-1]) / column(z_in[2:] - z_in[:-2])
    curv[0], curv[-1] = curv[1], curv[-2]
    hi = np.clip(np.searchsorted(z_in, z_out, side="right"), 1, len(z_in) - 1)
    out = planes.new_empty((len(z_out),) + tuple(planes.shape[1:]))
    for n, (zo, b) in enumerate(zip(z_out, hi)):  # plane by plane: no temporaries the size of the output
        a = b - 1
        t = float(np.float32((zo - z_in[a]) / h[a]))
        quad = float(np.float32(-0.5 * (zo - z_in[a]) * (z_in[b] - zo)))
        out[n] = (1 - t) * s[a] + t * s[b] + quad * ((1 - t) * curv[a] + t * curv[b])
    return out


class ZStackInterpolator(nn.Module):
    """A z-stack ``(B, Z, Y, X)`` in, ``(B, factor (Z - 1) + 1, Y, X)`` out; uniform z spacing.

    Parameters
    ----------
    net : dict
        :class:`~zaug.nets.ifnet.IFNet` keyword arguments (``position_input``
        True for ZAugNet+).
    low, high : float
        The model's intensity normalisation: ``(x - low) / (high - low)``, clipped to [0, 1].
    factor : int
        How many times finer the output's z sampling is. ZAugNet inserts
        midpoints pass after pass, so a power of two; ZAugNet+ any integer, in one pass.
    weights : list
        Calibration weights, one entry per pass: a ``(model, cubic)`` pair, or
        one pair per detail band (:func:`band_weights`). Each new plane is
        ``linear + model (prediction - linear) + cubic (spline - linear)``, band
        by band (:func:`weighted_departure`).
    tta, tile, overlap, batch
        As in ``zaug predict``: 8-fold averaging, tile side and overlap for large
        planes, plane pairs per forward pass.
    mode : {'direct', 'transfer'}
        ``'transfer'``: the generator estimates each inner input plane from its
        two neighbours only (the gap it learnt at) and :func:`transfer_planes`
        carries the estimates to the new planes; any integer factor, no
        calibration weights (``weights`` empty), at least 3 input planes.
    alpha : float
        Transfer mode: weight of the measured plane against the estimate.
    """

    def __init__(self, net: dict, low: float, high: float, factor: int, weights: list,
                 tta: bool = True, tile: int = 512, overlap: int = 32, batch: int = 4,
                 mode: str = "direct", alpha: float = 0.5):
        super().__init__()
        self.generator = IFNet(**net)
        self.plus = bool(net.get("position_input"))
        if mode not in ("direct", "transfer"):
            raise ValueError(f"mode must be 'direct' or 'transfer', got {mode!r}")
        self.mode, self.alpha = mode, float(alpha)
        any_integer = self.plus or mode == "transfer"
        passes = 0 if mode == "transfer" else 1 if self.plus else int(round(np.log2(factor)))
        if factor < 2 or (not any_integer and 2**passes != factor):
            raise ValueError(f"factor must be {'an integer' if any_integer else 'a power of two'} >= 2, got {factor}")
        if len(weights) != passes:
            raise ValueError(f"{passes} set(s) of calibration weights are needed, got {len(weights)}")
        self.low, self.high, self.factor = float(low), float(high), int(factor)
        self.weights = [band_weights(w) for w in weights]
        self.tta, self.tile, self.overlap, self.batch = bool(tta), int(tile), int(overlap), int(batch)

    @torch.no_grad()
    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        least = 3 if self.mode == "transfer" else 2
        if stack.dim() != 4 or stack.shape[1] < least:
            raise ValueError(f"expected a (batch, z, y, x) stack of at least {least} planes, got {tuple(stack.shape)}")
        raw = stack.float()
        # not clipped: the generator sees [0, 1]; its departure from linear goes onto the planes as they are
        x = (raw - self.low) / (self.high - self.low)
        out = torch.stack([self._one(s) for s in x])
        out = out * (self.high - self.low) + self.low
        out[:, ::self.factor] = raw  # acquired planes as measured
        return out

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        """One normalised ``(Z, Y, X)`` stack."""
        if self.mode == "transfer":
            n = x.shape[0]
            jobs = [(i - 1, i + 1, 0.5) for i in range(1, n - 1)]
            estimates = torch.cat([self._predict(x, jobs[s:s + self.batch]) for s in range(0, len(jobs), self.batch)])
            estimates = estimates + clipping_offset(x[:-2], x[2:], 0.5)
            z_out = np.arange((n - 1) * self.factor + 1) / self.factor
            return transfer_planes(x, estimates, np.arange(n, dtype=np.float64), z_out, self.alpha)
        if self.plus:
            return self._insert(x, [j / self.factor for j in range(1, self.factor)], self.weights[0])
        for weights in self.weights:
            x = self._insert(x, [0.5], weights)
        return x

    def _insert(self, x: torch.Tensor, ts: list[float], weights: tuple) -> torch.Tensor:
        """Planes at relative positions ``ts`` between every two neighbours, interleaved with ``x``."""
        n, k = x.shape[0], len(ts) + 1
        jobs = [(i, t) for i in range(n - 1) for t in ts]
        pred = torch.cat([self._predict(x, [(i, i + 1, t) for i, t in jobs[s:s + self.batch]])
                          for s in range(0, len(jobs), self.batch)])
        i = torch.tensor([j[0] for j in jobs], device=x.device)
        t = torch.tensor([j[1] for j in jobs], dtype=x.dtype, device=x.device)[:, None, None]
        linear = (1 - t) * x[i] + t * x[i + 1]
        pred = pred + clipping_offset(x[i], x[i + 1], t)
        d_cubic = None
        if any(c > 0 for _, c in weights):
            at = np.array([a + tt for a, tt in jobs], np.float64)
            spline = torch.from_numpy(spline_matrix(np.arange(n), at)).to(x)
            d_cubic = torch.einsum("mn,nyx->myx", spline, x) - linear
        new = linear + weighted_departure(pred - linear, d_cubic, weights)
        out = x.new_empty(((n - 1) * k + 1,) + tuple(x.shape[1:]))
        out[::k] = x
        for j in range(1, k):
            out[j::k] = new[j - 1::k - 1]
        return out

    def _predict(self, x: torch.Tensor, jobs: list[tuple[int, int, float]]) -> torch.Tensor:
        """The generator's plane between ``x[a]`` and ``x[b]`` at ``t`` for each job ``(a, b, t)``."""
        a = torch.stack([x[i] for i, _, _ in jobs])[:, None].clamp(0, 1)
        b = torch.stack([x[j] for _, j, _ in jobs])[:, None].clamp(0, 1)
        t = torch.tensor([tt for _, _, tt in jobs], dtype=x.dtype, device=x.device) if self.plus else None
        return tiled_generator(self.generator, a, b, t, self.tile, self.overlap, self.tta)[:, 0]


def fuse_axial_planes(x: torch.Tensor, restore, fuse: str) -> torch.Tensor:
    """Restore the xz and the yz planes of a ``(Z, Y, X)`` stack with ``restore`` and fuse the two results.

    ``restore`` maps planes ``(P, Z, W)`` to ``(P, Z', W)``; as :func:`zaug.restore.restore_stack`.
    """
    parts = []
    if fuse != "yz":  # xz planes: (Y, Z, X) -> (Y, Zout, X) -> (Zout, Y, X)
        parts.append(restore(x.permute(1, 0, 2)).permute(1, 0, 2))
    if fuse != "xz":  # yz planes: (X, Z, Y) -> (X, Zout, Y) -> (Zout, Y, X)
        parts.append(restore(x.permute(2, 0, 1)).permute(1, 2, 0))
    if len(parts) == 1:
        return parts[0]
    if fuse == "geometric":
        return torch.sqrt(parts[0].clamp(min=0) * parts[1].clamp(min=0))
    return 0.5 * (parts[0] + parts[1])


def restoration_rows(planes: int, step: float) -> np.ndarray:
    """Output rows (in input-plane units) ``step`` apart, from the first plane to the last.

    As :func:`zaug.predict.output_positions` with ``z_spacing = step`` planes.
    """
    count = int(np.floor((planes - 1) / step + 1e-6)) + 1
    return np.minimum(step * np.arange(count), planes - 1)


class _StackRestorer(nn.Module):
    """What the restorers share: intensities to 0..1 and back, output rows ``step`` planes apart."""

    def __init__(self, low: float, high: float, step: float, fuse: str = "mean"):
        super().__init__()
        if fuse not in ("mean", "geometric", "xz", "yz"):
            raise ValueError(f"unknown fusion {fuse!r}")
        self.low, self.high, self.step, self.fuse = float(low), float(high), float(step), fuse

    @torch.no_grad()
    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        if stack.dim() != 4 or stack.shape[1] < 2:
            raise ValueError(f"expected a (batch, z, y, x) stack of at least 2 planes, got {tuple(stack.shape)}")
        x = (stack.float() - self.low) / (self.high - self.low)
        rows = restoration_rows(x.shape[1], self.step)
        out = torch.stack([self._restore(s, rows) for s in x])
        return out * (self.high - self.low) + self.low

    def _spline(self, x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        """Cubic-spline weights from the ``(Z, ...)`` stack's planes to ``rows``."""
        return torch.from_numpy(spline_matrix(np.arange(x.shape[0]), rows)).to(x)


class ZStackRestorer(_StackRestorer):
    """Self-Net's restoration of a z-stack: ``(B, Z, Y, X)`` in, ``(B, Z', Y, X)`` out.

    Every xz and every yz plane is resampled along z to rows ``step`` planes
    apart with a cubic spline, deblurred by the network (exact tiles), and the
    two results are fused, as :func:`zaug.restore.restore_volume` does.

    Parameters
    ----------
    net : dict
        :class:`~zaug.nets.resnet2d.ResNetGenerator` keyword arguments.
    low, high : float
        Intensities mapped to 0 and 1 (not clipped).
    step : float
        Output z spacing in input planes (``1 / factor``).
    fuse : {'mean', 'geometric', 'xz', 'yz'}
    tile : int
        Tile side of the deblurring (the result does not depend on it).
    """

    def __init__(self, net: dict, low: float, high: float, step: float, fuse: str = "mean", tile: int = 256):
        super().__init__(low, high, step, fuse)
        self.deblur = ResNetGenerator(**net)
        self.tile = int(tile)

    def _restore(self, x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        spline = self._spline(x, rows)
        return fuse_axial_planes(x, lambda planes: self._planes(planes, spline), self.fuse)

    def _planes(self, planes: torch.Tensor, spline: torch.Tensor) -> torch.Tensor:
        resampled = torch.einsum("mn,pnw->pmw", spline, planes)
        return apply_exact_tiles(self.deblur, resampled[:, None].contiguous(), planes.device, self.tile)[:, 0]


class ZStackNiivRestorer(_StackRestorer):
    """niiv's restoration of a z-stack: ``(B, Z, Y, X)`` in, ``(B, Z', Y, X)`` out.

    Every xz and every yz plane is encoded by the network and decoded at rows
    ``step`` planes apart (continuous coordinates, no resampling first); the
    two results are fused, as :func:`zaug.restore.restore_volume` does with
    :class:`zaug.methods.niiv.NiivRestorer`.

    Parameters
    ----------
    net : dict
        :class:`~zaug.nets.edsr_liif.NIIV` keyword arguments.
    low, high : float
        Intensities mapped to 0 and 1 (not clipped).
    step : float
        Output z spacing in input planes (``1 / factor``).
    fuse : {'mean', 'geometric', 'xz', 'yz'}
    batch, chunk : int
        Planes per encoding and queries per decoding (the result does not depend on them).
    """

    def __init__(self, net: dict, low: float, high: float, step: float, fuse: str = "mean", batch: int = 64,
                 chunk: int = 1 << 16):
        super().__init__(low, high, step, fuse)
        self.niiv = NIIV(**net)
        self.batch, self.chunk = int(batch), int(chunk)

    def _restore(self, x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return fuse_axial_planes(x, lambda planes: self._planes(planes, rows), self.fuse)

    def _planes(self, planes: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        n, h, w = planes.shape
        coords = rows_to_coords(rows, h, w).to(planes.device)
        parts = [self.niiv.predict_coords(planes[i:i + self.batch, None].contiguous(), coords, chunk=self.chunk)
                 for i in range(0, n, self.batch)]
        return torch.cat(parts).reshape(n, len(rows), w)


def cube_ramp(n: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """Blend weights along one axis of a cube: linear ramps on the sides it shares with a neighbour."""
    w = torch.ones(n)
    k = min(overlap, n)
    ramp = torch.arange(1, k + 1, dtype=torch.float32) / (overlap + 1)
    if not first:
        w[:k] = torch.minimum(w[:k], ramp)
    if not last:
        w[n - k:] = torch.minimum(w[n - k:], ramp.flip(0))
    return w


def n_cubes(shape: tuple[int, ...], tile: int = 64, overlap: int = 16) -> int:
    """How many cubes :func:`apply_blended_cubes` runs the net on for a volume of ``shape``."""
    return math.prod(len(tile_starts(n, tile, tile - overlap)) for n in shape)


@torch.no_grad()
def apply_blended_cubes(net: nn.Module, volume: torch.Tensor, tile: int = 64, overlap: int = 16,
                        device=None, on_cube=None) -> torch.Tensor:
    """Run a size-preserving 3D net on a ``(Z, Y, X)`` volume of any size in overlapping, blended cubes.

    Cubes of side ``tile`` start ``tile - overlap`` apart (the last one flush
    with the end); where they overlap, their outputs are averaged with linear
    ramps, so no seam shows. ``device``: where the net runs (default: the
    volume's); the result stays on the volume's device. ``on_cube``: called
    after each cube (progress).
    """
    device = volume.device if device is None else device
    acc = torch.zeros(volume.shape, dtype=torch.float32, device=volume.device)
    total = torch.zeros_like(acc)
    shape = tuple(volume.shape)
    starts = [tile_starts(n, tile, tile - overlap) for n in shape]
    for z0 in starts[0]:
        for y0 in starts[1]:
            for x0 in starts[2]:
                window = tuple(slice(s, s + min(tile, n)) for s, n in zip((z0, y0, x0), shape))
                out = net(volume[window].float()[None, None].to(device))[0, 0].float().to(volume.device)
                ramps = [cube_ramp(w.stop - w.start, overlap, w.start == 0, w.stop == n).to(volume.device)
                         for w, n in zip(window, shape)]
                blend = ramps[0][:, None, None] * ramps[1][None, :, None] * ramps[2][None, None, :]
                acc[window] += out * blend
                total[window] += blend
                if on_cube is not None:
                    on_cube()
    return acc / total


class ZVolumeRestorer(_StackRestorer):
    """RESIN's restoration of a z-stack: ``(B, Z, Y, X)`` in, ``(B, Z', Y, X)`` out.

    The stack is resampled along z to rows ``step`` planes apart with a cubic
    spline (an isotropic grid), then restored by the 3D network in overlapping
    cubes blended with linear ramps, as :class:`zaug.methods.resin.ResinRestorer` does.

    Parameters
    ----------
    net : dict
        :class:`~zaug.nets.unet3d.UNet3D` keyword arguments.
    low, high : float
        Intensities mapped to 0 and 1 (not clipped).
    step : float
        Output z spacing in input planes (``1 / factor``).
    tile, overlap : int
        Cube side and overlap in voxels.
    """

    def __init__(self, net: dict, low: float, high: float, step: float, tile: int = 64, overlap: int = 16):
        super().__init__(low, high, step)
        self.restore = UNet3D(**net)
        self.tile = int(tile)
        self.overlap = max(0, min(int(overlap), self.tile // 2))  # cubes must advance

    def _restore(self, x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        iso = torch.einsum("mn,nyx->myx", self._spline(x, rows), x)
        return apply_blended_cubes(self.restore, iso, self.tile, self.overlap)
