"""TIFF: ImageJ hyperstacks and OME-TIFF, with voxel size in and out."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from ..volume import Volume
from ._units import imagej_unit, normalize_unit, ome_unit

IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def read_tiff(path: Path, lazy: bool = False) -> tuple[np.ndarray, str, dict]:
    """Read the first series of a TIFF file.

    With ``lazy``, an uncompressed, contiguously stored series is memory-mapped
    (read-only) instead of read; any other file is read.

    Returns
    -------
    data, axes, physical
        The pixels, tifffile's axis letters, and a dict with the ``voxel_size``
        entries found (``z``, ``y``, ``x``), ``unit`` and ``z_positions``.
    """
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = _memmap(path) if lazy else None
        if data is None or data.shape != tuple(series.shape):
            data = series.asarray()
        axes = series.axes
        if tif.is_ome and tif.ome_metadata:
            physical = _ome_physical(tif.ome_metadata)
        else:
            physical = _imagej_physical(tif)
    return data, axes, physical


def _memmap(path: Path) -> np.ndarray | None:
    try:
        return tifffile.memmap(path, series=0, mode="r")
    except ValueError:  # compressed or not contiguous: cannot be mapped
        return None


def _imagej_physical(tif: tifffile.TiffFile) -> dict:
    ij = tif.imagej_metadata or {}
    physical: dict = {}
    tags = tif.pages[0].tags
    unit = ij.get("unit")
    res_unit = tags.get("ResolutionUnit")
    if unit is None and res_unit is not None and int(res_unit.value) == 3:
        unit = "cm"
    for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
        t = tags.get(tag)
        if t is not None:
            num, den = t.value
            if num > 0 and den > 0 and (num, den) != (1, 1):
                physical[axis] = den / num
    if "spacing" in ij:
        physical["z"] = float(ij["spacing"])
    if unit is not None or physical:
        physical["unit"] = normalize_unit(unit) if unit is not None else "pixel"
    if "zaug_z_positions" in ij:
        physical["z_positions"] = json.loads(ij["zaug_z_positions"])
    return physical


def _ome_physical(xml: str) -> dict:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return {}
    physical: dict = {}
    units = set()
    for axis in "zyx":
        value = pixels.get(f"PhysicalSize{axis.upper()}")
        if value is not None:
            physical[axis] = float(value)
            units.add(normalize_unit(pixels.get(f"PhysicalSize{axis.upper()}Unit", "\u00b5m")))
    if units:
        physical["unit"] = units.pop() if len(units) == 1 else "um"
    planes = [el for el in pixels if el.tag.endswith("Plane") and el.get("PositionZ") is not None]
    if planes:
        z = sorted({(int(p.get("TheZ", 0)), float(p.get("PositionZ"))) for p in planes})
        positions = [pos for _, pos in z]
        if len(positions) > 1 and np.all(np.diff(positions) > 0):
            physical["z_positions"] = positions
    return physical


def write_tiff(volume: Volume, path: Path, ome: bool | None = None) -> None:
    """Write ImageJ TIFF (default) or OME-TIFF (``ome=True``, ``*.ome.tif``).

    ImageJ TIFF holds only uint8, uint16 and float32; other types go to OME-TIFF
    so that the data type is never changed silently.
    """
    data = np.asarray(volume.data)
    name = path.name.lower()
    if ome is None:
        ome = name.endswith((".ome.tif", ".ome.tiff")) or data.dtype.type not in IMAGEJ_DTYPES
    vz, vy, vx = volume.voxel_size
    if ome:
        metadata = {"axes": volume.axes}
        unit = ome_unit(volume.unit)
        for axis, size in zip("ZYX", (vz, vy, vx)):
            metadata[f"PhysicalSize{axis}"] = size
            if unit:
                metadata[f"PhysicalSize{axis}Unit"] = unit
        if volume.z_positions is not None:
            metadata["Plane"] = {"PositionZ": _plane_positions(volume)}
        tifffile.imwrite(path, data, ome=True, metadata=metadata, compression="zlib",
                         resolution=(1.0 / vx, 1.0 / vy))
        return
    # ImageJ orders hyperstacks TZCYX.
    order = [volume.axes.index(a) for a in "TZCYX" if a in volume.axes]
    ij_axes = "".join(volume.axes[i] for i in order)
    metadata = {"spacing": vz, "unit": imagej_unit(volume.unit), "axes": ij_axes}
    if volume.z_positions is not None:
        metadata["zaug_z_positions"] = json.dumps([float(z) for z in volume.z_positions])
    tifffile.imwrite(path, np.transpose(data, order), imagej=True, metadata=metadata,
                     resolution=(1.0 / vx, 1.0 / vy), compression="zlib")


def _plane_positions(volume: Volume) -> list[float]:
    # OME stores one Plane per (T, C, Z) image, in the order tifffile writes them.
    lead = int(np.prod(volume.data.shape[:-3], dtype=int))
    return [float(z) for _ in range(lead) for z in volume.z_positions]
