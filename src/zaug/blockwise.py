"""Z-upsampling of volumes larger than memory, tile by tile, with dask.

The volume is cut laterally into tiles, and, where a tile of every plane
would take more than about 256 MiB (stacks of many planes), along z too.
Each tile, with the lateral margin and the planes each side that the method
needs for context, is upsampled on its own and cropped back. Memory then
holds a few tiles at a time, and the tiles can run on the workers of a dask
cluster. State that must be the same
for every tile (ZAugNet's calibration weights, the intensity percentiles of a
restoration) is measured once per stack, on a central crop (512 x 512 pixels,
256 planes), before the tiles are cut. Restoration models (niiv, Self-Net, RESIN) take part through
:class:`zaug.restore.RestorationTiles`.

The result is a lazy :class:`~zaug.volume.Volume`: nothing is computed until
it is written (:func:`zaug.io.write_volume` streams it into an OME-Zarr store)
or computed. With a ``dask.distributed.Client`` active, the tiles run on its
workers.

Examples
--------
>>> import numpy as np
>>> from zaug import Volume
>>> from zaug.blockwise import upsample_z_blockwise
>>> from zaug.classic import ClassicalInterpolator
>>> vol = Volume(np.arange(5 * 40 * 40, dtype=np.uint16).reshape(5, 40, 40), (1.0, 0.25, 0.25), "um")
>>> out = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), factor=2, tile=16)
>>> out.data.shape, out.data.chunksize, out.voxel_size
((9, 40, 40), (9, 16, 16), (0.5, 0.25, 0.25))
>>> int(out.data[1, 0, 0].compute())  # half-way between planes 0 and 1
800
"""

from __future__ import annotations

import uuid
import warnings

import dask
import dask.array as da
import numpy as np

from .classic import CUBIC_REACH, ClassicalInterpolator
from .errors import InputError, ZaugWarning
from .predict import (ZInterpolator, as_z_interpolator, cast_like, checked_z_out, interpolate_in_bands, keep_acquired,
                      output_positions, resampled_volume, warn_about_spacing)
from .volume import Volume, check_volume, position_tolerance

SAMPLE_SIDE = 512  # lateral size of the central crop on which per-stack state is measured
SAMPLE_PLANES = 256  # and its planes, at most (a taller stack's central ones)
DEFAULT_TILE = 512
# a tile whose float32 input and output planes take more than this is cut along z as well (the tile's
# copies and the method's work take about as much again, twice: cubic x2 on 1200 x 512 x 512, two threads,
# peaked at 10.0 GB in one tile of every plane, 2.2 GB in 18 cut along z, 8.1 GB whole in memory;
# benchmarks/bench_blockwise.py)
TILE_BYTES = 1 << 28
AXIAL_MARGIN = CUBIC_REACH  # input planes of context each side of a cut along z
MIN_TILE_PLANES = 8


def upsample_z_blockwise(volume: Volume, method: ZInterpolator, factor: int | None = None,
                         z_spacing: float | None = None, z_out: np.ndarray | None = None,
                         tile: int | None = None, tile_planes: int | None = None) -> Volume:
    """Resample ``volume`` along z with ``method``, lazily, in tiles.

    Parameters
    ----------
    volume : Volume
        Input; its data may be a NumPy, memory-mapped, zarr or dask array.
    method : ZInterpolator
        A classical interpolator or a loaded model. A method may declare
        ``lateral_margin`` (pixels of context each side of a tile; default 0)
        and ``for_stack(sample, z_in, z_out, pixel_size)`` (a copy of itself
        with per-stack state fixed on ``sample``, a central crop).
    factor, z_spacing, z_out : optional
        As in :func:`zaug.predict.upsample_z`.
    tile : int, optional
        Lateral size of a tile in pixels (the margin comes on top); default the
        method's ``block_tile`` (ZAugNet: 448, so that a tile and its margins
        make one pass of the network), else 512. Memory per tile is about
        ``(nz_in + nz_out) * (tile + 2 margin)^2 * 4`` bytes.
    tile_planes : int, optional
        Input planes per tile along z (the method's ``axial_margin`` planes of
        context come on top each side; default 8, far enough for a cubic
        spline). By default every plane, unless such a tile would take more
        than about 256 MiB (:data:`TILE_BYTES`): then as many as fit. Tiles cut
        along z give the whole-stack result of a method that looks at nearby
        planes only (linear, ZAugNet's pairs; cubic splines within about 1e-4
        of the contrast).

    Returns
    -------
    Volume
        Lazy (dask) data, chunked one tile per chunk; same dtype, axes and
        lateral voxel size as the input, z voxel size updated.
    """
    check_volume(volume, scan_values=False)  # non-finite values are found tile by tile
    method = as_z_interpolator(method)
    if hasattr(method, "input_unit"):  # as in upsample_z
        method.input_unit = volume.unit
    tile = int(tile if tile is not None else getattr(method, "block_tile", DEFAULT_TILE))
    if tile < 16:
        raise InputError(f"the tile size must be at least 16 pixels, got {tile}.")
    z_in = volume.z_coords()
    z_out = output_positions(z_in, factor=factor, z_spacing=z_spacing) if z_out is None else checked_z_out(z_in, z_out)
    warn_about_spacing(z_in, z_out, z_spacing, volume.unit)
    data = volume.data if isinstance(volume.data, da.Array) else da.from_array(volume.data, name=False)
    margin = int(getattr(method, "lateral_margin", 0))
    _warn_about_margins(volume.data.shape[-2:], tile, margin)
    halo = _axial_margin(method, z_in, z_out)
    cuts = _z_cuts(z_in, z_out, tile + 2 * margin, tile_planes, halo)
    pixel_size = volume.voxel_size[1:]
    lead = volume.data.shape[:-3]
    stacks = [_upsample_stack(data[index], method, z_in, z_out, pixel_size, tile, margin, cuts, halo, volume.dtype)
              for index in np.ndindex(*lead)]
    out = stacks[0] if not lead else da.stack(stacks).reshape(lead + stacks[0].shape)
    return resampled_volume(volume, out, z_out, method)


def margin_work(plane_shape: tuple[int, int], tile: int, margin: int) -> float:
    """How many times the plane the method processes when each tile carries ``margin`` pixels of context each
    side (clipped at the plane's edges).

    >>> margin_work((1024, 1024), 448, 32), margin_work((64, 64), 32, 32)
    (1.265625, 4.0)
    """
    work = 1.0
    for n in plane_shape:
        starts = range(0, n, tile)
        work *= sum(min(n, s + tile + margin) - max(0, s - margin) for s in starts) / n
    return work


def _warn_about_margins(plane_shape: tuple[int, int], tile: int, margin: int) -> None:
    work = margin_work(plane_shape, tile, margin)
    if work > 2.5:
        warnings.warn(ZaugWarning(
            f"tiles of {tile} pixels carry {margin} pixels of context on each side, so the model processes "
            f"{work:.1f} times the plane; tiles of {max(4 * margin, 256)} pixels or more cost less."), stacklevel=3)


def central_crop(volume: Volume, side: int = SAMPLE_SIDE, z_range: tuple[float, float] | None = None) -> Volume:
    """The central ``side`` x ``side`` lateral window, in memory (for reports).

    Planes at ``z_range`` (first and last position, inclusive) only, when
    given; a z range outside the stack is refused.
    """
    y0, x0 = _window_start(volume.spatial_shape[1:], side)
    z = volume.z_coords()
    tol = position_tolerance(z)
    keep = np.ones(len(z), bool) if z_range is None else (z >= z_range[0] - tol) & (z <= z_range[1] + tol)
    if not keep.any():
        raise InputError(f"no plane of the stack lies between z {z_range[0]:g} and {z_range[1]:g}.")
    k0, k1 = int(np.argmax(keep)), len(keep) - int(np.argmax(keep[::-1]))
    window = volume.data[..., k0:k1, y0:y0 + side, x0:x0 + side]
    data = window.compute() if isinstance(window, da.Array) else np.array(window)
    origin = (volume.yx_origin[0] + y0 * volume.voxel_size[1], volume.yx_origin[1] + x0 * volume.voxel_size[2])
    planes = {"z_positions": z[k0:k1]} if volume.z_positions is not None else {"z_origin": float(z[k0])}
    return volume.replace(data=data, yx_origin=origin, **planes,
                          metadata=dict(volume.metadata, crop=[y0, x0, side] + ([k0, k1] if z_range else [])))


def central_planes(volume: Volume, planes: int = SAMPLE_PLANES) -> tuple[float, float]:
    """The z positions of the first and last of ``volume``'s central ``planes`` planes (all of a shorter stack)."""
    k0, k1 = _central_planes(volume.nz, planes)
    z = volume.z_coords()
    return float(z[k0]), float(z[k1 - 1])


def _axial_margin(method, z_in: np.ndarray, z_out: np.ndarray) -> int:
    """Input planes of context each side of a cut along z: the method's ``axial_margin`` (a number, or a
    function of the input and output positions), else :data:`AXIAL_MARGIN`."""
    margin = getattr(method, "axial_margin", AXIAL_MARGIN)
    return int(margin(z_in, z_out) if callable(margin) else margin)


def _z_cuts(z_in: np.ndarray, z_out: np.ndarray, side: int, tile_planes: int | None,
            halo: int) -> list[tuple[int, int]]:
    """Input plane ranges ``[k0, k1)`` whose output planes (``z_in[k0] <= z < z_in[k1]``, the last to the end)
    make one tile each along z; one range, every plane, when a tile of every plane fits in :data:`TILE_BYTES`."""
    nz = len(z_in)
    if tile_planes is None:
        per_plane = (1 + len(z_out) / nz) * side * side * 4  # input and output, float32
        fit = int(TILE_BYTES // per_plane) - 2 * halo
        tile_planes = nz if fit >= nz else max(MIN_TILE_PLANES, fit)
    elif tile_planes < 2:
        raise InputError(f"a tile needs at least 2 planes along z, got {tile_planes}.")
    starts = list(range(0, nz - 1, int(tile_planes))) or [0]
    return [(k0, nz if k0 == starts[-1] else k0 + int(tile_planes)) for k0 in starts]


def _upsample_stack(stack: da.Array, method, z_in, z_out, pixel_size, tile: int, margin: int,
                    cuts: list[tuple[int, int]], halo: int, dtype: np.dtype) -> da.Array:
    """One ZYX stack as a grid of lazily upsampled tiles."""
    nz, ny, nx = stack.shape
    if hasattr(method, "for_stack"):
        k0, k1 = _central_planes(nz)
        z_sample = z_out[(z_out >= z_in[k0]) & (z_out <= z_in[k1 - 1])]
        prepared = method.for_stack(_central_crop(stack[k0:k1]), z_in[k0:k1], z_sample, pixel_size)
        if hasattr(prepared, "calibration"):  # what was used, as after a whole-stack prediction
            method.calibration = dict(prepared.calibration)
            method.calibration_scale = dict(getattr(prepared, "calibration_scale", {}))
            method.calibration_unfitted = set(getattr(prepared, "calibration_unfitted", ()))
        method = prepared
    keep = getattr(method, "keeps_acquired", True)  # a restoration changes the acquired planes too
    # one graph node for the method, shared by every tile (not hashed or copied per tile)
    method_node = dask.delayed(method, name=f"zaug-method-{uuid.uuid4().hex}")
    layers = []
    for k0, k1 in cuts:
        # the output planes of this cut, computed from its planes and `halo` more each side
        # the first and last cuts take everything beyond them too: positions checked to lie within the stack
        # may still be a rounding error outside it
        here = np.ones(len(z_out), bool)
        if k0 > 0:
            here &= z_out >= z_in[k0]
        if k1 < nz:
            here &= z_out < z_in[k1]
        za, zb = max(0, k0 - halo), min(nz, k1 + 1 + halo)
        z_here = z_out[here]
        if not len(z_here):  # output planes farther apart than these input planes
            continue
        rows = []
        for y0 in range(0, ny, tile):
            y1 = min(ny, y0 + tile)
            row = []
            for x0 in range(0, nx, tile):
                x1 = min(nx, x0 + tile)
                ya, yb, xa, xb = max(0, y0 - margin), min(ny, y1 + margin), max(0, x0 - margin), min(nx, x1 + margin)
                crop = (y0 - ya, y1 - ya, x0 - xa, x1 - xa)
                task = dask.delayed(_upsample_tile, pure=True)(stack[za:zb, ya:yb, xa:xb], method_node, z_in[za:zb],
                                                             z_here, pixel_size, crop, dtype, (k0, y0, x0), keep)
                row.append(da.from_delayed(task, shape=(len(z_here), y1 - y0, x1 - x0), dtype=dtype))
            rows.append(row)
        layers.append(rows)
    return da.block(layers)


def _central_planes(nz: int, planes: int = SAMPLE_PLANES) -> tuple[int, int]:
    """The central ``planes`` planes (all of a shorter stack) as ``[k0, k1)``."""
    k0 = max(0, (nz - planes) // 2)
    return k0, min(nz, k0 + planes)


def _window_start(yx_shape, side: int) -> tuple[int, int]:
    """Where the central ``side`` x ``side`` window of planes of ``yx_shape`` starts."""
    return tuple(max(0, (n - side) // 2) for n in yx_shape)


def _central_crop(stack: da.Array) -> np.ndarray:
    y0, x0 = _window_start(stack.shape[1:], SAMPLE_SIDE)
    sample = np.asarray(stack[:, y0:y0 + SAMPLE_SIDE, x0:x0 + SAMPLE_SIDE], dtype=np.float32)
    _check_finite(sample, (None, y0, x0))
    return sample


def _upsample_tile(block, method, z_in, z_out, pixel_size, crop, dtype, origin, keep: bool) -> np.ndarray:
    block = np.asarray(block)
    if block.dtype.kind in "fc":  # integers are finite
        _check_finite(block, origin)
    y0, y1, x0, x1 = crop
    if isinstance(method, ClassicalInterpolator):  # needs no lateral context: the tile alone, a band at a time
        out = np.empty((len(z_out), y1 - y0, x1 - x0), dtype)
        interpolate_in_bands(method, block[:, y0:y1, x0:x1], z_in, z_out, out)
    else:
        planes = method.interpolate(np.asarray(block, dtype=np.float32), z_in, z_out, pixel_size=pixel_size)
        out = cast_like(planes[:, y0:y1, x0:x1], dtype)
    return keep_acquired(out, block[:, y0:y1, x0:x1], z_in, z_out) if keep else out


def _check_finite(x: np.ndarray, origin: tuple) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        z, y, x0 = origin
        where = f"y {y}, x {x0}" + (f" (from plane {z})" if z else "")
        raise InputError(f"the image contains {int(bad.sum())} NaN or infinite value(s) in the tile at {where}; "
                         "replace them before processing.")
