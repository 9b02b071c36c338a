"""Restoration of an oblique axial blur, simulated on a near-isotropic stack, without resampling.

Some light-sheet set-ups image with the detection axis at an angle to the
stored z axis, so the long axis of the PSF is oblique in the voxel grid.
This protocol checks that a method undoes such a blur on the stack's own grid:

1. a near-isotropically sampled stack is normalised (0.1 / 99.9 percentiles
   to [0, 1]) and blurred along the direction ``(cos a, sin a)`` of the
   z-y plane with a Gaussian line of sigma ``factor / 2`` voxels (the same
   convention as ``--degradation gaussian``); nothing is subsampled, rotated
   or deskewed;
2. learned methods (``resin`` with ``axial_angle``) train on the blurred
   stack alone and restore it on the same grid; ``input`` is the blurred
   stack itself and ``richardson-lucy`` a deconvolution that is *given* the
   true kernel (30 iterations), a reference no user has;
3. PSNR (pooled), SSIM (mean over planes) and CF-PSNR on xy planes against
   the clean stack, clipped to [0, 1];
4. the *directional gradient ratio* ``mean |d/da| / mean |d/db|`` with ``a``
   the axial direction and ``b`` the perpendicular one in the z-y plane:
   about 1 for an isotropic image, lower when ``a`` is blurred.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> from zaug import Volume
>>> from zaug.evaluate_oblique import evaluate_oblique
>>> rng = np.random.default_rng(0)
>>> vol = Volume(ndimage.gaussian_filter(rng.random((24, 32, 32)), 1).astype(np.float32), (1, 1, 1))
>>> r = evaluate_oblique(vol, 45, 4, ["input", "richardson-lucy"])
>>> r["methods"]["richardson-lucy"]["psnr"] > r["methods"]["input"]["psnr"]
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from . import metrics
from .data.lateral import normalise, percentile_range
from .errors import InputError
from .evaluate import THROWAWAY, input_label, scratch_folder
from .methods import method_names
from .fid import FID_AXIAL_CONVENTION, FIDScorer, axial_planes, distance_columns
from .provenance import said_once
from .volume import Volume, check_volume

REFERENCES = ("input", "richardson-lucy")
MAX_ANISOTROPY = 1.3  # the protocol needs a near-isotropic grid

CONVENTIONS = [
    "stack normalised with its 0.1/99.9 percentiles to [0, 1]; blurred along (cos a, sin a) in the z-y plane "
    "with a Gaussian line kernel of sigma factor/2 voxels (0.5 voxel across); no subsampling, no resampling",
    "learned methods train on the blurred stack only and restore it on the same voxel grid",
    "'input' is the blurred stack; 'richardson-lucy' deconvolves with the true kernel (30 iterations): a "
    "reference that knows the PSF",
    "PSNR pooled over all voxels; SSIM mean over xy planes; CF-PSNR on xy planes (fraction of Nyquist)",
    "directional gradient ratio = mean |d/da| / mean |d/db| (a: axial direction, b: perpendicular in the z-y "
    "plane); about 1 when isotropic",
]


def line_blur_kernel(sigma: float, angle: float, width: float = 0.5) -> np.ndarray:
    """2D (z, y) Gaussian line kernel along ``(cos angle, sin angle)``.

    Parameters
    ----------
    sigma : float
        Standard deviation along the line, in voxels.
    angle : float
        Degrees from z towards +y.
    width : float
        Standard deviation across the line, in voxels.

    Returns
    -------
    numpy.ndarray
        Normalised float32 kernel of odd side.
    """
    t = math.radians(angle)
    r = int(math.ceil(3 * max(sigma, width)))
    z, y = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    along, across = z * math.cos(t) + y * math.sin(t), -z * math.sin(t) + y * math.cos(t)
    kernel = np.exp(-along**2 / (2 * sigma**2) - across**2 / (2 * width**2))
    return (kernel / kernel.sum()).astype(np.float32)


def oblique_blur(stack: np.ndarray, sigma: float, angle: float) -> np.ndarray:
    """Blur a ZYX stack along an oblique line of the z-y plane (same grid, reflecting borders)."""
    kernel = line_blur_kernel(sigma, angle)[:, :, None]
    return ndimage.convolve(np.asarray(stack, np.float32), kernel, mode="reflect").astype(np.float32)


def directional_gradient_ratio(stack: np.ndarray, angle: float) -> float:
    """``mean |d/da| / mean |d/db|`` for the axial direction ``a`` at ``angle`` and ``b`` across it (z-y plane)."""
    gz, gy = np.gradient(np.asarray(stack, np.float64), axis=(0, 1))
    t = math.radians(angle)
    along = np.abs(math.cos(t) * gz + math.sin(t) * gy).mean()
    across = np.abs(-math.sin(t) * gz + math.cos(t) * gy).mean()
    return float(along / across) if across > 0 else float("nan")


def evaluate_oblique(volume: Volume, angle: float, factor: float = 4.0, methods: Sequence[str] = ("input",),
                     train_options: dict | None = None, keep_predictions: bool = False,
                     log: Callable[[str], None] | None = None, fid_weights=None) -> dict:
    """Score restorations of a simulated oblique axial blur.

    Parameters
    ----------
    volume : Volume
        Near-isotropically sampled ZYX stack.
    angle : float
        Axial direction in degrees from z towards +y (not 0: use
        :func:`zaug.evaluate_restore.evaluate_restoration` for z).
    factor : float
        Anisotropy of the simulated PSF: the line blur has sigma ``factor / 2``.
    methods : sequence of str
        ``input``, ``richardson-lucy`` and ``resin``.
    train_options : dict, optional
        Passed to RESIN's ``fit`` (``minutes``/``steps``, ``preset``, ``seed``...).
    keep_predictions : bool
        Return the stacks under ``"arrays"`` for reports.
    fid_weights : path, optional
        Inception-v3 weights for the paper's FID on up to 64 xz and 64 yz
        planes; default ``$ZAUG_FID_WEIGHTS``; none without either (:mod:`zaug.fid`).

    Returns
    -------
    dict
    """
    if volume.axes != "ZYX":
        raise InputError(f"evaluation needs a single ZYX stack, this one has axes {volume.axes}; pick one channel "
                         "and time point (--channel C, --time T; Volume.select in Python).")
    check_volume(volume, min_planes=16)
    volume = said_once(volume, "evaluation")  # scored against predicted planes, if zaug made them
    if not 0 < abs(angle) <= 90:
        raise InputError(f"the oblique protocol needs an axial angle between 0 and 90 degrees, got {angle:g}.")
    if volume.anisotropy > MAX_ANISOTROPY or volume.anisotropy < 1 / MAX_ANISOTROPY:
        raise InputError(f"the oblique protocol needs a near-isotropic stack; this one has anisotropy "
                         f"{volume.anisotropy:.2f}.")
    if factor < 1:
        raise InputError(f"the anisotropy factor must be 1 or more, got {factor:g}.")
    log = log or (lambda msg: None)
    sigma = factor / 2
    lo, hi = percentile_range(np.asarray(volume.data, np.float32))
    truth = np.clip((np.asarray(volume.data, np.float32) - lo) / np.float32(hi - lo), 0.0, 1.0)
    blurred = oblique_blur(truth, sigma, angle)
    fid_scorer = FIDScorer.maybe(axial_planes(truth), fid_weights, (train_options or {}).get("device", "cpu"))
    results, arrays = {}, {}
    for name in method_names(methods):
        start = time.perf_counter()
        restored, extra = _restore(name, blurred, volume, angle, factor, sigma, train_options or {}, log)
        pred = np.clip(restored, 0.0, 1.0)
        scores = metrics.score(pred, truth)
        scores.update(directional_gradient_ratio=directional_gradient_ratio(pred, angle),
                      seconds=round(time.perf_counter() - start, 2), **extra)
        if fid_scorer:
            scores.update(fid_scorer.scores(axial_planes(pred)))
        results[name] = scores
        arrays[name] = pred
        log(f"{name}: PSNR {scores['psnr']:.2f} dB, gradient ratio {scores['directional_gradient_ratio']:.3f}")
    result = {
        "input": input_label(volume), "shape": list(volume.data.shape),
        "voxel_size": list(volume.voxel_size), "unit": volume.unit, "factor": float(factor), "sigma": sigma,
        "axial_angle": float(angle), "conventions": CONVENTIONS,
        "reference": {"original": {"directional_gradient_ratio": directional_gradient_ratio(truth, angle)},
                      "input": {"directional_gradient_ratio": directional_gradient_ratio(blurred, angle)}},
        "methods": results,
    }
    if fid_scorer:
        result["fid"] = fid_scorer.info
        result["conventions"] = CONVENTIONS + [FID_AXIAL_CONVENTION]
    if keep_predictions:
        result["arrays"] = dict(arrays, truth=truth, blurred=blurred)
    return result


def _restore(name: str, blurred: np.ndarray, volume: Volume, angle: float, factor: float, sigma: float,
             options: dict, log) -> tuple[np.ndarray, dict]:
    if name == "input":
        return blurred, {}
    if name == "richardson-lucy":
        from skimage.restoration import richardson_lucy

        psf = line_blur_kernel(sigma, angle)[:, :, None]
        r = psf.shape[0] // 2  # reflect-pad so the zero borders of the FFT convolution stay outside
        padded = np.pad(blurred, ((r, r), (r, r), (0, 0)), mode="reflect")
        restored = richardson_lucy(padded, psf, num_iter=30, clip=False)[r:-r, r:-r]
        return restored.astype(np.float32), {}
    if name != "resin":
        raise InputError(f"method {name!r} cannot restore an oblique blur; use resin, input or richardson-lucy.")
    from .methods import resin

    log("resin: training on the blurred stack only")
    # The grid is already isotropic (factor 1 for resampling); the validation blur uses the stated anisotropy.
    opts = dict(options, **THROWAWAY, method="resin", factor=1.0, axial_angle=angle, sigma=sigma)
    stack = volume.replace(data=blurred, metadata=dict(volume.metadata))
    with scratch_folder() as tmp:
        model = resin.load(resin.fit([stack], tmp / "model", opts), device=options.get("device", "auto"))
    # RESIN trained on the stack scaled by its own percentiles (resin.fit): predict on it scaled the same way
    lo, hi = percentile_range(blurred)
    rows = np.arange(len(blurred), dtype=np.float64)
    restored = model.restore_normalised(normalise(blurred, lo, hi), rows) * np.float32(hi - lo) + np.float32(lo)
    return restored, {"training": model.training_summary}


def format_oblique_table(result: dict) -> str:
    """Plain-text table of an oblique restoration evaluation."""
    ref = result["reference"]
    lines = [f"oblique blur at {result['axial_angle']:g} deg (sigma {result['sigma']:g} voxels) on {result['input']}",
             f"{'method':<17}{'PSNR':>8}{'SSIM':>8}{'CF-low':>8}{'CF-mid':>8}{'sharp':>7}{'grad ratio':>11}"
             f"{'time s':>9}" + (distance_columns() if "fid" in result else "")]
    for name, r in result["methods"].items():
        cf = r["cf_psnr"]
        lines.append(f"{name:<17}{r['psnr']:>8.2f}{r['ssim']:>8.4f}{cf['low']:>8.2f}{cf['mid']:>8.2f}"
                     f"{r['sharpness']:>7.3f}{r['directional_gradient_ratio']:>11.3f}{r['seconds']:>9.1f}"
                     + distance_columns(r))
    lines.append(f"directional gradient ratio: original {ref['original']['directional_gradient_ratio']:.3f}, "
                 f"blurred input {ref['input']['directional_gradient_ratio']:.3f}")
    return "\n".join(lines)
