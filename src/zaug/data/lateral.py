"""Lateral training pairs for isotropic restoration (niiv, CARE-isotropic, Self-Net).

The xy planes of a stack are finely sampled and sharp; its xz and yz planes
are coarsely sampled along z and blurred by the longer axial PSF. Degrading an
xy plane along one lateral axis so that it looks like an axial plane gives
(low-res, high-res) pairs from the user's own data; a network learns the
inverse and is then applied to the real xz and yz planes.

Coordinates. A degradation keeps low-res samples at known positions of the
high-res pixel grid (pixel ``j`` has its centre at ``j``):

- average pooling by ``f``: sample ``i`` is the mean over ``[i f, (i + 1) f)``
  in pixel-edge units, so its centre is at ``(i + 0.5) f - 0.5``;
- Gaussian blur then subsampling: sample ``i`` is at ``i f``.

Decoders work in *low-res sample units*: sample ``i`` is at ``u = i``, so
high-res row ``j`` is at ``u = (j - offset) / f`` (:func:`target_rows`). The
same units describe real axial planes: acquired plane ``k`` is at ``u = k``.

Factors are never rounded: non-integer factors are honoured by area-weighted
pooling or by interpolating the blurred plane at positions ``i f``.

Examples
--------
>>> import numpy as np
>>> from zaug.data.lateral import degrade_avgpool, sample_positions
>>> plane = np.arange(12, dtype=np.float32).reshape(6, 2)
>>> degrade_avgpool(plane, 3, axis=0)
array([[2., 3.],
       [8., 9.]], dtype=float32)
>>> sample_positions(6, 3, "avgpool")
array([1., 4.])
>>> degrade_avgpool(plane, 2.5, axis=0).shape
(2, 2)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError, ZaugWarning
from ..predict import cast_like
from ..volume import Volume

DEGRADATIONS = ("avgpool", "gaussian")
#: Percentiles mapped to 0 and 1 before training and restoration.
DEFAULT_PERCENTILES = (0.1, 99.9)


# -- factor and coordinates ---------------------------------------------------
def anisotropy_factor(volume: Volume, factor: float | None = None) -> float:
    """The axial / lateral sampling ratio to undo, as a float (never rounded).

    Parameters
    ----------
    volume : Volume
        The stack; its voxel size gives ``z / mean(y, x)``.
    factor : float, optional
        Use this instead of the voxel size (e.g. when the file has none).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from zaug import Volume
    >>> anisotropy_factor(Volume(np.zeros((3, 4, 4)), (0.15, 0.034, 0.034), "um"))  # doctest: +ELLIPSIS
    4.411764...
    >>> anisotropy_factor(Volume(np.zeros((3, 4, 4))), 2.5)
    2.5
    """
    if factor is None:
        if volume.unit == "pixel" and volume.voxel_size == (1.0, 1.0, 1.0):
            raise InputError("the file gives no voxel size, so the anisotropy is unknown; "
                             "give the voxel size or the anisotropy factor.")
        factor = volume.anisotropy
        if factor < 1.0:
            lateral = 0.5 * (volume.voxel_size[1] + volume.voxel_size[2])
            raise InputError(f"the z step ({volume.voxel_size[0]:g} {volume.unit}) is finer than the lateral pixel "
                             f"size ({lateral:g} {volume.unit}), so there is no coarse axis to restore; check the "
                             "voxel size (--voxel-size) or give the anisotropy factor (--factor).")
    return _check_factor(factor)


def training_factor(volumes: list[Volume], factor: float | None = None) -> float:
    """The anisotropy a restorer learns from several stacks: ``factor``, else the first stack's, with a warning
    naming the stacks whose own differs from it by more than 10% (they are degraded as the first is).

    >>> import numpy as np, warnings
    >>> stacks = [Volume(np.zeros((3, 4, 4)), (z, 0.25, 0.25), "um") for z in (1.0, 2.0)]
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     training_factor(stacks)
    4.0
    >>> print(said[0].message)  # doctest: +NORMALIZE_WHITESPACE
    the training stacks differ in anisotropy (stack 2: 8-fold); all are degraded as the first stack's 4-fold: train
    them separately, or pass --factor.
    """
    first = anisotropy_factor(volumes[0], factor)
    if factor is None:
        others = [f"stack {n}: {vol.anisotropy:.3g}-fold" for n, vol in enumerate(volumes[1:], 2)
                  if not (vol.unit == "pixel" and vol.voxel_size == (1.0, 1.0, 1.0))
                  and abs(np.log(vol.anisotropy / first)) > np.log(1.1)]
        if others:
            warnings.warn(ZaugWarning(f"the training stacks differ in anisotropy ({', '.join(others)}); all are "
                                      f"degraded as the first stack's {first:.3g}-fold: train them separately, or "
                                      "pass --factor."), stacklevel=3)
    return first


def _check_factor(factor: float) -> float:
    factor = float(factor)
    if not np.isfinite(factor) or factor < 1.0:
        raise InputError(f"the anisotropy factor must be a number of 1 or more, got {factor:g}.")
    return factor


def _check_degradation(degradation: str) -> None:
    if degradation not in DEGRADATIONS:
        raise InputError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}.")


def degradation_model(options: dict, default: str) -> tuple[str, float | str | None]:
    """The user's degradation model from training ``options``: ``(degradation, sigma)``.

    ``sigma`` (high-res pixels; ``None``: ``factor / 2``; ``"auto"``: measured
    from the stack by :func:`resolve_sigma`) belongs to the Gaussian model
    only, so it is refused with ``avgpool`` rather than ignored.

    Examples
    --------
    >>> degradation_model({"sigma": 1.5}, "gaussian")
    ('gaussian', 1.5)
    >>> degradation_model({"sigma": "auto"}, "gaussian")
    ('gaussian', 'auto')
    >>> degradation_model({}, "avgpool")
    ('avgpool', None)
    """
    degradation = options.get("degradation") or default
    _check_degradation(degradation)
    sigma = options.get("sigma")
    if sigma is None:
        return degradation, None
    if degradation != "gaussian":
        raise InputError(f"a blur sigma applies to the gaussian degradation only, not to {degradation!r}; "
                         "pass --degradation gaussian or leave out --sigma.")
    if isinstance(sigma, str) and sigma.strip().lower() == "auto":
        return degradation, "auto"
    try:
        sigma = float(sigma)
    except ValueError:
        raise InputError(f"the blur sigma must be a number of pixels or 'auto', got {sigma!r}.") from None
    if not np.isfinite(sigma) or sigma < 0:
        raise InputError(f"the blur sigma must be zero or positive (pixels), got {sigma:g}.")
    return degradation, sigma


def renoise_option(options: dict, degradation: str, sigma: float | str | None) -> bool:
    """Whether the degraded lateral planes get their noise back (:func:`lateral_pairs`).

    ``options["renoise"]`` when given (refused with ``avgpool``: pooling models
    a thick axial sample, whose noise is averaged as well), else on with
    ``sigma`` ``"auto"``.

    >>> renoise_option({}, "gaussian", "auto"), renoise_option({"renoise": False}, "gaussian", "auto")
    (True, False)
    """
    renoise = options.get("renoise")
    if renoise is None:
        return sigma == "auto"
    if renoise and degradation != "gaussian":
        raise InputError(f"adding back the noise applies to the gaussian degradation only, not to {degradation!r}; "
                         "pass --degradation gaussian or leave out --renoise.")
    return bool(renoise)


def resolve_sigma(sigma: float | str | None, volume: Volume | Sequence[Volume], factor: float,
                  advise: bool = False) -> tuple[float | None, dict]:
    """The degradation sigma to train with, and the measurement behind it when ``sigma`` is ``"auto"``.

    ``"auto"`` runs :func:`measure_axial_sigma` on ``volume`` (on each of
    several training stacks, then takes the median of their measurements,
    with a warning where they disagree by more than half); when no stack
    gives a usable estimate the default (``factor / 2``) is used with a
    warning that says why. Numbers pass through. With ``advise``, the default
    (``None``) is checked against the first stack's measurement too, and a
    warning names ``--sigma auto`` when they differ by more than half.

    Returns
    -------
    (float or None, dict)
        The sigma (``None``: ``factor / 2``) and the estimate (empty unless
        ``"auto"``; of several stacks, the median stack's, with ``stacks``:
        each one's sigma, ``None`` where it gave none).
    """
    volumes = [volume] if isinstance(volume, Volume) else list(volume)
    if sigma is None and advise:
        estimate = measure_axial_sigma(volumes[0], factor)
        measured = estimate["sigma"]
        if measured is not None and not 1 / 1.5 <= measured / (0.5 * factor) <= 1.5:
            source = "thin structures" if estimate["method"] == "widths" else "power spectra"
            warnings.warn(f"the stack's {source} measure an axial blur of sigma {measured:.2f} lateral "
                          f"pixels, but the degradation model assumes factor / 2 = {0.5 * factor:.2f}; --sigma auto "
                          "trains with the measured blur, --renoise (on with auto) keeps a noisy stack's noise "
                          "from being sharpened into texture; check the xz views of the output.", stacklevel=2)
    if sigma != "auto":
        return sigma, {}
    estimates = [measure_axial_sigma(v, factor) for v in volumes]
    found = [e for e in estimates if e["sigma"] is not None]
    if not found:
        estimate = estimates[0]
        where = f" (on {estimate['measured_on']}, the clearest)" if estimate.get("measured_on") else ""
        if len(estimates) > 1:
            where = f" (on none of the {len(estimates)} training stacks; on the first{where})"
        warnings.warn(f"--sigma auto{where}: {estimate['reason']}; training with the default sigma "
                      f"{0.5 * factor:.2f} pixels (factor / 2) instead.", stacklevel=2)
        return None, estimate
    if len(estimates) == 1:
        return found[0]["sigma"], found[0]
    return _median_of_stacks(estimates, found)


def _median_of_stacks(estimates: list[dict], found: list[dict]) -> tuple[float, dict]:
    """Several training stacks' blur: the median of their measurements, said where they disagree."""
    sigmas = [e["sigma"] for e in estimates]
    sigma = float(np.median([e["sigma"] for e in found]))
    nearest = min(found, key=lambda e: abs(e["sigma"] - sigma))
    measured = ", ".join(f"stack {i + 1}: {'none' if s is None else f'{s:.2f}'}" for i, s in enumerate(sigmas))
    if max(e["sigma"] for e in found) > 1.5 * min(e["sigma"] for e in found):
        warnings.warn(f"--sigma auto measures different axial blurs on the training stacks ({measured} lateral "
                      f"pixels); training with their median, {sigma:.2f}: stacks from different set-ups restore "
                      "better with a model each.", stacklevel=3)
    elif len(found) < len(estimates):
        warnings.warn(f"--sigma auto measured the axial blur on {len(found)} of {len(estimates)} training stacks "
                      f"({measured}); training with the median, {sigma:.2f} lateral pixels.", stacklevel=3)
    return sigma, dict(nearest, sigma=sigma, stack_sigma=nearest["sigma"], stacks=sigmas,
                       nearest_stack=next(i for i, e in enumerate(estimates) if e is nearest) + 1)


def measure_axial_sigma(volume: Volume, factor: float) -> dict:
    """The stack's axial blur as a degradation sigma: from thin structures' widths, else from power spectra.

    :func:`estimate_axial_sigma` (widths of thin bright structures) comes first:
    it reads the blur where it is seen. Where it declines (no such structures,
    as in electron microscopy or dense tissue, or structures wider across than
    along z), :func:`zaug.data.spectral_blur.estimate_axial_sigma_spectral`
    fits the shape of the z spectrum. The result has ``method`` (``"widths"``
    or ``"spectrum"``); when both decline, ``sigma`` is None and ``reason``
    gives both reasons.
    """
    from .spectral_blur import estimate_axial_sigma_spectral

    volume, where = _clearest_stack(volume)
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # a dim stack's empty medians: said as reasons
        warnings.simplefilter("ignore", RuntimeWarning)
        widths = dict(estimate_axial_sigma(volume, factor), method="widths", measured_on=where)
        if widths["sigma"] is not None:
            return widths
        spectrum = dict(estimate_axial_sigma_spectral(volume, factor), measured_on=where)
    if spectrum["sigma"] is not None:
        return dict(spectrum, widths_reason=widths["reason"])
    return dict(widths, reason=f"{widths['reason']}, and {spectrum['reason']}", spectrum_reason=spectrum["reason"])


def _clearest_stack(volume: Volume) -> tuple[Volume, str]:
    """Of a stack's channels and time points, the one whose structures stand highest above its noise (a
    blank or dim first channel says nothing about the blur), and its name for messages ('' for one stack)."""
    if volume.n_stacks == 1:
        return volume, ""
    index = clearest_stack_index(volume)
    picks = dict(zip(volume.axes[:-3], index))
    return volume.select(channel=picks.get("C"), time=picks.get("T")), volume.stack_name(index)


def clearest_stack_index(volume: Volume, most: int = 16) -> tuple[int, ...]:
    """The (T, C) index of the stack whose structures stand highest above its noise.

    Each stack is judged on a central crop; of a long time series, at most
    ``most`` stacks are read (time points evenly spread, every channel), so
    a lazily read series is not read whole to make a choice.

    >>> import numpy as np
    >>> from zaug import Volume
    >>> data = np.zeros((2, 8, 16, 16), np.float32)
    >>> data[1, :, 4:8, 4:8] = 1.0
    >>> clearest_stack_index(Volume(data, axes="CZYX"))
    (1,)
    """
    if volume.n_stacks == 1:
        return (0,) * (volume.data.ndim - 3)

    def clarity(index) -> float:
        stack = volume.data[index]
        z0, y0, x0 = (max(0, (n - side) // 2) for n, side in zip(stack.shape, (32, 256, 256)))
        crop = np.asarray(stack[z0:z0 + 32, y0:y0 + 256, x0:x0 + 256], dtype=np.float32)
        spread = float(np.percentile(crop, 99.9) - np.median(crop))
        return spread / max(noise_level(crop), 1e-6 * max(spread, 1e-30)) if spread > 0 else 0.0

    lead = dict(zip(volume.axes[:-3], volume.data.shape[:-3]))
    channels = lead.get("C", 1)
    times = lead.get("T", 1)
    picked = np.unique(np.linspace(0, times - 1, max(1, min(times, most // channels))).round().astype(int))
    candidates = [tuple(i for a, i in (("T", t), ("C", c)) if a in lead)
                  for t in picked for c in range(channels)]
    return max(candidates, key=clarity)


def format_sigma_estimate(estimate: dict) -> str:
    """:func:`measure_axial_sigma`'s result in words (:func:`resolve_sigma`'s, of several stacks)."""
    where = f"{estimate['measured_on']}: " if estimate.get("measured_on") else ""
    stacks = estimate.get("stacks") or []
    if len(stacks) < 2:
        return where + _sigma_in_words(estimate)
    each = ", ".join("none" if s is None else f"{s:.2f}" for s in stacks)
    return (f"axial blur measured on each of {len(stacks)} training stacks (degradation sigma {each} lateral "
            f"pixels): trained with their median, {estimate['sigma']:.2f}; stack {estimate.get('nearest_stack', '?')}, "
            "the nearest to it: "
            f"{where}{_sigma_in_words(dict(estimate, sigma=estimate['stack_sigma']))}")


def _sigma_in_words(estimate: dict) -> str:
    if estimate.get("method") == "spectrum":
        return (f"axial blur measured from the power spectra ({estimate['frequencies']} frequencies along z, "
                f"{estimate['signal_bins']} above the noise; log misfit {estimate['misfit']:.3f}): degradation "
                f"sigma {estimate['sigma']:.2f} lateral pixels.")
    unit = estimate.get("unit", "")
    return (f"axial blur measured on {estimate['profiles']} thin structures: median FWHM "
            f"{estimate['axial_fwhm']:.4g} {unit} along z vs {estimate['lateral_fwhm_sampled']:.4g} {unit} "
            f"across (sampled like z); degradation sigma {estimate['sigma']:.2f} lateral pixels.")


def estimate_axial_sigma(volume: Volume, factor: float, *, crop: int = 384, planes: int = 96,
                         min_profiles: int = 20) -> dict:
    """The Gaussian degradation sigma that makes lateral profiles as wide as the stack's axial ones.

    Thin bright structures are as wide along z as their axial PSF makes them;
    along y and x they are as wide as the lateral PSF. Blurring the stack by
    ``sigma`` (lateral pixels) along y, keeping every ``factor``-th row, and
    measuring the profiles along y exactly as along z (:func:`zaug.isotropy.axis_fwhms`,
    same peaks rule, same coarse sampling), then likewise along x, gives a
    median FWHM that grows with ``sigma``; the ``sigma`` at which it equals
    the median axial FWHM is returned (bisection). Self-Net's and niiv's
    degradation model then makes lateral planes as blurred as the axial ones,
    which ``factor / 2`` only guesses. It measures widths, so it assumes the
    structures are as wide along z as across: where they are wider laterally
    (large flat nuclei) the lateral profiles are already at least as wide as
    the axial ones, and no estimate is given.

    Parameters
    ----------
    volume : Volume
        The anisotropic stack (its first channel / time point is measured).
    factor : float
        Axial / lateral sampling ratio.
    crop, planes : int
        Largest lateral window and number of planes measured (central).
    min_profiles : int
        Fewest axial profiles for an estimate.

    Returns
    -------
    dict
        ``sigma`` (lateral pixels, or None with a ``reason``), ``axial_fwhm``
        (median, physical), ``lateral_fwhm_sampled`` (median width of the
        unblurred lateral profiles sampled every ``factor`` pixels),
        ``profiles`` and ``unit``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from zaug import Volume
    >>> spots = np.zeros((64, 64, 64), np.float32)
    >>> spots[tuple(np.random.default_rng(0).integers(6, 58, (3, 40)))] = 1.0
    >>> blurred = ndimage.gaussian_filter(spots, (4.0, 1.0, 1.0))[::4]  # axial sigma 4, then every 4th plane
    >>> est = estimate_axial_sigma(Volume(blurred, (4.0, 1.0, 1.0)), 4.0)
    >>> round(est["sigma"], 1)  # the blur beyond the lateral PSF: sqrt(4**2 - 1**2) = 3.87
    3.9
    """
    from ..isotropy import axis_fwhms

    factor = _check_factor(factor)
    stack = np.asarray(next(iter(volume.stacks()))[1], dtype=np.float32)
    z0 = max(0, (stack.shape[0] - planes) // 2)
    y0, x0 = (max(0, (n - crop) // 2) for n in stack.shape[1:])
    stack = np.ascontiguousarray(stack[z0:z0 + planes, y0:y0 + crop, x0:x0 + crop])
    lateral_px = tuple(float(v) for v in volume.voxel_size[1:])
    voxel = (factor * 0.5 * sum(lateral_px), *lateral_px)  # z as the factor says (it may override the file)
    axial = axis_fwhms(stack, voxel, 0)
    out = {"sigma": None, "axial_fwhm": float(np.median(axial)) if axial.size else float("nan"),
           "lateral_fwhm_sampled": float("nan"), "profiles": int(axial.size), "unit": volume.unit, "reason": ""}
    if axial.size < min_profiles:
        out["reason"] = (f"only {axial.size} thin bright structures could be measured along z "
                         f"(at least {min_profiles} are needed)")
        return out

    def lateral_width(sigma: float) -> float:
        widths = []
        for axis in (1, 2):
            degraded = subsample_axis(blur_axis(stack, factor, axis, sigma), factor, axis)
            v = list(voxel)
            v[axis] *= factor
            widths.append(axis_fwhms(degraded, tuple(v), axis))
        widths = np.concatenate(widths)
        return float(np.median(widths)) if widths.size else float("nan")

    target, low, high = out["axial_fwhm"], 0.0, 4.0 * factor
    out["lateral_fwhm_sampled"] = width0 = lateral_width(0.0)
    if not np.isfinite(width0) or width0 >= target:
        out["reason"] = ("the structures are at least as wide across as along z, so their widths say "
                         "nothing about the axial blur")
        return out
    if lateral_width(high) < target:
        out["reason"] = f"the axial profiles are wider than a blur of {high:g} pixels makes the lateral ones"
        return out
    for _ in range(12):  # to 1e-3 of the range
        mid = 0.5 * (low + high)
        low, high = (mid, high) if lateral_width(mid) < target else (low, mid)
    out["sigma"] = round(0.5 * (low + high), 3)
    return out


def n_samples(n_hr: int, factor: float, degradation: str) -> int:
    """Number of low-res samples a degradation keeps from ``n_hr`` pixels.

    Average pooling keeps whole bins only (``floor(n / f)``); subsampling keeps
    every position ``i f <= n - 1``.
    """
    _check_degradation(degradation)
    eps = 1e-9
    if degradation == "avgpool":
        return int(np.floor(n_hr / factor + eps))
    return int(np.floor((n_hr - 1) / factor + eps)) + 1


def sample_offset(factor: float, degradation: str) -> float:
    """High-res position of the first low-res sample (``(f - 1) / 2`` or 0)."""
    _check_degradation(degradation)
    return 0.5 * (factor - 1.0) if degradation == "avgpool" else 0.0


def sample_positions(n_hr: int, factor: float, degradation: str) -> np.ndarray:
    """High-res pixel positions of the low-res samples of an axis of ``n_hr`` pixels."""
    factor = _check_factor(factor)
    i = np.arange(n_samples(n_hr, factor, degradation), dtype=np.float64)
    return sample_offset(factor, degradation) + i * factor


def target_rows(n_hr: int, factor: float, degradation: str) -> np.ndarray:
    """Positions of the ``n_hr`` high-res rows in low-res sample units.

    Examples
    --------
    >>> target_rows(4, 2, "avgpool")
    array([-0.25,  0.25,  0.75,  1.25])
    >>> target_rows(3, 2, "gaussian")
    array([0. , 0.5, 1. ])
    """
    factor = _check_factor(factor)
    return (np.arange(n_hr, dtype=np.float64) - sample_offset(factor, degradation)) / factor


# -- degradations of one plane along one axis ---------------------------------
def degrade_avgpool(plane: np.ndarray, factor: float, axis: int = 0) -> np.ndarray:
    """Average pooling by ``factor`` along ``axis`` (area-weighted when non-integer).

    Bin ``i`` covers ``[i f, (i + 1) f)`` of the pixel edges; pixels cut by a
    bin edge count with the fraction inside. Trailing pixels that do not fill a
    whole bin are dropped. The mean intensity of the covered part is kept.

    Parameters
    ----------
    plane : numpy.ndarray
        2D (or any-D) array.
    factor : float
        Pooling factor, 1 or more.
    axis : int
        Axis to pool.

    Returns
    -------
    numpy.ndarray
        float32, ``floor(n / factor)`` samples along ``axis``.
    """
    factor = _check_factor(factor)
    data = np.moveaxis(np.asarray(plane, dtype=np.float64), axis, 0)
    n_out = n_samples(data.shape[0], factor, "avgpool")
    if n_out < 1:
        raise InputError(f"an axis of {data.shape[0]} pixels is shorter than the pooling factor {factor:g}.")
    # Integral of the piecewise-constant signal at the bin edges, then differences.
    cum = np.concatenate([np.zeros((1,) + data.shape[1:]), np.cumsum(data, axis=0)])
    integral = _linear_at(cum, np.arange(n_out + 1) * factor)
    pooled = np.diff(integral, axis=0) / factor
    return np.moveaxis(pooled, 0, axis).astype(np.float32)


def degrade_gaussian(plane: np.ndarray, factor: float, axis: int = 0,
                     sigma: float | None = None) -> np.ndarray:
    """Gaussian PSF blur along ``axis``, then one sample every ``factor`` pixels.

    Parameters
    ----------
    plane : numpy.ndarray
        2D (or any-D) array.
    factor : float
        Sampling step, 1 or more; non-integer steps are sampled by linear
        interpolation of the blurred plane at positions ``i * factor``.
    axis : int
        Axis to degrade.
    sigma : float, optional
        Blur sigma in high-res pixels (default ``factor / 2``).

    Returns
    -------
    numpy.ndarray
        float32, ``floor((n - 1) / factor) + 1`` samples along ``axis``.
    """
    factor = _check_factor(factor)
    blurred = blur_axis(plane, factor, axis, sigma)
    return subsample_axis(blurred, factor, axis)


def blur_axis(plane: np.ndarray, factor: float, axis: int = 0, sigma: float | None = None) -> np.ndarray:
    """The blur step of :func:`degrade_gaussian` (float32, reflect boundary)."""
    sigma = 0.5 * factor if sigma is None else float(sigma)
    data = np.asarray(plane, dtype=np.float32)
    return ndimage.gaussian_filter1d(data, sigma, axis=axis, mode="reflect") if sigma > 0 else data


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The taps of :func:`blur_axis`'s kernel (scipy's ``gaussian_filter1d``, summing to 1).

    >>> round(float(np.sum(gaussian_weights(2.0) ** 2)), 3)  # white noise keeps this share of its variance
    0.141
    """
    if sigma <= 0:
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def noise_level(stack: np.ndarray, planes: int = 8) -> float:
    """Noise standard deviation of a stack's voxels: the mean of skimage's wavelet estimate on a few xy planes."""
    from skimage.restoration import estimate_sigma

    index = np.unique(np.linspace(0, len(stack) - 1, min(planes, len(stack))).round().astype(int))
    return float(np.mean([estimate_sigma(np.asarray(stack[i], dtype=np.float64)) for i in index]))


def subsample_axis(data: np.ndarray, factor: float, axis: int = 0) -> np.ndarray:
    """The sampling step of :func:`degrade_gaussian`: values at ``i * factor`` along ``axis``."""
    moved = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    positions = sample_positions(moved.shape[0], factor, "gaussian")
    return np.moveaxis(_linear_at(moved, positions), 0, axis).astype(np.float32)


def degrade(plane: np.ndarray, factor: float, axis: int = 0, degradation: str = "avgpool",
            sigma: float | None = None) -> np.ndarray:
    """Dispatch to :func:`degrade_avgpool` or :func:`degrade_gaussian`."""
    _check_degradation(degradation)
    if degradation == "avgpool":
        return degrade_avgpool(plane, factor, axis)
    return degrade_gaussian(plane, factor, axis, sigma)


def _linear_at(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``data`` along axis 0 at fractional ``positions``."""
    positions = np.clip(np.asarray(positions, dtype=np.float64), 0, data.shape[0] - 1)
    lo = np.minimum(np.floor(positions).astype(int), max(data.shape[0] - 2, 0))
    hi = np.minimum(lo + 1, data.shape[0] - 1)
    w = (positions - lo).reshape((-1,) + (1,) * (data.ndim - 1))
    return data[lo] * (1 - w) + data[hi] * w


# -- normalisation --------------------------------------------------------------
def percentile_range(data: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES
                     ) -> tuple[float, float]:
    """Intensities mapped to 0 and 1 (a unit span when the image is flat)."""
    lo, hi = np.percentile(np.asarray(data, dtype=np.float32), percentiles)
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def normalise(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(data - lo) / (hi - lo)`` in float32, not clipped (bright tails are kept)."""
    return (np.asarray(data, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)


# -- training pairs ---------------------------------------------------------------
def lateral_pairs(volume: Volume, factor: float | None, degradation: str = "avgpool",
                  patch: int | tuple[int, int] = 64, rng: np.random.Generator | int | None = None,
                  n: int = 16, candidates: int = 4, sigma: float | None = None,
                  percentiles: tuple[float, float] = DEFAULT_PERCENTILES, renoise: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (degraded, original) patches of xy planes.

    Each patch is cut from a random xy plane, degraded along y or x at random
    and oriented so that the degraded axis is axis 0 (as z is in an xz plane).
    Of ``candidates`` random draws the brightest (mean intensity) is kept, so
    patches favour the foreground; random flips augment them. Each (T, C)
    stack is normalised with its own percentiles to about [0, 1].

    Parameters
    ----------
    volume : Volume
        The user's stack (its xy planes are the targets).
    factor : float or None
        Anisotropy to simulate; None: from the voxel size (:func:`anisotropy_factor`).
    degradation : {'avgpool', 'gaussian'}
        niiv uses average pooling.
    patch : int or (int, int)
        High-res patch size ``(h, w)``: ``h`` along the degraded axis.
    rng : numpy.random.Generator or int, optional
        Random source (or seed).
    n : int
        Number of pairs.
    candidates : int
        Random draws per pair; the brightest is kept.
    sigma : float, optional
        Gaussian blur sigma in pixels (``gaussian`` only; default ``factor / 2``).
    percentiles : (float, float)
        Normalisation percentiles.
    renoise : bool
        ``gaussian`` only: add back the noise the blur removed. The optics blur
        the real axial profile before the camera adds noise, so axial samples
        are as noisy as any voxel; blurring a lateral plane also averages its
        noise away, and a network trained on such smooth inputs reads the noise
        of real axial planes as structure to sharpen. White noise of variance
        ``s^2 (1 - sum(k^2))`` (``k`` the blur kernel, ``s`` the plane's noise
        level by :func:`noise_level`) restores the voxel noise.

    Returns
    -------
    low_res : numpy.ndarray
        ``(n, h_lr, w)`` float32.
    high_res : numpy.ndarray
        ``(n, h, w)`` float32.
    coords : numpy.ndarray
        ``(h,)`` float32: the high-res rows in low-res sample units
        (:func:`target_rows`), the same for every pair; columns are unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from zaug import Volume
    >>> vol = Volume(np.random.default_rng(0).random((4, 32, 40)), (3.0, 1.0, 1.0))
    >>> lr, hr, rows = lateral_pairs(vol, None, "avgpool", patch=(12, 16), rng=0, n=5)
    >>> lr.shape, hr.shape, rows.shape
    ((5, 4, 16), (5, 12, 16), (12,))
    """
    factor = anisotropy_factor(volume, factor)
    _check_degradation(degradation)
    h, w = (patch, patch) if np.isscalar(patch) else (int(patch[0]), int(patch[1]))
    ny, nx = volume.spatial_shape[1:]
    if max(h, w) > min(ny, nx):
        raise InputError(f"training patches of {h}x{w} pixels do not fit in {ny}x{nx} planes; use a smaller patch.")
    if n_samples(h, factor, degradation) < 2:
        raise InputError(f"patches of {h} pixels keep fewer than 2 samples at factor {factor:g}; use larger patches.")
    rng = np.random.default_rng(rng)
    stacks = [normalise(s, *percentile_range(s, percentiles))
              for s in (np.asarray(s) for _, s in volume.stacks())]
    noise = [noise_level(s) if renoise and degradation == "gaussian" else 0.0 for s in stacks]
    low, high = [], []
    for _ in range(n):
        crop, axis, plane, s = _best_crop(stacks, (h, w), rng, candidates)
        lr, hr = _degrade_crop(plane, crop, axis, factor, degradation, sigma, rng, noise[s])
        low.append(lr)
        high.append(hr)
    rows = target_rows(h, factor, degradation).astype(np.float32)
    return np.stack(low), np.stack(high), rows


def _best_crop(stacks: list[np.ndarray], size: tuple[int, int], rng: np.random.Generator,
               candidates: int) -> tuple[tuple[slice, slice], int, np.ndarray, int]:
    """The brightest of ``candidates`` random crops (window, degraded axis, plane, index of its stack)."""
    best, best_mean = None, -np.inf
    for _ in range(max(1, candidates)):
        index = int(rng.integers(len(stacks)))
        plane = stacks[index][rng.integers(stacks[index].shape[0])]
        axis = int(rng.integers(2))
        shape = size if axis == 0 else size[::-1]  # h along the degraded axis
        y0 = rng.integers(plane.shape[0] - shape[0] + 1)
        x0 = rng.integers(plane.shape[1] - shape[1] + 1)
        crop = (slice(y0, y0 + shape[0]), slice(x0, x0 + shape[1]))
        mean = float(plane[crop].mean())
        if mean > best_mean:
            best, best_mean = (crop, axis, plane, index), mean
    return best


def _degrade_crop(plane: np.ndarray, crop: tuple[slice, slice], axis: int, factor: float,
                  degradation: str, sigma: float | None, rng: np.random.Generator, noise: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    # Blur the whole plane so the crop has no artificial border; pooling needs no context.
    source = blur_axis(plane, factor, axis, sigma) if degradation == "gaussian" else plane
    hr, src = plane[crop], source[crop]
    if noise > 0:
        lost = 1.0 - float(np.sum(gaussian_weights(0.5 * factor if sigma is None else sigma) ** 2))
        src = src + rng.normal(0.0, noise * np.sqrt(max(lost, 0.0)), src.shape).astype(np.float32)
    if axis == 1:
        hr, src = hr.T, src.T
    # Flip before degrading so low-res samples stay where target_rows says.
    for ax in (0, 1):
        if rng.random() < 0.5:
            hr, src = np.flip(hr, ax), np.flip(src, ax)
    lr = degrade_avgpool(src, factor, 0) if degradation == "avgpool" else subsample_axis(src, factor, 0)
    return lr, np.ascontiguousarray(hr, dtype=np.float32)


# -- whole-stack simulation -------------------------------------------------------
def simulate_anisotropy(volume: Volume, factor: float, degradation: str = "avgpool",
                        sigma: float | None = None) -> Volume:
    """Make a finely sampled stack look like an anisotropic acquisition.

    Average pooling (area-weighted for non-integer factors) or a Gaussian blur
    along z (sigma ``factor / 2`` planes by default) followed by keeping the
    planes at ``i * factor``. The z voxel size is multiplied by ``factor``.

    Parameters
    ----------
    volume : Volume
        Uniformly sampled stack (any dtype, T/C stacks processed separately).
    factor : float
        Simulated anisotropy, 1 or more.
    degradation : {'avgpool', 'gaussian'}
    sigma : float, optional
        Gaussian sigma in planes (``gaussian`` only).

    Returns
    -------
    Volume
        Same dtype; ``metadata['z_sample_positions']`` holds the position of
        every kept sample in the original plane index grid, and ``z_origin``
        the matching physical position.

    Examples
    --------
    >>> import numpy as np
    >>> from zaug import Volume
    >>> vol = Volume(np.ones((12, 8, 8), np.uint8), (0.5, 0.5, 0.5), "um")
    >>> sim = simulate_anisotropy(vol, 4)
    >>> sim.data.shape, sim.voxel_size, sim.metadata["z_sample_positions"]
    ((3, 8, 8), (2.0, 0.5, 0.5), [1.5, 5.5, 9.5])
    """
    factor = _check_factor(factor)
    _check_degradation(degradation)
    if not volume.is_uniform:
        raise InputError("simulating anisotropy needs evenly spaced planes.")
    positions = sample_positions(volume.nz, factor, degradation)
    if len(positions) < 2:
        raise InputError(f"a stack of {volume.nz} planes keeps fewer than 2 planes at factor {factor:g}.")
    out = np.empty(volume.data.shape[:-3] + (len(positions),) + volume.spatial_shape[1:], volume.dtype)
    for index, stack in volume.stacks():
        out[index] = cast_like(degrade(np.asarray(stack), factor, 0, degradation, sigma), volume.dtype)
    z0 = volume.z_coords()[0] + positions[0] * volume.voxel_size[0]
    metadata = dict(volume.metadata, z_sample_positions=[float(p) for p in positions],
                    simulated_factor=factor, degradation=degradation)
    return volume.replace(data=out, voxel_size=(volume.voxel_size[0] * factor,) + volume.voxel_size[1:],
                          z_positions=None, z_origin=float(z0), metadata=metadata)


def split_lateral_validation(volumes: list[Volume]) -> tuple[list[Volume], Volume, list[int]]:
    """Hold out a block of xy planes of the first stack for validation (never trained on)."""
    first = volumes[0]
    n = first.nz
    n_val = max(1, int(round(0.15 * n)))
    if n - n_val < 1:
        raise InputError(f"the stack has {n} planes: too few to train on some and validate on others.")
    start = (n - n_val) // 2
    val_idx = list(range(start, start + n_val))
    keep = [i for i in range(n) if i not in val_idx]
    train = [first.replace(data=np.asarray(first.data)[..., keep, :, :], z_positions=None)] + list(volumes[1:])
    val = first.replace(data=np.asarray(first.data)[..., val_idx, :, :], z_positions=None)
    return train, val, val_idx
