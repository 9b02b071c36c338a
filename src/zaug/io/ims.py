"""Imaris files (``.ims``, HDF5), read with h5py (the optional extra ``zaug[ims]``).

The full-resolution level (``DataSet/ResolutionLevel 0``) is read: one
``TimePoint t/Channel c/Data`` array per time point and channel, each cut to the
image's size (Imaris pads its blocks). The voxel size is the image's extent
(``ExtMin``/``ExtMax`` in ``DataSetInfo/Image``, in its ``Unit``) over its size,
the channel names and colours come from ``DataSetInfo/Channel c``, the time step
from ``DataSetInfo/TimeInfo``. The extent's position (the origin) is not read.
"""

from __future__ import annotations

import datetime
import itertools
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import _display
from ._reads import NamedReads, full_key, key_range
from ._units import normalize_unit, without_binary_noise
from .tiff import MAX_SETTING

LEVEL = "DataSet/ResolutionLevel 0"


def _library():
    try:
        import h5py
    except ImportError as exc:
        raise InputError("reading an Imaris file needs h5py: pip install 'zaug[ims]' (or pip install h5py); or "
                         "convert the file to OME-TIFF first (Imaris File Converter, or Fiji's Bio-Formats).") from exc
    try:  # the compression filters newer Imaris versions use (LZ4), where installed
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


def read_ims(path: Path, lazy: bool = False) -> tuple[object, str, dict]:
    """Read the full-resolution image of an Imaris file.

    With ``lazy``, a dask array whose chunks read their part of the file when
    they are needed (:class:`ImsPlanes`).

    Returns
    -------
    data, axes, physical
        As :func:`zaug.io.tiff.read_tiff`: the pixels, their axis letters (of
        ``TCZYX``; T and C only when more than one) and the voxel size found.
    """
    h5py = _library()
    with h5py.File(path, "r") as f:
        if LEVEL not in f:
            raise InputError(f"{path} is an HDF5 file but not an Imaris image (it has no {LEVEL}).")
        image = f["DataSetInfo/Image"].attrs if "DataSetInfo/Image" in f else {}
        times = _numbered(f[LEVEL], "TimePoint")
        channels = _numbered(f[f"{LEVEL}/TimePoint {times[0]}"], "Channel") if times else []
        if not channels:
            raise InputError(f"{path} holds no image data (no {LEVEL}/TimePoint 0/Channel 0).")
        first = f[f"{LEVEL}/TimePoint {times[0]}/Channel {channels[0]}/Data"]
        stored, dtype = tuple(first.shape), first.dtype
        size = tuple(_int(image.get(axis)) for axis in "ZYX")
        if not all(n is not None and 0 < n <= m for n, m in zip(size, stored)):
            size = stored  # no usable size: the arrays' own
        physical = _physical(f, image, size, len(channels), len(times))
    lead = [(axis, values) for axis, values in (("T", times), ("C", channels)) if len(values) > 1]
    planes = ImsPlanes(path, [(a, tuple(v)) for a, v in lead], times[0], channels[0], size, dtype)
    axes = "".join(axis for axis, _ in lead) + "ZYX"
    reads = NamedReads(planes, path, axes)
    if lazy:
        import dask.array as da

        chunks = (1,) * len(lead) + (1,) + tuple(min(512, n) for n in size[1:])
        return da.from_array(reads, chunks=chunks, asarray=False), axes, physical
    data = np.stack([reads[i] for i in range(planes.shape[0])])  # a damaged part is named
    return data, axes, physical


def _numbered(group, prefix: str) -> list[int]:
    """The numbers ``n`` of a group's members named ``"{prefix} n"``, in order."""
    found = (re.fullmatch(rf"{prefix} (\d+)", name) for name in group)
    return sorted(int(m.group(1)) for m in found if m)


def _text(value) -> str | None:
    """An Imaris attribute as text: Imaris writes them as arrays of single characters."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = b"".join(np.atleast_1d(value).astype(bytes).tolist()) if value.dtype.kind in "SU" else value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("latin-1").strip("\0 ").strip()
    return str(value).strip()


def _int(value) -> int | None:
    try:
        return int(float(_text(value)))
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        number = float(_text(value))
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _physical(f, image, size: tuple[int, int, int], n_channels: int, n_times: int) -> dict:
    """Voxel size (extent over size), channel names, colours and wavelengths, and the time step."""
    physical: dict = {}
    found = {}
    for axis, n, index in zip("zyx", size, (2, 1, 0)):
        low, high = _float(image.get(f"ExtMin{index}")), _float(image.get(f"ExtMax{index}"))
        if low is not None and high is not None and high > low:
            found[axis] = without_binary_noise((high - low) / n)
    unit = _text(image.get("Unit")) or "um"
    try:
        unit = normalize_unit(unit)
    except (InputError, ValueError):
        unit = None
    if len(found) == 3 and unit is not None:
        physical.update(found, unit=unit)
    else:
        physical["warnings"] = ["its extent does not give a voxel size, so it is unknown (1 pixel); give it with "
                                "--voxel-size Z Y X --unit um."]
    infos = [f[f"DataSetInfo/Channel {c}"].attrs if f"DataSetInfo/Channel {c}" in f else {}
             for c in range(n_channels)]
    names = [(_text(a.get("Name")) or "")[:MAX_SETTING] for a in infos]
    if names and all(names):
        physical["channel_names"] = names
    colors = [_rgb(_text(a.get("Color"))) for a in infos]
    if any(colors):
        physical["display"] = _display.from_colors(colors)
    settings = [{key: text[:MAX_SETTING] for key, name in (("ExcitationWavelength", "LSMExcitationWavelength"),
                                                            ("EmissionWavelength", "LSMEmissionWavelength"))
                 if (text := _text(a.get(name))) and _float(text) is not None} for a in infos]
    if any(settings):
        physical["acquisition"] = {"channels": settings}
    interval = _time_step(f, n_times)
    if interval is not None:
        physical["time"] = {"interval": interval, "unit": "s"}
    return physical


def _rgb(text: str | None) -> str | None:
    """``"RRGGBB"`` of an Imaris colour (``"r g b"``, each 0 to 1)."""
    try:
        values = [float(v) for v in (text or "").split()]
    except ValueError:
        return None
    if len(values) < 3 or not all(0 <= v <= 1 for v in values[:3]):
        return None
    return "".join(f"{round(v * 255):02X}" for v in values[:3])


def _time_step(f, n_times: int) -> float | None:
    """Seconds between the first two time points (``TimePoint1``, ``TimePoint2`` of ``DataSetInfo/TimeInfo``)."""
    if n_times < 2 or "DataSetInfo/TimeInfo" not in f:
        return None
    info = f["DataSetInfo/TimeInfo"].attrs
    try:
        first, second = (datetime.datetime.fromisoformat(_text(info.get(f"TimePoint{i}")).replace(" ", "T"))
                         for i in (1, 2))
    except (AttributeError, TypeError, ValueError):
        return None
    step = (second - first).total_seconds()
    return step if step > 0 else None


class ImsPlanes:
    """An Imaris image's full-resolution planes as an array-like read on demand.

    ``lead`` names the time and channel axes kept (letter, the file's numbers);
    indexing reads only the part of each time point's and channel's array that
    it asks for. It pickles as its parts: the workers of a dask cluster open the
    file themselves (a handle per thread).
    """

    def __init__(self, path: Path, lead: list[tuple[str, tuple[int, ...]]], time: int, channel: int,
                 size: tuple[int, int, int], dtype):
        self.path, self.time, self.channel = Path(path), int(time), int(channel)
        self.lead = [(axis, tuple(int(i) for i in values)) for axis, values in lead]
        self.size, self.dtype = tuple(int(n) for n in size), np.dtype(dtype)
        self.shape = tuple(len(values) for _, values in self.lead) + self.size
        self.ndim = len(self.shape)
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path, "lead": self.lead, "time": self.time, "channel": self.channel,
                "size": self.size, "dtype": self.dtype}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _file(self):
        if getattr(self._local, "file", None) is None:
            self._local.file = _library().File(self.path, "r")
        return self._local.file

    def __getitem__(self, key) -> np.ndarray:
        key = full_key(key, self.ndim)
        n_lead = len(self.lead)
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else [k] for k, n in zip(key[:n_lead], self.shape)]
        spans = [key_range(k, n) for k, n in zip(key[n_lead:], self.size)]
        out = np.zeros([len(r) for r in ranges] + [len(r) for r in spans], self.dtype)
        if out.size:
            f = self._file()
            for index in itertools.product(*[enumerate(r) for r in ranges]):
                where = {"T": self.time, "C": self.channel}
                where.update({axis: values[i] for (axis, values), (_, i) in zip(self.lead, index)})
                array = f[f"{LEVEL}/TimePoint {where['T']}/Channel {where['C']}/Data"]
                # the box from the first voxel asked for to the last, then every step-th of it
                box = tuple(slice(r.start, r.start + (len(r) - 1) * r.step + 1) for r in spans)
                out[tuple(i for i, _ in index)] = array[box][tuple(slice(None, None, r.step) for r in spans)]
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]

