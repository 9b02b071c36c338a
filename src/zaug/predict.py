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

from typing import Protocol

import numpy as np

from .errors import InputError
from .progress import part
from .volume import Volume, check_volume


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
        if float(factor) != int(factor):
            raise InputError(f"--factor must be a whole number, got {factor}.")
        factor = int(factor)
        if factor < 2:
            raise InputError(f"--factor must be 2 or more, got {factor}.")
        steps = np.arange(factor) / factor
        inner = (z_in[:-1, None] + np.diff(z_in)[:, None] * steps[None, :]).ravel()
        return np.append(inner, z_in[-1])
    if not np.isfinite(z_spacing) or z_spacing <= 0:
        raise InputError(f"--z-spacing must be a positive number, got {z_spacing}.")
    extent = z_in[-1] - z_in[0]
    n = int(np.floor(extent / z_spacing + 1e-6)) + 1
    if n < 2:
        raise InputError(f"--z-spacing {z_spacing} is larger than the stack's z extent {extent:g}.")
    return z_in[0] + z_spacing * np.arange(n)


def cast_like(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float results to ``dtype``, rounding and clipping to its range for integers."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(data), info.min, info.max).astype(dtype)
    return np.asarray(data).astype(dtype, copy=False)


def keep_acquired(out: np.ndarray, stack, z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
    """Put the acquired planes of ``stack`` into ``out`` (planes at ``z_out``) exactly as measured.

    The methods work in float32, which cannot hold every 32-bit integer or
    float64 value: a plane at an input position is copied, not computed.
    """
    idx = np.clip(np.searchsorted(z_in, z_out), 0, len(z_in) - 1)
    tol = 1e-6 * max(1.0, float(z_in[-1] - z_in[0]))
    hit = np.flatnonzero(np.abs(z_in[idx] - z_out) <= tol)
    if hit.size:
        out[hit] = np.asarray(stack[idx[hit]])
    return out


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
    if z_out is None:
        z_out = output_positions(z_in, factor=factor, z_spacing=z_spacing)
    out = np.empty(volume.data.shape[:-3] + (len(z_out),) + volume.spatial_shape[1:], volume.dtype)
    with part(volume.n_stacks):
        for index, stack in volume.stacks():
            with part(1):
                planes = method.interpolate(np.asarray(stack, dtype=np.float32), z_in, z_out,
                                            pixel_size=volume.voxel_size[1:])
            out[index] = keep_acquired(cast_like(planes, volume.dtype), stack, z_in, z_out)
    return resampled_volume(volume, out, z_out, method.name)


def resampled_volume(volume: Volume, data, z_out: np.ndarray, method_name: str) -> Volume:
    """``volume``'s axes, unit, lateral voxel size and origin around new ``data`` with planes at ``z_out``."""
    spacing = np.diff(z_out)
    uniform = np.allclose(spacing, spacing.mean(), rtol=1e-6, atol=0)
    voxel = (float(spacing.mean()),) + volume.voxel_size[1:]
    metadata = dict(volume.metadata, method=method_name)
    return volume.replace(data=data, voxel_size=voxel, z_positions=None if uniform else z_out,
                          z_origin=float(z_out[0]), metadata=metadata)
