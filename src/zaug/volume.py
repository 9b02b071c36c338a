"""The :class:`Volume` type: an array with its voxel size, unit and axes.

A volume always has the spatial axes Z, Y, X last, optionally preceded by a
time axis T and a channel axis C (in that order: ``ZYX``, ``CZYX``, ``TZYX``,
``TCZYX``). Methods process each (T, C) stack independently.

The z positions of the planes are usually uniform (``z0 + i * voxel_size[0]``),
but a volume may carry measured, non-uniform plane positions in
``z_positions``; then ``voxel_size[0]`` is their mean spacing.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import InputError

CANONICAL_AXES = "TCZYX"
MIN_PLANES = 2


def position_tolerance(z, rel: float = 1e-6) -> float:
    """How far apart two z positions of the planes ``z`` may be and still be the same plane.

    A fraction ``rel`` of the stack's extent, plus the rounding of numbers of the
    positions' size: in any unit (metres as micrometres), never a fixed distance.

    >>> position_tolerance([0.0, 1.45e-6]) < 1e-9 < position_tolerance([0.0, 1.45]) < 1e-3
    True
    """
    z = np.asarray(z, dtype=np.float64)
    return float(rel * (z.max() - z.min()) + 1e-12 * np.abs(z).max()) if z.size else 0.0


def region_text(region) -> str:
    """A ``--crop`` box (``Volume.metadata["region"]``) in words.

    >>> region_text([[0, 8], [0, 8], [2, 8]])
    'planes 0:8, rows 0:8, columns 2:8'
    """
    return "planes {}:{}, rows {}:{}, columns {}:{}".format(*(i for pair in region for i in pair))


def z_positions_problem(positions, nz: int) -> str | None:
    """What makes ``positions`` unusable as the z positions of ``nz`` planes, in a few words, or None.

    >>> z_positions_problem([0.0, 0.5, 0.4], 3)
    'decrease (0.5 to 0.4)'
    """
    z = np.asarray(positions, dtype=np.float64).ravel()
    steps = np.diff(z)
    if len(z) != nz:
        return f"are {len(z)} for {nz} planes"
    if not np.all(np.isfinite(z)):
        return "include a value that is not a number"
    if np.any(steps < 0):
        k = int(np.argmax(steps < 0))
        return f"decrease ({z[k]:g} to {z[k + 1]:g})"
    if np.any(steps == 0):
        return f"repeat {z[int(np.argmax(steps == 0))]:g}"
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
    """A 3D (or 3D + T/C) microscopy stack with physical voxel size.

    Parameters
    ----------
    data : numpy.ndarray or array-like
        The pixels, with axes as in ``axes``. Dask or zarr arrays are accepted
        for lazy, larger-than-memory processing.
    voxel_size : tuple of float
        Physical size of a voxel along (z, y, x), in ``unit``.
    unit : str
        Physical unit of ``voxel_size`` (``"um"``, ``"nm"``, ...; ``"pixel"``
        when the file did not say).
    axes : str
        Axis names, a subsequence of ``"TCZYX"`` ending in ``"ZYX"``.
    z_positions : numpy.ndarray, optional
        Physical z position of every plane, strictly increasing; ``None`` means
        uniform spacing ``voxel_size[0]`` starting at ``z_origin``.
    z_origin : float
        Physical z position of the first plane when ``z_positions`` is None.
    yx_origin : tuple of float
        Physical (y, x) position of the first pixel of every plane, in
        ``unit`` (a file's lateral offset or stage position).
    channel_names : tuple of str
        Names of the channels (C axis), as the file gave them; empty when unknown.
    time_interval : float, optional
        Time between time points (T axis), in ``time_unit``; None when unknown.
    time_unit : str
        Unit of ``time_interval`` and ``time_origin`` (``"s"``, ``"ms"``, ``"min"``, ...).
    time_origin : float
        Time of the first time point.
    metadata : dict
        Free-form information carried along (source path, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from zaug import Volume
    >>> vol = Volume(np.zeros((5, 8, 8), np.uint16), voxel_size=(2.0, 0.5, 0.5), unit="um")
    >>> vol.nz, vol.anisotropy
    (5, 4.0)
    >>> vol.z_coords()
    array([0., 2., 4., 6., 8.])
    """

    data: Any
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    unit: str = "pixel"
    axes: str = "ZYX"
    z_positions: np.ndarray | None = None
    z_origin: float = 0.0
    yx_origin: tuple[float, float] = (0.0, 0.0)
    channel_names: tuple[str, ...] = ()
    time_interval: float | None = None
    time_unit: str = "s"
    time_origin: float = 0.0
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not hasattr(self.data, "ndim"):  # a list of planes, say
            object.__setattr__(self, "data", np.asarray(self.data))
        axes = self.axes.upper()
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "voxel_size", tuple(float(v) for v in self.voxel_size))
        if not _is_canonical(axes):
            raise InputError(
                f"axes {axes!r} are not supported: use a subsequence of 'TCZYX' that ends in 'ZYX'."
            )
        if len(self.voxel_size) != 3 or not all(np.isfinite(v) and v > 0 for v in self.voxel_size):
            raise InputError(f"voxel size {self.voxel_size} must be three positive numbers (z, y, x).")
        object.__setattr__(self, "z_origin", float(self.z_origin))
        object.__setattr__(self, "yx_origin", tuple(float(v) for v in self.yx_origin))
        if not np.isfinite(self.z_origin):
            raise InputError(f"the z origin {self.z_origin} must be a finite number.")
        if len(self.yx_origin) != 2 or not all(np.isfinite(v) for v in self.yx_origin):
            raise InputError(f"the lateral origin {self.yx_origin} must be two finite numbers (y, x).")
        if self.data.ndim != len(axes):
            raise InputError(
                f"axes {axes!r} name {len(axes)} dimensions but the image has {self.data.ndim} "
                f"(shape {tuple(self.data.shape)})."
            )
        self._fit_channel_and_time_metadata()
        if self.z_positions is not None:
            z = np.asarray(self.z_positions, dtype=np.float64)
            problem = z_positions_problem(z, self.nz)
            if problem:
                raise InputError(f"the z positions {problem}; they must be one finite, strictly increasing "
                                 "position per plane.")
            object.__setattr__(self, "z_positions", z)
            if len(z) > 1:  # the z voxel size is their mean spacing, whatever was given
                object.__setattr__(self, "voxel_size", (float(np.mean(np.diff(z))),) + tuple(self.voxel_size[1:]))

    def _fit_channel_and_time_metadata(self) -> None:
        """Keep channel names and the time step only where they describe this volume's C and T axes
        (a copy with one channel, or one time point, drops them rather than mislabel it)."""
        names = tuple(str(n) for n in self.channel_names)
        if "C" not in self.axes or len(names) != self.data.shape[self.axes.index("C")]:
            names = ()
        object.__setattr__(self, "channel_names", names)
        interval = self.time_interval
        if "T" not in self.axes or interval is None or not (np.isfinite(interval) and interval > 0):
            interval = None
        object.__setattr__(self, "time_interval", None if interval is None else float(interval))
        origin = float(self.time_origin)
        object.__setattr__(self, "time_origin", origin if "T" in self.axes and np.isfinite(origin) else 0.0)

    # -- shape -----------------------------------------------------------
    @property
    def nz(self) -> int:
        """Number of z planes."""
        return int(self.data.shape[-3])

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of one ZYX stack."""
        return tuple(int(s) for s in self.data.shape[-3:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def anisotropy(self) -> float:
        """z voxel size over the mean lateral voxel size."""
        return self.voxel_size[0] / (0.5 * (self.voxel_size[1] + self.voxel_size[2]))

    @property
    def is_uniform(self) -> bool:
        """True when the planes are evenly spaced."""
        if self.z_positions is None or self.nz < 3:
            return True
        d = np.diff(self.z_positions)
        return bool(np.allclose(d, d.mean(), rtol=1e-3, atol=0))

    def z_coords(self) -> np.ndarray:
        """Physical z position of every plane."""
        if self.z_positions is not None:
            return self.z_positions.copy()
        return self.z_origin + self.voxel_size[0] * np.arange(self.nz, dtype=np.float64)

    # -- iteration and copies ---------------------------------------------
    @property
    def n_channels(self) -> int:
        """Number of channels (1 without a C axis)."""
        return int(self.data.shape[self.axes.index("C")]) if "C" in self.axes else 1

    @property
    def n_stacks(self) -> int:
        """Number of ZYX stacks (time points x channels)."""
        return math.prod(self.data.shape[:-3])

    def stacks(self) -> Iterator[tuple[tuple[int, ...], Any]]:
        """Yield ``(index, zyx)`` for every time point and channel."""
        lead = self.data.shape[:-3]
        for index in itertools.product(*(range(n) for n in lead)):
            yield index, self.data[index]

    def stack_name(self, index: tuple[int, ...]) -> str:
        """The stack at ``index`` of :meth:`stacks` in words, for messages (counted from 0, as :meth:`select`
        and ``--channel``/``--time`` count); ``''`` without T and C axes.

        >>> import numpy as np
        >>> Volume(np.zeros((2, 3, 4, 8, 8)), axes="TCZYX").stack_name((1, 2))
        'time point 1, channel 2'
        """
        return ", ".join(f"{'channel' if a == 'C' else 'time point'} {i}" for a, i in zip(self.axes[:-3], index))

    def select(self, channel: int | None = None, time: int | None = None) -> "Volume":
        """One channel and/or one time point (indices from 0), with its metadata.

        >>> import numpy as np
        >>> vol = Volume(np.zeros((2, 2, 4, 8, 8)), axes="TCZYX", channel_names=("dna", "actin"))
        >>> one = vol.select(channel=1, time=0)
        >>> one.axes, one.metadata["channel"]
        ('ZYX', 'actin')
        """
        data, axes, metadata = self.data, self.axes, dict(self.metadata)
        for letter, index, name in (("T", time, "time point"), ("C", channel, "channel")):
            if index is None:
                continue
            if letter not in axes:
                raise InputError(f"the stack has no {name}s to choose from (axes {axes}).")
            n = data.shape[axes.index(letter)]
            if not -n <= int(index) < n:
                raise InputError(f"there is no {name} {index}: the stack has {n} (0 to {n - 1}).")
            if letter == "C" and self.channel_names:
                metadata["channel"] = self.channel_names[int(index)]
            if letter == "C" and metadata.get("display"):
                from .io._display import select_channel

                metadata["display"] = select_channel(metadata["display"], int(index) % n)
            settings = (metadata.get("acquisition") or {}).get("channels")
            if letter == "C" and isinstance(settings, list) and len(settings) == n:  # that channel's only
                metadata["acquisition"] = dict(metadata["acquisition"], channels=[settings[int(index) % n]])
            data = np.take(data, int(index), axis=axes.index(letter))
            axes = axes.replace(letter, "")
        origin = self.time_origin + (time or 0) * (self.time_interval or 0.0)
        return self.replace(data=data, axes=axes, metadata=metadata, time_origin=origin)

    def crop(self, z: slice = slice(None), y: slice = slice(None), x: slice = slice(None)) -> "Volume":
        """The voxels in a box (plane, row and column index ranges, as Python slices without a step), with
        its physical origin, z positions and voxel size; data read lazily stay on disk.

        Negative indices count from the end, as Python's do. A range that is empty, has a step or reaches
        outside the stack is refused in one sentence.

        >>> import numpy as np
        >>> vol = Volume(np.zeros((10, 40, 40)), voxel_size=(2.0, 0.5, 0.5), unit="um")
        >>> part = vol.crop(slice(2, 8), slice(10, 30), slice(None))
        >>> part.spatial_shape, part.origin
        ((6, 20, 40), (4.0, 5.0, 0.0))
        """
        ranges = []
        for name, what, cut, n in zip("zyx", ("planes", "rows", "columns"), (z, y, x), self.spatial_shape):
            start, stop = cut.start or 0, n if cut.stop is None else cut.stop
            start, stop = (start + n if start < 0 else start), (stop + n if stop < 0 else stop)  # from the end
            if cut.step not in (None, 1):
                raise InputError(f"the crop's {name} range has a step ({cut.step}); give a plain range such as "
                                 f"{start}:{stop} (a step would change the voxel size).")
            if not 0 <= start < stop <= n:
                given = f"{'' if cut.start is None else cut.start}:{'' if cut.stop is None else cut.stop}"
                raise InputError(f"the crop's {name} range {given} is not a range within the stack's {n} "
                                 f"{what} (0:{n}).")
            ranges.append((start, stop))
        (z0, z1), (y0, y1), (x0, x1) = ranges
        data = self.data[..., z0:z1, y0:y1, x0:x1]
        planes = ({"z_positions": self.z_positions[z0:z1]} if self.z_positions is not None
                  else {"z_origin": self.z_origin + z0 * self.voxel_size[0]})
        origin = (self.yx_origin[0] + y0 * self.voxel_size[1], self.yx_origin[1] + x0 * self.voxel_size[2])
        before = self.metadata.get("region") or [[0, None]] * 3  # a crop of a crop: the box in the file
        region = [[a + start, a + stop] for (a, _), (start, stop) in zip(before, ranges)]
        return self.replace(data=data, yx_origin=origin, **planes, metadata=dict(self.metadata, region=region))

    def in_unit(self, unit: str) -> "Volume":
        """The same volume with its voxel size, z positions and origin converted to ``unit``.

        >>> import numpy as np
        >>> Volume(np.zeros((3, 4, 4)), (0.29, 0.26, 0.26), "um").in_unit("nm").voxel_size
        (290.0, 260.0, 260.0)
        """
        from .io._units import checked_unit, conversion_factor, without_binary_noise

        unit = checked_unit(unit)
        if unit == self.unit:
            return self
        scale = conversion_factor(self.unit, unit)
        if scale is None:
            known = "no physical unit" if self.unit == "pixel" else f"its voxel size in {self.unit}"
            raise InputError(f"the stack has {known}, which cannot be converted to {unit}; give its voxel size "
                             f"in {unit} instead (--voxel-size Z Y X --unit {unit}).")

        def convert(value: float) -> float:
            return without_binary_noise(value * scale)

        positions = None if self.z_positions is None else [convert(z) for z in self.z_positions]
        metadata = dict(self.metadata)
        if metadata.get("acquired_z") is not None:  # positions too (zaug.provenance)
            metadata["acquired_z"] = [convert(z) for z in metadata["acquired_z"]]
        return self.replace(voxel_size=tuple(convert(v) for v in self.voxel_size), unit=unit, z_positions=positions,
                            z_origin=convert(self.z_origin), yx_origin=tuple(convert(o) for o in self.yx_origin),
                            metadata=metadata)

    def replace(self, **changes: Any) -> "Volume":
        """A copy with some fields changed (metadata is copied, not shared)."""
        changes.setdefault("metadata", dict(self.metadata))
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict:
        """Plain-dict summary for ``zaug info``."""
        info = {
            "shape": list(self.data.shape),
            "dtype": str(self.dtype),
            "axes": self.axes,
            "voxel_size": {"z": self.voxel_size[0], "y": self.voxel_size[1], "x": self.voxel_size[2]},
            "unit": self.unit,
            "anisotropy": round(self.anisotropy, 4),
            "uniform_z": self.is_uniform,
        }
        if self.z_positions is not None:
            info["z_positions"] = [float(z) for z in self.z_positions]
        elif self.z_origin:
            info["z_origin"] = self.z_origin
        if any(self.yx_origin):
            info["yx_origin"] = {"y": self.yx_origin[0], "x": self.yx_origin[1]}
        if self.channel_names:
            info["channel_names"] = list(self.channel_names)
        if self.time_interval is not None:
            info["time"] = {"interval": self.time_interval, "unit": self.time_unit, "origin": self.time_origin}
        from .provenance import acquired_mask, is_made_by_zaug

        if is_made_by_zaug(self):  # which planes are acquired and how zaug made the others (zaug.provenance)
            info["made_by_zaug"] = {"acquired_planes": [int(i) for i in np.flatnonzero(acquired_mask(self))],
                                    "history": list(self.metadata["history"])}
        if self.metadata.get("acquisition"):  # an OME input's acquisition date, description, channel settings
            info["acquisition"] = self.metadata["acquisition"]
        display = self.metadata.get("display")
        if display and display.get("channels"):  # colour and display range per channel (see zaug.io)
            info["display"] = [{"window": list(ch["window"]) if ch.get("window") else None,
                                "color": ch.get("color") or ("LUT" if ch.get("lut") is not None else None)}
                               for ch in display["channels"]]
        return info

    @property
    def origin(self) -> tuple[float, float, float]:
        """Physical position (z, y, x) of the first voxel, in :attr:`unit`."""
        return (float(self.z_coords()[0]),) + self.yx_origin

    def __repr__(self) -> str:
        vz, vy, vx = self.voxel_size
        return (
            f"Volume(shape={tuple(self.data.shape)}, dtype={self.dtype}, axes={self.axes!r}, "
            f"voxel_size=({vz:g}, {vy:g}, {vx:g}) {self.unit})"
        )


def _is_canonical(axes: str) -> bool:
    if not axes.endswith("ZYX") or len(set(axes)) != len(axes):
        return False
    it = iter(CANONICAL_AXES)
    return all(a in it for a in axes)


#: largest magnitude of float input: a cubic overshoot or a network's output, computed in float32 (3.4e38),
#: must not reach infinity
FLOAT_LIMIT = 1e37
_AXIS_WORDS = {"T": "time point", "C": "channel", "Z": "plane", "Y": "y", "X": "x"}


def check_volume(volume: Volume, min_planes: int = MIN_PLANES, scan_values: bool = True) -> None:
    """Refuse data that no method can use, with a sentence that says why.

    Parameters
    ----------
    volume : Volume
        The volume to check.
    min_planes : int
        Fewest z planes the caller needs.
    scan_values : bool
        Also look at the pixels (non-finite values, a constant image): a pass
        over the data, which tile-by-tile processing leaves to each tile.

    Raises
    ------
    InputError
        Not a Volume, too few planes, non-finite values or a constant image.
    """
    if not isinstance(volume, Volume):
        raise InputError(f"expected a zaug Volume, got {type(volume).__name__}; wrap an array with its voxel size: "
                         "Volume(array, voxel_size=(z, y, x), unit='um').")
    if volume.nz < min_planes:
        raise InputError(
            f"the stack has {volume.nz} z plane(s); at least {min_planes} are needed "
            f"(is it a 2D image, or are the axes wrong? see --axes)."
        )
    ny, nx = volume.spatial_shape[1:]
    if ny < 4 or nx < 4:
        raise InputError(f"the planes are {ny}x{nx} pixels; at least 4x4 are needed (check --axes).")
    if volume.dtype.kind not in "uif":  # bool, complex, dates, strings, records
        raise InputError(f"images of type {volume.dtype} are not supported; use integer or float data.")
    if volume.dtype.kind == "f" and volume.dtype.itemsize > 8:  # no TIFF, Zarr or torch type holds them
        raise InputError(f"images of type {volume.dtype} (extended precision) are not supported; convert the "
                         "stack to float64 or float32.")
    if not scan_values:
        return
    data = np.asarray(volume.data)
    if np.issubdtype(volume.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all():
            first = np.unravel_index(int(np.argmin(finite)), data.shape)
            where = ", ".join(f"{_AXIS_WORDS[a]} {int(i)}" for a, i in zip(volume.axes, first))
            raise InputError(f"the image contains {int((~finite).sum())} NaN or infinite value(s), the first at "
                             f"{where} (counted from 0); replace them before processing.")
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if np.issubdtype(volume.dtype, np.floating) and max(high, -low) > FLOAT_LIMIT:
        raise InputError(f"the image holds values up to {max(high, -low):.3g}; zaug computes in 32-bit floats "
                         f"(up to 3.4e38), where the interpolation's overshoot could become infinite: rescale the "
                         f"stack below {FLOAT_LIMIT:.0e} first.")
    if data.size and low == high:
        raise InputError("the image is constant (every voxel is the same), so there is nothing to interpolate.")
