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
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import _display
from ._hdf5 import H5Planes, check_filters, h5py_for
from ._reads import read_planes
from ._units import checked_unit, without_binary_noise
from .tiff import MAX_SETTING

LEVEL = "DataSet/ResolutionLevel 0"
#: the full-resolution array of a time point and channel
DATA = LEVEL + "/TimePoint {T}/Channel {C}/Data"


def read_ims(path: Path, lazy: bool = False) -> tuple[object, str, dict]:
    """Read the full-resolution image of an Imaris file.

    With ``lazy``, a dask array whose chunks read their part of the file when
    they are needed (:class:`~zaug.io._hdf5.H5Planes`). A channel missing from
    a time point reads as zeros, with a warning.

    Returns
    -------
    data, axes, physical
        As :func:`zaug.io.tiff.read_tiff`: the pixels, their axis letters (of
        ``TCZYX``; T and C only when more than one) and the voxel size found.
    """
    h5py = h5py_for("an Imaris file", "ims", "Imaris File Converter, or Fiji's Bio-Formats")
    with h5py.File(path, "r") as f:
        if LEVEL not in f:
            raise InputError(f"{path} is an HDF5 file but not an Imaris image (it has no {LEVEL}).")
        image = f["DataSetInfo/Image"].attrs if "DataSetInfo/Image" in f else {}
        times = _numbered(f[LEVEL], "TimePoint")
        held = {(t, c) for t in times for c in _numbered(f[f"{LEVEL}/TimePoint {t}"], "Channel")
                if DATA.format(T=t, C=c) in f}
        channels = sorted({c for _, c in held})
        times = sorted({t for t, _ in held})
        if not held:
            raise InputError(f"{path} holds no image data (no {DATA.format(T=0, C=0)}).")
        arrays = [f[DATA.format(T=t, C=c)] for t, c in sorted(held)]
        check_filters(path, arrays)
        if any(a.ndim != 3 for a in arrays):
            raise InputError(f"{path} holds image arrays that are not 3D (z, y, x), as Imaris keeps them.")
        stored, dtype = tuple(min(n) for n in zip(*(a.shape for a in arrays))), arrays[0].dtype
        size, unknown = _image_size(image, stored)
        physical = _physical(f, image, size, channels, times)
    missing = [(t, c) for t in times for c in channels if (t, c) not in held]
    notes = [f"its stated size is not usable for {', '.join(unknown)}, so the stored arrays' size is read there "
             "(it may hold Imaris's padding)."] if unknown else []
    if missing:
        notes.append(f"{len(missing)} of its time point and channel arrays are not in the file ("
                     + ", ".join(f"t {t}, c {c}" for t, c in missing[:3]) + (", ..." if len(missing) > 3 else "")
                     + "): they read as zeros.")
    physical["warnings"] = physical.get("warnings", []) + notes
    lead = [(axis, tuple(values)) for axis, values in (("T", times), ("C", channels)) if len(values) > 1]
    planes = H5Planes(path, DATA, lead, {"T": times[0], "C": channels[0]}, size, dtype)
    axes = "".join(axis for axis, _ in lead) + "ZYX"
    return read_planes(planes, path, axes, lazy), axes, physical


def _image_size(image, stored: tuple[int, int, int]) -> tuple[tuple[int, int, int], list[str]]:
    """The image's size (z, y, x) from its attributes, axis by axis the stored one where it is not usable, and
    the axes where it was not."""
    size, unknown = [], []
    for axis, m in zip("ZYX", stored):
        n = _int(image.get(axis))
        if n is None or not 0 < n <= m:
            n = m
            unknown.append(axis.lower())
        size.append(n)
    return tuple(size), unknown


def _numbered(group, prefix: str) -> list[int]:
    """The numbers ``n`` of a group's members named ``"{prefix} n"``, in order."""
    found = (re.fullmatch(rf"{prefix} (\d+)", name) for name in group)
    return sorted(int(m.group(1)) for m in found if m)


def _text(value) -> str | None:
    """An Imaris attribute as text: Imaris writes them as arrays of single characters."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU":
            value = b"".join(np.atleast_1d(value).astype(bytes).tolist())
        elif value.size == 1:  # a number kept as an array of one
            value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # older writers: Latin-1 ("\xb5m")
            text = raw.decode("latin-1")
        return text.strip("\0 ").strip()
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


def _physical(f, image, size: tuple[int, int, int], channels: list[int], times: list[int]) -> dict:
    """Voxel size (extent over size), channel names, colours and wavelengths, and the time step."""
    physical: dict = {}
    found = {}
    for axis, n, index in zip("zyx", size, (2, 1, 0)):
        low, high = _float(image.get(f"ExtMin{index}")), _float(image.get(f"ExtMax{index}"))
        if low is not None and high is not None and high > low:
            found[axis] = without_binary_noise((high - low) / n)
    unit = _text(image.get("Unit")) or "um"
    try:
        unit = checked_unit(unit)
    except InputError:
        unit = None
    if len(found) == 3 and unit is not None:
        physical.update(found, unit=unit)
    else:
        physical["warnings"] = ["its extent does not give a voxel size, so it is unknown (1 pixel); give it with "
                                "--voxel-size Z Y X --unit um."]
    infos = [f[f"DataSetInfo/Channel {c}"].attrs if f"DataSetInfo/Channel {c}" in f else {} for c in channels]
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
    interval = _time_step(f, times)
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


def _time_step(f, times: list[int]) -> float | None:
    """Seconds between the first two time points read (``TimePoint{t + 1}`` of ``DataSetInfo/TimeInfo``)."""
    if len(times) < 2 or "DataSetInfo/TimeInfo" not in f:
        return None
    info = f["DataSetInfo/TimeInfo"].attrs
    try:
        first, second = (datetime.datetime.fromisoformat(_text(info.get(f"TimePoint{t + 1}")).replace(" ", "T"))
                         for t in times[:2])
    except (AttributeError, TypeError, ValueError):
        return None
    step = (second - first).total_seconds()
    return step if step > 0 else None

