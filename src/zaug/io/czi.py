"""Zeiss CZI files, read with Zeiss's own library (pylibCZIrw, the optional extra ``zaug[czi]``).

A scene of the file is one image series (``series`` picks it, as in a TIFF). Its planes are those its
sub-blocks hold (whatever their first T, C and Z index), read with the scene's lateral extent, tiles of a
mosaic stitched by the library; the voxel size comes from the document's ``Scaling`` (metres, converted to
micrometres), the channel names, colours and acquisition settings from its ``Information`` and
``DisplaySetting``. Time steps, plane positions and the stage position are not read.
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
from ._reads import full_key, key_range, read_planes
from ._units import COMMON_UNIT, conversion_factor, without_binary_noise
from .tiff import CHANNEL_SETTINGS, MAX_SETTING, known_sizes

#: CZI pixel types that the library reads, and the NumPy type of their pixels
PIXEL_TYPES = {"Gray8": np.uint8, "Gray16": np.uint16, "Gray32Float": np.float32}
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

    The planes are those the file's sub-blocks hold (their T, C and Z indices
    need not start at 0); a plane missing from a scene reads as zeros, with a
    warning. With ``lazy``, a dask array whose chunks read their part of each
    plane when they are needed (:class:`CziPlanes`).

    Returns
    -------
    data, axes, physical
        As :func:`zaug.io.tiff.read_tiff`: the pixels, their axis letters (of
        ``TCZYX``; T and C only when more than one) and the voxel size found.
    """
    pyczi = _library()
    warnings_found: list[str] = []
    with pyczi.open_czi(str(path)) as czi:
        blocks = _subblocks(czi)
        rects = czi.scenes_bounding_rectangle
        box = czi.total_bounding_box
        try:
            xml = czi.raw_metadata
        except RuntimeError as exc:  # the pixels can still be read
            xml = ""
            warnings_found.append(f"its metadata cannot be read ({exc}), so its voxel size is unknown; give it with "
                                  "--voxel-size Z Y X --unit um.")
    scenes = sorted({b["S"] for b in blocks if b.get("S") is not None})
    scene = _pick_scene(path, scenes, rects, series)
    blocks = [b for b in blocks if scene is None or b.get("S") == scene]
    if not blocks:
        raise InputError(f"{path} holds no image planes.")
    dtype = _dtype(path, {b["pixel_type"] for b in blocks})
    if scene is not None and scene in rects:
        rect = tuple(rects[scene])
    else:
        rect = (box["X"][0], box["Y"][0], box["X"][1] - box["X"][0], box["Y"][1] - box["Y"][0])
    indices = {axis: sorted({b.get(axis, 0) for b in blocks}) for axis in PLANE_AXES}
    lead = [(axis, tuple(indices[axis])) for axis in PLANE_AXES if axis == "Z" or len(indices[axis]) > 1]
    missing = _missing_planes(blocks, lead)
    if missing:
        warnings_found.append(f"{len(missing)} of its planes are not in the file ({', '.join(missing[:3])}"
                              f"{', ...' if len(missing) > 3 else ''}): they read as zeros (an interrupted "
                              "acquisition?); leave them out with --crop, or re-export the stack.")
    types = {b.get("C", 0): b["pixel_type"] for b in blocks}  # the library reads a plane in its channel's type
    planes = CziPlanes(path, lead, rect, scene, dtype, types)
    data = read_planes(planes, path, "".join(axis for axis, _ in lead) + "YX", lazy)
    physical = _physical(xml, len(dict(lead).get("C", (0,))))
    physical["warnings"] = physical.get("warnings", []) + warnings_found
    if len(scenes) > 1:  # which one was read, for the output's record
        physical["series"] = scenes.index(scene)
    return data, "".join(axis for axis, _ in lead) + "YX", physical


def _subblocks(czi) -> list[dict]:
    """Each full-resolution sub-block's plane indices (T, C, Z, S) and pixel type, from its header."""
    found: list[dict] = []

    def take(_, info) -> bool:
        if info.get_zoom() >= 0.999:  # a pyramid's smaller levels are left out
            found.append(dict(info.coordinate.to_dict(), pixel_type=info.pixelType.name))
        return True

    czi.enumerate_subblocks(take)
    return found


def _missing_planes(blocks: list[dict], lead: list[tuple[str, tuple]]) -> list[str]:
    """The planes (as ``"t 2, z 3"``) of the stack's grid that no sub-block holds."""
    held = {tuple(b.get(axis, 0) for axis, _ in lead) for b in blocks}
    return [", ".join(f"{axis.lower()} {i}" for (axis, _), i in zip(lead, where))
            for where in itertools.product(*(values for _, values in lead)) if where not in held]


def _pick_scene(path: Path, scenes: list[int], rects: dict, series: int | None) -> int | None:
    """The scene to read: ``series``, else the first (with a warning naming them when there are several)."""
    count = max(len(scenes), 1)
    if series is not None:
        if not 0 <= series < count:
            raise InputError(f"{path} holds {count} image series (scenes, 0 to {count - 1}); "
                             f"--series {series} is not one of them.")
        return scenes[series] if scenes else None
    if len(scenes) > 1:
        sizes = ", ".join(f"{i}: {rects[s].w}x{rects[s].h}" if s in rects else str(i) for i, s in enumerate(scenes[:4]))
        warnings.warn(ZaugWarning(
            f"{path} holds {len(scenes)} scenes ({sizes}{', ...' if len(scenes) > 4 else ''}); zaug reads scene 0; "
            "choose another with --series N (series= in read_volume)."), stacklevel=4)
    return scenes[0] if scenes else None


def _dtype(path: Path, types: set[str]) -> np.dtype:
    unknown = sorted(t for t in types if t not in PIXEL_TYPES)
    if unknown:
        kind = "colour (RGB) pixels" if unknown[0].startswith("Bgr") else "pixels of a type zaug cannot read"
        raise InputError(f"{path} holds {kind}; zaug works on grey channels of 8 or 16 bits or 32-bit float: "
                         "export them from ZEN, or convert the file with Fiji.")
    return np.result_type(*(PIXEL_TYPES[t] for t in types))


def _physical(xml: str, n_channels: int) -> dict:
    """Voxel size, channel names, colours and acquisition settings of a CZI document's metadata."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {"warnings": ["its metadata is not XML, so its voxel size is unknown; give it with --voxel-size "
                             "Z Y X --unit um."]} if xml else {}
    to_um = conversion_factor("m", COMMON_UNIT)
    size = {}
    for distance in root.iterfind("./Metadata/Scaling/Items/Distance"):
        axis, value = (distance.get("Id") or "").lower(), _float(distance.findtext("Value"))
        if axis in ("x", "y", "z") and value is not None and value > 0:
            size[axis] = without_binary_noise(value * to_um)
    physical = known_sizes(size, COMMON_UNIT, "Scaling")
    channels = root.findall("./Metadata/Information/Image/Dimensions/Channels/Channel")
    names = [(c.get("Name") or "").strip() for c in channels]
    if len(names) == n_channels and all(names):
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

    ``lead`` names the plane axes kept (letter, the file's indices); indexing
    reads, for each plane it touches, only the lateral part asked for (the
    library reads a rectangle of the mosaic). It pickles as its parts: the
    workers of a dask cluster open the file themselves (a handle per thread).
    """

    def __init__(self, path: Path, lead: list[tuple[str, tuple[int, ...]]], rect: tuple[int, int, int, int],
                 scene: int | None, dtype, channel_types: dict[int, str]):
        self.path, self.rect, self.scene = Path(path), tuple(int(v) for v in rect), scene
        self.channel_types = {int(c): str(t) for c, t in channel_types.items()}
        self.lead = [(axis, tuple(int(i) for i in values)) for axis, values in lead]
        self.dtype = np.dtype(dtype)
        self.shape = tuple(len(values) for _, values in self.lead) + (self.rect[3], self.rect[2])
        self.ndim = len(self.shape)
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path, "lead": self.lead, "rect": self.rect, "scene": self.scene, "dtype": self.dtype,
                "channel_types": self.channel_types}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _reader(self):
        if getattr(self._local, "reader", None) is None:
            self._local.reader = _library().CziReader(str(self.path))
        return self._local.reader

    def __getitem__(self, key) -> np.ndarray:
        key = full_key(key, self.ndim)
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else [k] for k, n in zip(key[:-2], self.shape)]
        ys, xs = (key_range(k, n) for k, n in zip(key[-2:], self.shape[-2:]))
        y_step, x_step = ys.step, xs.step
        # the rectangle from the first pixel asked for to the last, in the mosaic's coordinates
        roi = (self.rect[0] + xs.start, self.rect[1] + ys.start, (len(xs) - 1) * x_step + 1, (len(ys) - 1) * y_step + 1)
        out = np.zeros([len(r) for r in ranges] + [len(ys), len(xs)], self.dtype)
        if out.size:
            reader = self._reader()
            for index in itertools.product(*[enumerate(r) for r in ranges]):
                plane = {axis: values[i] for (axis, values), (_, i) in zip(self.lead, index)}
                kind = self.channel_types.get(plane.get("C", next(iter(self.channel_types))))
                pixels = reader.read(plane=plane, roi=roi, scene=self.scene, pixel_type=kind)[..., 0]
                out[tuple(i for i, _ in index)] = pixels[::y_step, ::x_step]
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]

