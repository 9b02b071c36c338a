"""TIFF: ImageJ hyperstacks and OME-TIFF, with voxel size in and out."""

from __future__ import annotations

import itertools
import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from ..volume import Volume
from ._units import imagej_unit, normalize_unit, ome_unit

IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
LAZY_CHUNK = 512  # lateral chunk side of a compressed TIFF read lazily (zaug.blockwise's default tile)


def read_tiff(path: Path, lazy: bool = False) -> tuple[np.ndarray, str, dict]:
    """Read the first series of a TIFF file.

    With ``lazy``, an uncompressed, contiguously stored series is memory-mapped
    (read-only); a compressed one of one page per plane becomes a dask array
    that decodes pages when they are needed (:class:`TiffPlanes`); any other
    file is read.

    Returns
    -------
    data, axes, physical
        The pixels, tifffile's axis letters, and a dict with the ``voxel_size``
        entries found (``z``, ``y``, ``x``), ``unit`` and ``z_positions``.
    """
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = _memmap(path) if lazy else None
        if data is not None and data.shape != tuple(series.shape):
            data = None
        if data is None and lazy and TiffPlanes.fits(series):
            import dask.array as da

            planes = TiffPlanes(path, tuple(series.shape), series.dtype)
            # lateral chunks of about a tile, so a tile's task holds only its part of each plane
            chunks = (1,) * (planes.ndim - 2) + tuple(min(LAZY_CHUNK, n) for n in planes.shape[-2:])
            data = da.from_array(planes, chunks=chunks, asarray=False)
        if data is None:
            data = series.asarray()
        axes = series.axes
        if tif.is_ome and tif.ome_metadata:
            physical = _ome_physical(tif.ome_metadata)
        else:
            physical = _imagej_physical(tif)
    return data, axes, physical


class TiffPlanes:
    """The planes of a TIFF file's first series as an array-like read on demand.

    One page holds one plane. Indexing decodes only the pages it touches (each
    whole: a compressed page cannot be read in part), so a dask array of lateral
    chunks holds a tile's part of each plane, never the stack; a tile reads each
    of its pages again. It pickles as its path: the workers of a dask cluster
    open the file themselves (each thread keeps its own handle).
    """

    def __init__(self, path: Path, shape: tuple, dtype):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self._local = threading.local()

    @staticmethod
    def fits(series) -> bool:
        """Whether ``series`` stores one plane per page (not RGB samples, not tiles of planes)."""
        shape = tuple(series.shape)
        return (len(shape) >= 3 and len(series.pages) == int(np.prod(shape[:-2]))
                and tuple(series.keyframe.shape) == shape[-2:])

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["shape"], state["dtype"])

    def _pages(self):
        if getattr(self._local, "pages", None) is None:
            tif = tifffile.TiffFile(self.path)
            self._local.tif, self._local.pages = tif, tif.series[0].pages
        return self._local.pages

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        lead, plane_key = key[:-2], key[-2:]
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else [k] for k, n in zip(lead, self.shape)]
        pages = self._pages()
        out = np.empty([len(r) for r in ranges] + [len(range(*k.indices(n))) if isinstance(k, slice) else 1
                                                   for k, n in zip(plane_key, self.shape[-2:])], self.dtype)
        for index in itertools.product(*[enumerate(r) for r in ranges]):
            at, where = tuple(i for i, _ in index), tuple(w for _, w in index)
            plane = pages[int(np.ravel_multi_index(where, self.shape[:-2]))].asarray()
            out[at] = np.asarray(plane[plane_key]).reshape(out.shape[len(at):])
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]


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
