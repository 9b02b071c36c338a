"""Zeiss CZI files, read with Zeiss's own library (pylibCZIrw, the optional extra ``zaug[czi]``).

A scene of the file is one image series (``series`` picks it, as in a TIFF). Its planes are read with the
scene's lateral extent, tiles of a mosaic stitched by the library; the voxel size comes from the document's
``Scaling`` (metres, converted to micrometres), the channel names, colours and acquisition settings from
its ``Information`` and ``DisplaySetting``. Time steps, plane positions and the stage position are not read.
"""

from __future__ import annotations

import itertools
import threading
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError, ZaugWarning
from . import _display
from ._reads import NamedReads
from ._units import COMMON_UNIT, conversion_factor, without_binary_noise
from .tiff import CHANNEL_SETTINGS, MAX_SETTING, _unknown_z

#: CZI pixel types of one sample, and the NumPy type of their pixels
PIXEL_TYPES = {"Gray8": np.uint8, "Gray16": np.uint16, "Gray32": np.int32, "Gray32Float": np.float32,
               "Gray64Float": np.float64}
#: the axes of a plane's position that zaug keeps (mosaic tiles are stitched, scenes are series)
PLANE_AXES = "TCZ"


def _library():
    try:
        from pylibCZIrw import czi as pyczi
    except ImportError as exc:
        raise InputError("reading a CZI file needs Zeiss's pylibCZIrw: pip install 'zaug[czi]' (or pip install "
                         "pylibCZIrw); or convert the file to OME-TIFF first (Fiji: Bio-Formats, then File > "
                         "Save As > OME-TIFF).") from exc
    return pyczi


def read_czi(path: Path, lazy: bool = False, series: int | None = None) -> tuple[object, str, dict]:
    """Read one scene of a CZI file (the first, or ``series``).

    With ``lazy``, a dask array whose chunks read their part of each plane
    when they are needed (:class:`CziPlanes`).

    Returns
    -------
    data, axes, physical
        As :func:`zaug.io.tiff.read_tiff`: the pixels, their axis letters (of
        ``TCZYX``; T and C only when more than one) and the voxel size found.
    """
    pyczi = _library()
    with pyczi.open_czi(str(path)) as czi:
        box, scenes, types, xml = czi.total_bounding_box, czi.scenes_bounding_rectangle, czi.pixel_types, \
            czi.raw_metadata
    scene = _pick_scene(path, scenes, series)
    rect = scenes[scene] if scene is not None else None
    if rect is None:
        x0, x1 = box["X"]
        y0, y1 = box["Y"]
        rect = (x0, y0, x1 - x0, y1 - y0)
    dtype = _dtype(path, types)
    lead = [(axis, *box.get(axis, (0, 1))) for axis in PLANE_AXES]
    lead = [(axis, start, stop - start) for axis, start, stop in lead if axis == "Z" or stop - start > 1]
    planes = CziPlanes(path, lead, tuple(rect), scene, dtype)
    axes = "".join(axis for axis, _, _ in lead) + "YX"
    if lazy:
        import dask.array as da

        chunks = (1,) * len(lead) + tuple(min(512, n) for n in planes.shape[-2:])
        data = da.from_array(NamedReads(planes, path, axes), chunks=chunks, asarray=False)
    else:
        data = NamedReads(planes, path, axes)[...]
    n_channels = dict((a, n) for a, _, n in lead).get("C", 1)
    physical = _physical(xml, n_channels)
    if len(scenes) > 1:  # which one was read, for the output's record
        physical["series"] = sorted(scenes).index(scene)
    return data, axes, physical


def _pick_scene(path: Path, scenes: dict, series: int | None) -> int | None:
    """The scene to read: ``series``, else the first (with a warning naming them when there are several)."""
    ids = sorted(scenes)
    if series is not None:
        if not 0 <= series < max(len(ids), 1):
            raise InputError(f"{path} holds {max(len(ids), 1)} image series (scenes, 0 to {max(len(ids), 1) - 1}); "
                             f"--series {series} is not one of them.")
        return ids[series] if ids else None
    if len(ids) > 1:
        sizes = ", ".join(f"{i}: {scenes[s].w}x{scenes[s].h}" for i, s in enumerate(ids[:4]))
        warnings.warn(ZaugWarning(
            f"{path} holds {len(ids)} scenes ({sizes}{', ...' if len(ids) > 4 else ''}); zaug reads scene 0; "
            "choose another with --series N (series= in read_volume)."), stacklevel=4)
    return ids[0] if ids else None


def _dtype(path: Path, types: dict) -> np.dtype:
    unknown = sorted({t for t in types.values() if t not in PIXEL_TYPES})
    if unknown:
        raise InputError(f"{path} holds {unknown[0]} pixels (colour or complex), which zaug does not read; "
                         "zaug works on grey channels: export them from ZEN, or convert the file with Fiji.")
    if not types:
        raise InputError(f"{path} holds no image planes.")
    return np.result_type(*(PIXEL_TYPES[t] for t in types.values()))


def _physical(xml: str, n_channels: int) -> dict:
    """Voxel size, channel names, colours and acquisition settings of a CZI document's metadata."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    to_um = conversion_factor("m", COMMON_UNIT)
    size = {}
    for distance in root.iterfind("./Metadata/Scaling/Items/Distance"):
        axis, value = (distance.get("Id") or "").lower(), _float(distance.findtext("Value"))
        if axis in ("x", "y", "z") and value is not None and value > 0:
            size[axis] = without_binary_noise(value * to_um)
    physical: dict = {}
    if {"y", "x"} <= size.keys() and "z" not in size:
        physical.update(_unknown_z(size, COMMON_UNIT))
    elif size:
        physical.update(size, unit=COMMON_UNIT)
    channels = root.findall("./Metadata/Information/Image/Dimensions/Channels/Channel")
    names = [(c.get("Name") or "").strip() for c in channels]
    if len(names) == n_channels > 1 and all(names):
        physical["channel_names"] = [n[:MAX_SETTING] for n in names]
    colors = [_rgb(c.findtext("Color")) for c in root.findall("./Metadata/DisplaySetting/Channels/Channel")]
    if len(colors) == n_channels and any(colors):
        physical["display"] = _display.from_colors(colors)
    acquisition: dict = {}
    date = (root.findtext("./Metadata/Information/Image/AcquisitionDateAndTime") or "").strip()
    if date:
        acquisition["date"] = date[:MAX_SETTING]
    settings = [{el.tag: el.text.strip()[:MAX_SETTING] for el in c if el.tag in CHANNEL_SETTINGS
                 and el.text and el.text.strip()} for c in channels]
    if len(settings) == n_channels and any(settings):
        acquisition["channels"] = settings
    physical["acquisition"] = acquisition
    return physical


def _float(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _rgb(text: str | None) -> str | None:
    """``"RRGGBB"`` of a CZI colour ``#AARRGGBB`` (or ``#RRGGBB``)."""
    text = (text or "").strip().lstrip("#")
    if len(text) not in (6, 8) or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        return None
    return text[-6:].upper()


class CziPlanes:
    """A CZI scene's planes as an array-like read on demand.

    ``lead`` names the plane axes kept (letter, first index, count); indexing
    reads, for each plane it touches, only the lateral part asked for (the
    library reads a rectangle of the mosaic). It pickles as its parts: the
    workers of a dask cluster open the file themselves (a handle per thread).
    """

    def __init__(self, path: Path, lead: list[tuple[str, int, int]], rect: tuple[int, int, int, int],
                 scene: int | None, dtype):
        self.path, self.lead, self.rect, self.scene = Path(path), [tuple(a) for a in lead], tuple(rect), scene
        self.dtype = np.dtype(dtype)
        self.shape = tuple(n for _, _, n in self.lead) + (int(rect[3]), int(rect[2]))
        self.ndim = len(self.shape)
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path, "lead": self.lead, "rect": self.rect, "scene": self.scene, "dtype": self.dtype}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _reader(self):
        if getattr(self._local, "reader", None) is None:
            self._local.reader = _library().CziReader(str(self.path))
        return self._local.reader

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else [k] for k, n in zip(key[:-2], self.shape)]
        (ys, y_step), (xs, x_step) = (_span(k, n) for k, n in zip(key[-2:], self.shape[-2:]))
        # the rectangle from the first pixel asked for to the last, in the mosaic's coordinates
        roi = (self.rect[0] + xs.start, self.rect[1] + ys.start, (len(xs) - 1) * x_step + 1, (len(ys) - 1) * y_step + 1)
        out = np.zeros([len(r) for r in ranges] + [len(ys), len(xs)], self.dtype)
        if out.size:
            reader = self._reader()
            for index in itertools.product(*[enumerate(r) for r in ranges]):
                plane = {axis: start + i for (axis, start, _), (_, i) in zip(self.lead, index)}
                pixels = reader.read(plane=plane, roi=roi, scene=self.scene)[..., 0]
                out[tuple(i for i, _ in index)] = pixels[::y_step, ::x_step]
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]


def _span(key, n: int) -> tuple[range, int]:
    """The indices a lateral key takes, and its step (a single index as a slice of one)."""
    if not isinstance(key, slice):
        key = slice(int(key) % n, int(key) % n + 1)
    r = range(*key.indices(n))
    if r.step < 0:
        raise IndexError("a CZI plane is read with positive steps only")
    return r, r.step
