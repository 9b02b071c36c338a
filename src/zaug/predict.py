"""Upsampling a volume along z with any method, keeping dtype and voxel size.

A *z-interpolator* is any object with ``name`` and
``interpolate(stack, z_in, z_out) -> stack`` working on float32 ZYX arrays:
the classical methods, and trained models once loaded. This module turns
one into a whole-volume operation: output plane positions from a factor or a
target spacing, per time point and channel, cast back to the input's dtype and
range, with the new voxel size.

Examples
--------
>>> import numpy as np
>>> from zaug import Volume
>>> from zaug.predict import upsample_z
>>> from zaug.classic import ClassicalInterpolator
>>> vol = Volume(np.random.default_rng(0).integers(0, 255, (5, 16, 16), dtype=np.uint8), (1.0, 0.25, 0.25), "um")
>>> out = upsample_z(vol, ClassicalInterpolator("linear"), factor=4)
>>> out.data.shape, out.data.dtype, out.voxel_size
((17, 16, 16), dtype('uint8'), (0.25, 0.25, 0.25))
"""

from __future__ import annotations

import os
import warnings
from typing import Protocol

import numpy as np

from .errors import InputError, ZaugWarning
from .progress import part
from .volume import Volume, check_volume, position_tolerance, z_positions_problem


class ZInterpolator(Protocol):
    """What :func:`upsample_z` needs of a method."""

    name: str

    def interpolate(self, stack: np.ndarray, z_in: np.ndarray, z_out: np.ndarray,
                    pixel_size: tuple[float, float] | None = None) -> np.ndarray:
        """Planes at ``z_out`` from a float32 ZYX ``stack`` whose planes lie at ``z_in``.

        ``pixel_size`` is the stack's (y, x) pixel size in the unit of ``z_in``,
        for methods that compare axial and lateral distances.
        """
        ...


def output_positions(z_in: np.ndarray, factor: int | None = None,
                     z_spacing: float | None = None) -> np.ndarray:
    """Positions of the output planes.

    Parameters
    ----------
    z_in : numpy.ndarray
        Positions of the input planes (uniform or not).
    factor : int, optional
        Insert ``factor - 1`` evenly spaced planes between every pair:
        N planes become ``(N - 1) * factor + 1``.
    z_spacing : float, optional
        A uniform grid with this spacing from the first to the last plane.

    Returns
    -------
    numpy.ndarray
    """
    if (factor is None) == (z_spacing is None):
        raise InputError("give exactly one of --factor and --z-spacing.")
    z_in = np.asarray(z_in, dtype=np.float64)
    if factor is not None:
        if not np.isfinite(factor) or float(factor) != int(factor):
            raise InputError(f"--factor must be a whole number, got {factor}.")
        factor = int(factor)
        if factor < 2:
            raise InputError(f"--factor must be 2 or more, got {factor}.")
        if (len(z_in) - 1) * factor + 1 > MAX_OUTPUT_PLANES:
            raise InputError(f"--factor {factor} would make {(len(z_in) - 1) * factor + 1:,} planes of "
                             f"{len(z_in)} (at most {MAX_OUTPUT_PLANES:,}).")
        steps = np.arange(factor) / factor
        inner = (z_in[:-1, None] + np.diff(z_in)[:, None] * steps[None, :]).ravel()
        return np.append(inner, z_in[-1])
    if not np.isfinite(z_spacing) or z_spacing <= 0:
        raise InputError(f"--z-spacing must be a positive number, got {z_spacing}.")
    extent = z_in[-1] - z_in[0]
    n = int(np.floor(extent / z_spacing + 1e-6)) + 1
    if n < 2:
        raise InputError(f"--z-spacing {z_spacing} is larger than the stack's z extent {extent:g}.")
    if n > MAX_OUTPUT_PLANES:
        raise InputError(f"--z-spacing {z_spacing:g} would make {n:,} planes of the stack's z extent {extent:g} "
                         f"(at most {MAX_OUTPUT_PLANES:,}); is it in the voxel size's unit?")
    # the 1e-6 of slack above can put the last step a rounding error past the last plane (0.1 * 12 > 0.3 * 4)
    return np.minimum(z_in[0] + z_spacing * np.arange(n), z_in[-1])


#: more output planes than any microscope stack needs: a --z-spacing in the wrong unit, say
MAX_OUTPUT_PLANES = 100_000


def warn_about_spacing(z_in: np.ndarray, z_out: np.ndarray, z_spacing: float | None, unit: str) -> None:
    """Say what a ``z_spacing`` drops: acquired planes when it is coarser than the stack's spacing, and the
    last plane when the stack's extent is not a whole number of steps."""
    if z_spacing is None:
        return
    mean = float(np.mean(np.diff(z_in)))
    if z_spacing > mean * (1 + 1e-6):
        warnings.warn(ZaugWarning(f"the z spacing asked for ({z_spacing:g} {unit}) is coarser than the input's "
                                  f"({mean:g}): the output has {len(z_out)} planes from {len(z_in)}."), stacklevel=3)
    tol = position_tolerance(z_in)
    if z_out[-1] < z_in[-1] - tol:
        warnings.warn(ZaugWarning(f"planes every {z_spacing:g} {unit} from the first end at {z_out[-1]:g}, short of "
                                  f"the last input plane at {z_in[-1]:g} (the stack's extent is not a whole number "
                                  "of steps)."), stacklevel=3)


def cast_like(data: np.ndarray, dtype: np.dtype, out: np.ndarray | None = None) -> np.ndarray:
    """Cast float results to ``dtype``, rounding and clipping to its range for integers.

    Works through ``data`` a few million values at a time, so the float64 it
    rounds in never holds more than that; ``out`` (of ``data``'s shape and
    ``dtype``) receives the result instead of a new array.

    >>> cast_like(np.array([-3.0, 1.5, 300.0], np.float32), np.uint8).tolist()
    [0, 2, 255]
    """
    data, dtype = np.asarray(data), np.dtype(dtype)
    if data.ndim == 0 or (out is None and data.dtype == dtype and dtype.kind == "f"):  # one value; nothing to do
        if out is None:
            return _cast(data, dtype)
        out[...] = _cast(data, dtype)
        return out
    if out is None:
        out = np.empty(data.shape, dtype)
    rows = max(1, CAST_VALUES // max(1, int(np.prod(data.shape[1:]))))
    for start in range(0, len(data), rows):
        out[start:start + rows] = _cast(data[start:start + rows], dtype)
    return out


#: Values cast at a time by :func:`cast_like` (32 MB of float64).
CAST_VALUES = 1 << 22


def _cast(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        # in float64: float32 rounds 2**31 - 1 up to 2**31, which the cast wraps to the bottom of the range
        info = np.iinfo(dtype)
        rounded = np.rint(np.asarray(data, dtype=np.float64))
        top = float(info.max) if float(info.max) <= info.max else float(np.nextafter(float(info.max), 0.0))
        out = np.clip(rounded, info.min, top).astype(dtype)
        if top < info.max:  # 64 bits: float64 holds no value between top and the maximum
            out[rounded >= float(info.max)] = info.max
        return out
    if np.issubdtype(dtype, np.floating) and data.dtype.kind == "f" and data.dtype.itemsize > dtype.itemsize:
        largest = float(np.finfo(dtype).max)  # narrowing: an overshoot beyond float16's range would become inf
        return np.clip(data, -largest, largest).astype(dtype, copy=False)
    return data.astype(dtype, copy=False)


def keep_acquired(out: np.ndarray, stack, z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
    """Put the acquired planes of ``stack`` into ``out`` (planes at ``z_out``) exactly as measured.

    The methods work in float32, which cannot hold every 32-bit integer or
    float64 value: a plane at an input position is copied, not computed.
    """
    idx, at = acquired_planes(z_in, z_out)
    hit = np.flatnonzero(at)
    if hit.size:
        out[hit] = np.asarray(stack[idx[hit]])
    return out


def acquired_planes(z_in: np.ndarray, z_out: np.ndarray,
                    tol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each position of ``z_out``: the nearest plane of ``z_in``, and whether it lies there, within ``tol``
    (default :func:`~zaug.volume.position_tolerance` of ``z_in``): an acquired plane.

    >>> acquired_planes(np.array([0.0, 2.0]), np.array([0.0, 1.0, 2.0000000001]))[1].tolist()
    [True, False, True]
    """
    # the nearer of the planes either side: a position rounded a hair above a plane (0.30000000000000004)
    # is that plane too
    z_in, z_out = np.asarray(z_in, np.float64), np.asarray(z_out, np.float64)
    idx = np.clip(np.searchsorted(z_in, z_out), 1, len(z_in) - 1)
    idx = np.where(np.abs(z_in[idx - 1] - z_out) <= np.abs(z_in[idx] - z_out), idx - 1, idx)
    tol = position_tolerance(z_in) if tol is None else tol
    return idx, np.abs(z_in[idx] - z_out) <= tol


def as_z_interpolator(method) -> ZInterpolator:
    """``method``, a method name or model folder resolved (:func:`zaug.methods.resolve`), checked to be one
    that interpolates planes (a restoration model goes through :func:`zaug.restore.restore_with`)."""
    if isinstance(method, str):
        from .methods import resolve

        method = resolve(method)
    if not hasattr(method, "interpolate"):
        restores = hasattr(method, "restore_volume") or hasattr(method, "restore_planes")
        hint = ("it restores volumes: use zaug.restore.restore_with(volume, model)" if restores
                else "give a method name, a model folder or a loaded ZAugNet model")
        raise InputError(f"{type(method).__name__} does not interpolate planes along z; {hint}.")
    return method


def upsample_z(volume: Volume, method: ZInterpolator, factor: int | None = None,
               z_spacing: float | None = None, z_out: np.ndarray | None = None) -> Volume:
    """Resample ``volume`` along z with ``method``.

    Parameters
    ----------
    volume : Volume
        Input (any dtype; T and C axes processed one stack at a time).
    method : ZInterpolator or str
        A classical interpolator or a loaded model, or the name of one
        (``"cubic"``) or its model folder.
    factor, z_spacing : optional
        See :func:`output_positions`.
    z_out : numpy.ndarray, optional
        Explicit output positions instead of ``factor``/``z_spacing``.

    Returns
    -------
    Volume
        Same dtype, axes and lateral voxel size; z voxel size (and positions
        when not uniform) updated.
    """
    check_volume(volume)
    method = as_z_interpolator(method)
    z_in = volume.z_coords()
    z_out = output_positions(z_in, factor=factor, z_spacing=z_spacing) if z_out is None else checked_z_out(z_in, z_out)
    warn_about_spacing(z_in, z_out, z_spacing, volume.unit)
    if hasattr(method, "input_unit"):  # a model compares z spacings with its training stack's, in one unit
        method.input_unit = volume.unit
    from .classic import ClassicalInterpolator

    shape = volume.data.shape[:-3] + (len(z_out),) + volume.spatial_shape[1:]
    # a learned method also holds one stack's new planes in float32
    check_fits_in_memory(shape, volume.dtype, len(z_in), 0 if isinstance(method, ClassicalInterpolator) else
                         4 * len(z_out) * int(np.prod(volume.spatial_shape[1:])))
    out = np.empty(shape, volume.dtype)

    with part(volume.n_stacks):
        for index, stack in volume.stacks():
            target = out[index]
            with part(1):
                if isinstance(method, ClassicalInterpolator):
                    interpolate_in_bands(method, stack, z_in, z_out, target)
                else:
                    planes = method.interpolate(np.asarray(stack, dtype=np.float32), z_in, z_out,
                                                pixel_size=volume.voxel_size[1:])
                    cast_like(planes, volume.dtype, out=target)
                    del planes
            keep_acquired(target, stack, z_in, z_out)
    return resampled_volume(volume, out, z_out, method)


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says (None elsewhere)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(shape: tuple[int, ...], dtype, n_in: int, extra_bytes: int = 0) -> None:
    """Refuse, before any work, an output held whole that is larger than this machine's memory (a
    ``--z-spacing`` in the wrong unit made 46,000 planes and ran until killed)."""
    need = int(np.prod(shape)) * np.dtype(dtype).itemsize + extra_bytes
    memory = physical_memory()
    if memory and need > memory:
        size = lambda n: f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"  # noqa: E731
        raise InputError(f"the output would hold {shape[-3]:,} planes from {n_in:,} and take {size(need)}, "
                         f"more than this machine's {size(memory)} of memory; check --z-spacing (and its "
                         "unit), or write a .zarr output with --tile, which holds a few tiles at a time.")


#: Output voxels a classical interpolation computes at a time, in float32 (16 MB).
BAND_VOXELS = 1 << 22


def interpolate_in_bands(method, stack, z_in: np.ndarray, z_out: np.ndarray, target: np.ndarray) -> None:
    """A classical method into ``target``, a band of rows at a time: each (y, x) column is interpolated on its
    own, so the bands make the whole stack's result, without float32 copies of the whole input and output
    (a 100 x 1024 x 1024 uint16 stack doubled took 23 times its size in memory)."""
    rows = max(1, BAND_VOXELS // (max(len(z_in), len(z_out)) * stack.shape[2]))
    for start in range(0, stack.shape[1], rows):
        with warnings.catch_warnings():
            if start:  # the first band said what the spacing makes every band say
                warnings.simplefilter("ignore")
            band = method.interpolate(np.asarray(stack[:, start:start + rows], dtype=np.float32), z_in, z_out)
        cast_like(band, target.dtype, out=target[:, start:start + rows])


def checked_z_out(z_in: np.ndarray, z_out) -> np.ndarray:
    """Output positions given by the caller: at least two, finite, increasing, within the stack (no method
    extrapolates).

    >>> checked_z_out(np.array([0.0, 1.0, 2.0]), [0.5, 2.5])
    Traceback (most recent call last):
    ...
    zaug.errors.InputError: the output z positions must lie within the stack's planes (0 to 2); 2.5 does not.
    """
    z_out = np.asarray(z_out, dtype=np.float64).ravel()
    if len(z_out) < 2:
        raise InputError(f"give at least two output z positions, got {len(z_out)}.")
    problem = z_positions_problem(z_out, len(z_out))
    if problem:
        raise InputError(f"the output z positions {problem}; they must be finite and strictly increasing.")
    tol = position_tolerance(z_in, rel=1e-9)
    outside = z_out[(z_out < z_in[0] - tol) | (z_out > z_in[-1] + tol)]
    if len(outside):
        raise InputError(f"the output z positions must lie within the stack's planes ({z_in[0]:g} to "
                         f"{z_in[-1]:g}); {outside[0]:g} does not.")
    return z_out


def resampled_volume(volume: Volume, data, z_out: np.ndarray, method) -> Volume:
    """``volume``'s axes, unit, lateral voxel size and origin around new ``data`` with planes at ``z_out``,
    made by ``method`` (a name or a loaded model), which the output's record says (:mod:`zaug.provenance`)."""
    from .provenance import after_step

    spacing = np.diff(z_out)
    uniform = np.allclose(spacing, spacing.mean(), rtol=1e-6, atol=0)
    voxel = (float(spacing.mean()),) + volume.voxel_size[1:]
    # a restorer's tiles (zaug.restore.RestorationTiles) change every plane, the acquired ones too
    operation = "interpolation" if getattr(method, "keeps_acquired", True) else "restoration"
    return volume.replace(data=data, voxel_size=voxel, z_positions=None if uniform else z_out,
                          z_origin=float(z_out[0]), metadata=after_step(volume, z_out, operation, method))


def match_noise(output: Volume, acquired: Volume, seed: int = 0) -> Volume:
    """``output`` with white noise added to its new planes, as much as the acquired planes beside them carry.

    A method that removes noise (ZAugNet; interpolation in part: the mean of
    two noisy planes keeps half their noise variance) makes new planes
    smoother than the acquired ones: bands in an xz view, and a threshold
    that segments the two kinds of plane differently. Each new plane gets
    Gaussian noise of variance ``max(0, s_acquired**2 - s_new**2)``, ``s`` the
    plane's noise level by skimage's wavelet estimate and ``s_acquired``
    interpolated between the acquired planes either side. One level per plane:
    noise that grows with the signal is matched on average only. Planes at
    acquired positions are left as they are. What it costs in PSNR against the
    true planes is the noise added (README, "Noise matching").

    Parameters
    ----------
    output : Volume
        A prediction of :func:`upsample_z` (in memory).
    acquired : Volume
        Its input: the acquired planes.
    seed : int
        Seed of the noise.

    Returns
    -------
    Volume
        ``output`` with new data, in its dtype.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> vol = Volume(rng.normal(100, 5, (3, 64, 64)).astype(np.float32), (2.0, 0.5, 0.5))
    >>> out = match_noise(upsample_z(vol, "linear", factor=2), vol)
    >>> bool(abs(out.data[1].std() - 5) < 0.5)  # the interpolated plane had 5 / sqrt(2)
    True
    """
    from skimage.restoration import estimate_sigma

    if not isinstance(output.data, np.ndarray) or not isinstance(acquired.data, np.ndarray):
        raise InputError("noise matching needs the stack in memory; leave out --tile, --tile-planes and "
                         "--scheduler (and read OME-Zarr into memory).")
    z_in, z_out = acquired.z_coords(), output.z_coords()
    right = np.clip(np.searchsorted(z_in, z_out), 1, len(z_in) - 1)
    t = np.clip((z_out - z_in[right - 1]) / (z_in[right] - z_in[right - 1]), 0.0, 1.0)
    new = ~acquired_planes(z_in, z_out)[1]
    rng = np.random.default_rng(seed)
    data = np.array(output.data, copy=True)

    def level(plane) -> float:  # a blank or tiny plane: no estimate (NaN), so no noise added; skimage's words hidden
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(estimate_sigma(np.asarray(plane, np.float64)))

    for index, stack in output.stacks():
        sigma_in = np.array([level(p) for p in acquired.data[index]])
        for n in np.flatnonzero(new):
            target = (1 - t[n]) * sigma_in[right[n] - 1] ** 2 + t[n] * sigma_in[right[n]] ** 2
            extra = np.sqrt(max(0.0, target - level(stack[n]) ** 2))
            plane = np.asarray(stack[n], np.float64) + rng.normal(0.0, extra, stack[n].shape)
            data[index][n] = cast_like(plane, output.dtype)
    from .provenance import noise_matched

    return output.replace(data=data, metadata=noise_matched(output.metadata))
