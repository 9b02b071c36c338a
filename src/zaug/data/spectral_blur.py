"""The axial blur of a stack measured from its power spectra.

An anisotropic stack samples z coarsely and blurs it with the longer axial PSF.
Its lateral rows, blurred by a Gaussian of ``sigma`` lateral pixels and kept
every ``factor``-th pixel, are sampled like its z columns; at the right
``sigma`` their power spectrum has the shape of the z columns' spectrum. This
needs no bright thin structures (unlike :func:`zaug.data.lateral.estimate_axial_sigma`),
so it also reads electron microscopy and dense tissue, but it assumes the
specimen is, in its statistics, the same along z as across (not so for flat
nuclei, whose z spectrum is poorer in high frequencies for reasons of shape).

Noise. A real axial sample carries the camera's noise after the optical blur;
blurring a lateral row also averages its noise away. The lateral spectrum is
therefore given back white noise of variance ``s^2 (1 - sum(k^2))`` (``s``: the
stack's noise level, ``k``: the kernel), as ``--renoise`` does to training pairs.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, signal

from ..volume import Volume
from .lateral import _check_factor, blur_axis, gaussian_weights, noise_level, subsample_axis

#: Fewest frequencies (above zero) at which the z spectrum must stand above twice the noise.
MIN_SIGNAL_BINS = 3


def segment_power(data: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Mean power spectrum of the ``length``-long segments of ``data`` along ``axis``.

    Each segment loses its mean and is Hann-windowed; the spectrum is scaled so
    that white noise of variance ``v`` gives ``v`` at every frequency.

    >>> noise = np.random.default_rng(0).standard_normal((4000, 16))
    >>> round(float(segment_power(noise, 1, 16)[2:].mean()), 1)
    1.0
    """
    moved = np.moveaxis(np.asarray(data, np.float64), axis, -1)
    count = moved.shape[-1] // length
    segments = moved[..., : count * length].reshape(-1, length)
    segments = segments - segments.mean(axis=-1, keepdims=True)
    window = signal.windows.hann(length, sym=False)
    return (np.abs(np.fft.rfft(segments * window, axis=-1)) ** 2).mean(axis=0) / np.sum(window**2)


def _fit_level(log_axial: np.ndarray, structure: np.ndarray, floor: np.ndarray) -> float:
    """RMS log misfit of ``level * structure + floor`` to the z spectrum, at the best level.

    The level is free because the lateral rows are themselves blurred along z
    (they lie in planes the axial PSF has averaged), which lowers their structure's
    power without changing its shape; the noise floor is not lowered.
    """
    def misfit(log_level: float) -> float:
        model = np.exp(log_level) * structure + floor
        return float(np.sqrt(np.mean((log_axial - np.log(model)) ** 2)))

    return float(optimize.minimize_scalar(misfit, bounds=(-4.0, 4.0), method="bounded",
                                          options={"xatol": 1e-3}).fun)


def estimate_axial_sigma_spectral(volume: Volume, factor: float, *, crop: int = 256, planes: int = 64) -> dict:
    """The Gaussian degradation sigma that gives lateral rows the z columns' power spectrum.

    Parameters
    ----------
    volume : Volume
        The anisotropic stack (its first channel / time point is measured).
    factor : float
        Axial / lateral sampling ratio.
    crop, planes : int
        Largest lateral window and number of planes measured (central).

    Returns
    -------
    dict
        ``sigma`` (lateral pixels, or None with a ``reason``), ``method``
        (``"spectrum"``), ``misfit`` (RMS difference of the log spectra at the
        fit, natural log), ``frequencies`` (how many were fitted), ``signal_bins``
        (how many stand above twice the noise), ``noise`` (voxel noise level).

    Examples
    --------
    >>> from scipy import ndimage
    >>> rng = np.random.default_rng(0)
    >>> texture = ndimage.gaussian_filter(rng.standard_normal((160, 160, 160)), 1.5)  # isotropic
    >>> blurred = ndimage.gaussian_filter1d(texture, 3.0, axis=0)[::4]  # an axial blur, every 4th plane
    >>> est = estimate_axial_sigma_spectral(Volume(blurred.astype(np.float32), (4.0, 1.0, 1.0)), 4.0)
    >>> bool(abs(est["sigma"] - 3.0) < 0.3)
    True
    """
    factor = _check_factor(factor)
    stack = np.asarray(next(iter(volume.stacks()))[1], dtype=np.float32)
    z0 = max(0, (stack.shape[0] - planes) // 2)
    y0, x0 = (max(0, (n - crop) // 2) for n in stack.shape[1:])
    stack = np.ascontiguousarray(stack[z0:z0 + planes, y0:y0 + crop, x0:x0 + crop])
    kept = [int((n - 1) // factor) + 1 for n in stack.shape[1:]]
    length = min(stack.shape[0], *kept)
    out = {"sigma": None, "method": "spectrum", "misfit": float("nan"), "frequencies": 0, "signal_bins": 0,
           "noise": float("nan"), "reason": ""}
    if length < 8:
        out["reason"] = (f"a spectrum needs at least 8 samples along z and along the coarsely resampled rows "
                         f"(this stack gives {length})")
        return out
    axial = segment_power(stack, 0, length)[1:]
    noise = noise_level(stack)
    out.update(noise=noise, frequencies=int(axial.size),
               signal_bins=int(np.sum(axial > 2 * noise**2)))
    if out["signal_bins"] < MIN_SIGNAL_BINS:
        out["reason"] = (f"the z spectrum stands above the noise at only {out['signal_bins']} frequencies "
                         f"(at least {MIN_SIGNAL_BINS} are needed)")
        return out
    log_axial = np.log(np.maximum(axial, 1e-12))
    unit_noise = np.random.default_rng(0).standard_normal((max(1, 4096 // stack.shape[1]), stack.shape[1], 64))

    def misfit(sigma: float) -> float:
        lateral = 0.0
        for axis in (1, 2):
            degraded = subsample_axis(blur_axis(stack, factor, axis, sigma), factor, axis)
            lateral = lateral + 0.5 * segment_power(degraded, axis, length)[1:]
        # the lateral rows' own noise, blurred and sampled as they are, then the share put back
        blurred_noise = noise**2 * segment_power(subsample_axis(blur_axis(unit_noise, factor, 1, sigma), factor, 1),
                                                 1, length)[1:]
        structure = np.maximum(lateral - blurred_noise, 1e-6 * lateral)
        floor = blurred_noise + noise**2 * (1.0 - np.sum(gaussian_weights(sigma) ** 2))
        return _fit_level(log_axial, structure, floor)

    high = 4.0 * factor
    grid = np.arange(0.0, high + 1e-9, 0.5)
    coarse = [misfit(s) for s in grid]
    best = int(np.argmin(coarse))
    if best in (0, len(grid) - 1):
        out["misfit"] = coarse[best]
        out["reason"] = ("the z columns are no more blurred than the lateral rows" if best == 0 else
                         f"the z columns are more blurred than a blur of {high:g} pixels makes the lateral rows")
        return out
    fit = optimize.minimize_scalar(misfit, bounds=(grid[best - 1], grid[best + 1]), method="bounded",
                                   options={"xatol": 0.01})
    out.update(sigma=round(float(fit.x), 3), misfit=float(fit.fun))
    return out
