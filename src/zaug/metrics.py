"""Image quality metrics on normalised stacks.

All metrics compare a prediction with a ground truth of the same shape
(a 2D plane or a ZYX stack of planes). Stacks are pooled: PSNR from one MSE
over all planes, SSIM as the mean over planes. ``data_range`` is the span of
the normalised intensities (1.0 after :func:`normalize_percentile`).

The Fourier-clipped PSNR (niiv) keeps only spatial frequencies within a radius
of the 2D spectrum; ``radius`` is a fraction of the Nyquist frequency, so
``radius >= sqrt(2)`` keeps everything and equals the PSNR (Parseval). A method
that wins only at high radii is fitting noise.

Examples
--------
>>> import numpy as np
>>> from zaug.metrics import psnr, fourier_clipped_psnr
>>> rng = np.random.default_rng(0)
>>> gt = rng.random((2, 32, 32))
>>> pred = gt + 0.01
>>> round(psnr(pred, gt), 2)
40.0
>>> round(fourier_clipped_psnr(pred, gt, 2.0), 2)
40.0
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from .errors import InputError, ZaugWarning

FULL_RADIUS = float(np.sqrt(2.0))
DEFAULT_SWEEP = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, FULL_RADIUS)
#: Radii (fraction of Nyquist) reported by default: structure, detail, fine detail/noise.
BANDS = {"low": 0.1, "mid": 0.25, "high": 0.5}


def normalize_percentile(data: np.ndarray, low: float = 0.1, high: float = 99.9,
                         reference: np.ndarray | None = None, clip: bool = True) -> np.ndarray:
    """Map percentile ``low`` to 0 and ``high`` to 1 (of ``reference``, default ``data``)."""
    ref = data if reference is None else reference
    lo, hi = np.percentile(np.asarray(ref, dtype=np.float64), (low, high))
    scale = hi - lo if hi > lo else 1.0
    out = (np.asarray(data, dtype=np.float32) - np.float32(lo)) / np.float32(scale)
    return np.clip(out, 0.0, 1.0) if clip else out


def as_pair(pred, gt, data_range: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``gt`` (arrays or Volumes) as float64 arrays of one shape.

    Refuses different shapes (which numpy would broadcast, or a loop over
    planes cut short, into a plausible number) in one sentence; warns when
    ``gt`` spans far more than ``data_range`` (raw 16-bit intensities scored
    as if normalised).
    """
    pred, gt = (np.asarray(getattr(a, "data", a), dtype=np.float64) for a in (pred, gt))
    if pred.shape != gt.shape:
        raise InputError(f"the prediction ({pred.shape}) and the truth ({gt.shape}) must have the same shape.")
    if data_range is not None and gt.size and float(np.ptp(gt)) > 10 * data_range:  # raw 8- or 16-bit
        warnings.warn(ZaugWarning(f"the truth spans {float(np.ptp(gt)):g}, far more than data_range "
                                  f"{data_range:g}: normalise both (normalize_percentile) or give data_range."),
                      stacklevel=3)
    return pred, gt


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared error, pooled over every voxel."""
    pred, gt = as_pair(pred, gt)
    diff = pred - gt
    return float(np.mean(diff * diff))


def rmse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Root mean squared error, pooled over every voxel."""
    return float(np.sqrt(mse(pred, gt)))


def _psnr_from_mse(err: float, data_range: float) -> float:
    return float("inf") if err <= 0 else float(10.0 * np.log10(data_range**2 / err))


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB from one MSE over all voxels."""
    pred, gt = as_pair(pred, gt, data_range)
    diff = pred - gt
    return _psnr_from_mse(float(np.mean(diff * diff)), data_range)


def ssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity: per 2D plane (Gaussian window off, 7x7), mean over planes."""
    pred, gt = as_pair(pred, gt, data_range)
    if gt.ndim not in (2, 3):
        raise InputError(f"SSIM compares planes or stacks of planes (2 or 3 dimensions); got {gt.ndim}.")
    if min(gt.shape[-2:]) < 7:
        raise InputError(f"SSIM needs planes of at least 7 x 7 pixels (its window); these are "
                         f"{gt.shape[-2]} x {gt.shape[-1]}.")
    if gt.ndim == 2:
        return float(structural_similarity(pred, gt, data_range=data_range))
    return float(np.mean([structural_similarity(p, g, data_range=data_range) for p, g in zip(pred, gt)]))


def _radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.sqrt(fy**2 + fx**2) / 0.5  # 1.0 = Nyquist


def fourier_clipped_psnr_sweep(pred: np.ndarray, gt: np.ndarray, radii=DEFAULT_SWEEP,
                               data_range: float = 1.0) -> dict[float, float]:
    """Fourier-clipped PSNR at each radius, pooled over planes.

    The error spectrum ``FFT(pred - gt)`` is computed once per plane; by
    Parseval the clipped MSE is ``sum_{|k| <= r} |D_k|^2 / N^2``.
    """
    pred, gt = as_pair(pred, gt, data_range)
    diff = pred - gt
    if diff.ndim == 2:
        diff = diff[None]
    power = np.abs(np.fft.fft2(diff, axes=(-2, -1))) ** 2
    power = power.sum(axis=0)
    n_pix = diff.shape[-1] * diff.shape[-2]
    n_planes = diff.shape[0]
    radius = _radial_frequency(diff.shape[-2:])
    return {float(r): _psnr_from_mse(float(power[radius <= r + 1e-12].sum()) / (n_pix**2 * n_planes), data_range)
            for r in radii}


def fourier_clipped_psnr(pred: np.ndarray, gt: np.ndarray, radius: float,
                         data_range: float = 1.0) -> float:
    """Fourier-clipped PSNR at one radius (fraction of Nyquist)."""
    return fourier_clipped_psnr_sweep(pred, gt, (radius,), data_range)[float(radius)]


def gradient_magnitude(data: np.ndarray) -> float:
    """Mean in-plane gradient magnitude (Sobel), over all planes."""
    data = np.asarray(data, dtype=np.float32)
    # the Sobel pair of each plane alone: ndimage.sobel on a stack would also smooth across its planes, which
    # favours methods whose planes are alike (x4 drop-slice: linear read 1.00 for an in-plane 0.83)
    derivative, smoothing = [-1.0, 0.0, 1.0], [1.0, 2.0, 1.0]
    gy = ndimage.correlate1d(ndimage.correlate1d(data, derivative, axis=-2), smoothing, axis=-1)
    gx = ndimage.correlate1d(ndimage.correlate1d(data, derivative, axis=-1), smoothing, axis=-2)
    return float(np.mean(np.hypot(gx, gy)))


def sharpness_ratio(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean gradient magnitude of ``pred`` over that of ``gt``: 1 is right, < 1 blurrier."""
    ref = gradient_magnitude(gt)
    return float(gradient_magnitude(pred) / ref) if ref > 0 else float("nan")


def plane_psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR of every plane of a stack."""
    pred, gt = as_pair(pred, gt)
    return np.array([psnr(p, g, data_range) for p, g in zip(pred, gt)])


def score(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0,
          radii=DEFAULT_SWEEP) -> dict:
    """All metrics for one prediction, as a plain dict."""
    sweep = fourier_clipped_psnr_sweep(pred, gt, tuple(radii) + tuple(BANDS.values()), data_range)
    return {
        "psnr": psnr(pred, gt, data_range),
        "ssim": ssim(pred, gt, data_range),
        "rmse": rmse(pred, gt),
        "cf_psnr": {band: sweep[r] for band, r in BANDS.items()},
        "cf_psnr_sweep": {f"{r:.3g}": sweep[float(r)] for r in radii},
        "sharpness": sharpness_ratio(pred, gt),
        "psnr_per_plane": [round(v, 4) for v in plane_psnr(pred, gt, data_range)],
    }
