"""TIFF: ImageJ hyperstacks and OME-TIFF, with voxel size in and out."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import threading
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError, OutputError, ZaugWarning
from ..provenance import file_record_text, plane_labels, summary
from ..volume import Volume, z_positions_problem
from . import _display
from ._reads import NamedReads
from ._units import (COMMON_UNIT, conversion_factor, imagej_unit, in_one_unit, normalize_unit, ome_unit,
                     origin_entries, time_unit, time_unit_in, unconvertible_units, without_binary_noise)

IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
LAZY_CHUNK = 512  # lateral chunk side of a compressed TIFF read lazily (zaug.blockwise's default tile)


def read_tiff(path: Path, lazy: bool = False, series: int | None = None) -> tuple[np.ndarray, str, dict]:
    """Read the first image series of a TIFF file (the first stack, after an overview plane; the pages of
    a file whose every page is an image series of its own, as a stack).

    With ``lazy``, an uncompressed, contiguously stored series is memory-mapped
    (read-only); a compressed one of one page per plane becomes a dask array
    that decodes pages when they are needed (:class:`TiffPlanes`); any other
    file is read.

    Returns
    -------
    data, axes, physical
        The pixels, tifffile's axis letters, and a dict with the ``voxel_size``
        entries found (``z``, ``y``, ``x``), ``unit``, ``z_positions``,
        ``z_origin`` and ``yx_origin``.
    """
    with _tifffile_errors(path), tifffile.TiffFile(path) as tif:
        if series is None and _planes_saved_one_by_one(tif):  # as Fiji does, the pages are one stack
            return np.stack([s.asarray() for s in tif.series]), "ZYX", _imagej_physical(tif)
        index = _pick_series(tif, path) if series is None else _given_series(tif, path, series)
        series = tif.series[index]
        if tif.is_lsm:
            _check_lsm(path, tif.lsm_metadata or {}, series.dtype)
        data = _memmap(path, index) if lazy else None
        if data is not None and data.shape != tuple(series.shape):
            data = None
        if data is None and lazy and TiffPlanes.fits(series):
            import dask.array as da

            planes = TiffPlanes(path, tuple(series.shape), series.dtype, index)
            # lateral chunks of about a tile, so a tile's task holds only its part of each plane
            chunks = (1,) * (planes.ndim - 2) + tuple(min(LAZY_CHUNK, n) for n in planes.shape[-2:])
            data = da.from_array(NamedReads(planes, path, series.axes), chunks=chunks, asarray=False)
        if data is None:
            data = series.asarray()
        axes = series.axes
        data = _imagej_calibrated(data, tif.imagej_metadata or {}, path)
        n_channels = int(data.shape[axes.index("C")]) if "C" in axes else 1
        if tif.is_ome and tif.ome_metadata:
            root = ET.fromstring(tif.ome_metadata)  # parsed once for all that is read from it
            image = _ome_image_of_series(root, index, tif.series)
            if image is None:  # another image's sizes would be wrong: none is read
                physical, record = {"warnings": [
                    f"its OME metadata does not tell which image is series {index}, so no voxel size, channel "
                    "names or settings are read from it; give the voxel size with --voxel-size Z Y X."]}, None
            else:
                pixels = _ome_pixels(root, image)
                physical = dict(_ome_physical(pixels), **_ome_channels_and_time(pixels, n_channels))
                physical["acquisition"] = ome_acquisition(root, image, n_channels)
                record = _ome_zaug_record(root, image)
        elif tif.is_lsm:
            physical, record = _lsm_physical(tif.lsm_metadata or {}, axes, n_channels), None
        else:
            ij = tif.imagej_metadata or {}
            physical = dict(_imagej_physical(tif), **_imagej_time(ij), display=_display.from_imagej(ij, n_channels))
            record = ij.get("zaug")
        if record is not None:  # how zaug made the stack (zaug.provenance)
            physical["zaug"] = record
        if len(_image_series(tif)) > 1:  # which one was read, for the output's record
            physical["series"] = index
        if _is_rgb(series, axes) and not physical.get("display"):
            # zaug's channels are the samples: shown as red, green and blue in a composite, the output
            # looks in Fiji and napari as the RGB input did
            physical["display"] = _display.rgb_composite(series.dtype)
    return data, axes, physical


def _is_rgb(series, axes: str) -> bool:
    return ("S" in axes and "C" not in axes and series.shape[axes.index("S")] == 3
            and series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB)


def _ome_pixels(root: ET.Element, image: int = 0) -> ET.Element | None:
    return next(itertools.islice((el for el in root.iter() if el.tag.endswith("Pixels")), image, None), None)


def _ome_image_of_series(root: ET.Element, index: int, series: list) -> int | None:
    """Which OME ``Image`` holds tifffile's ``index``-th series, or None where that cannot be told.

    tifffile skips an image without ``TiffData`` (a label or macro image stored
    elsewhere) and one whose ``TiffData`` it cannot use (an invalid index), so
    the images that have some are counted, and the one found must have the
    series' number of pixels; else the series is matched among the images and
    series of its size, in order.
    """
    images = [el for el in root if _local(el.tag) == "Image"]
    with_data = [i for i, image in enumerate(images)
                 if any(_local(el.tag) == "TiffData" for pixels in image if _local(pixels.tag) == "Pixels"
                        for el in pixels)]
    size = int(np.prod(series[index].shape))
    guess = with_data[index] if len(with_data) == len(series) else index
    if guess < len(images) and _ome_size(images[guess]) == size:
        return guess
    fitting = [i for i in with_data if _ome_size(images[i]) == size]
    alike = [j for j, s in enumerate(series) if int(np.prod(s.shape)) == size]
    return fitting[alike.index(index)] if len(fitting) == len(alike) else None


def _ome_size(image: ET.Element) -> int | None:
    """The number of pixel values an OME ``Image`` states (samples counted as channels)."""
    pixels = next((el for el in image if _local(el.tag) == "Pixels"), None)
    try:
        return int(np.prod([int(pixels.get(f"Size{a}")) for a in "XYZCT"]))
    except (AttributeError, TypeError, ValueError):
        return None


def _ome_image(root: ET.Element, image: int) -> ET.Element | None:
    """The ``image``-th ``Image`` of an OME-XML document."""
    return next(itertools.islice((el for el in root if _local(el.tag) == "Image"), image, None), None)


def _ome_zaug_record(root: ET.Element, image: int = 0) -> str | None:
    """The zaug record of an OME image: the key ``zaug`` of a map annotation the image refers to."""
    element = _ome_image(root, image)
    if element is None:
        return None
    refs = {el.get("ID") for el in element if _local(el.tag) == "AnnotationRef"}
    for annotation in root.iter():
        if _local(annotation.tag) == "MapAnnotation" and annotation.get("ID") in refs:
            found = next((m.text for m in annotation.iter() if _local(m.tag) == "M" and m.get("K") == "zaug"), None)
            if found is not None:
                return found
    return None


def _local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


#: the acquisition settings of an OME Channel that are carried to an OME-TIFF output
CHANNEL_SETTINGS = ("AcquisitionMode", "ContrastMethod", "EmissionWavelength", "EmissionWavelengthUnit",
                    "ExcitationWavelength", "ExcitationWavelengthUnit", "Fluor", "IlluminationType", "NDFilter",
                    "PinholeSize", "PinholeSizeUnit", "PockelCellSetting")


def ome_acquisition(xml: str | ET.Element, image: int, n_channels: int) -> dict:
    """An OME image's acquisition date, description and each channel's settings (as the file gives them);
    ``xml`` the document's text or its parsed root."""
    element = _ome_image(ET.fromstring(xml) if isinstance(xml, str) else xml, image)
    if element is None:
        return {}
    found: dict = {}
    for child in element:
        tag = _local(child.tag)
        if tag in ("AcquisitionDate", "Description") and child.text and child.text.strip():
            found["date" if tag == "AcquisitionDate" else "description"] = child.text.strip()
    pixels = next((el for el in element if _local(el.tag) == "Pixels"), None)
    channels = [el for el in pixels if _local(el.tag) == "Channel"] if pixels is not None else []
    settings = [{k: v[:MAX_SETTING] for k, v in el.attrib.items() if k in CHANNEL_SETTINGS} for el in channels]
    if len(settings) == n_channels and any(settings):
        found["channels"] = settings
    # zaug's own summary of an earlier output is not the user's description: it is written afresh
    own = "\n".join(line for line in found.pop("description", "").splitlines() if not line.startswith("made by zaug"))
    if own.strip():  # cut after zaug's line is taken out, so that no piece of it stays
        found["description"] = own.strip()[:MAX_SETTING]
    if "date" in found:
        found["date"] = found["date"][:MAX_SETTING]
    return found


#: the longest setting or description carried over (a file is not trusted)
MAX_SETTING = 2000


def checked_acquisition(raw) -> dict:
    """Acquisition settings as kept in zaug's own attributes (OME-Zarr, .npz): only what
    :func:`ome_acquisition` gives, of the right types; anything else is left out."""
    if not isinstance(raw, dict):
        return {}
    found = {key: raw[key][:MAX_SETTING] for key in ("date", "description") if isinstance(raw.get(key), str)}
    channels = raw.get("channels")
    if isinstance(channels, list) and all(isinstance(c, dict) for c in channels):
        found["channels"] = [{k: v[:MAX_SETTING] for k, v in c.items() if k in CHANNEL_SETTINGS and isinstance(v, str)}
                             for c in channels]
    return found


def _ome_channels_and_time(pixels: ET.Element | None, n_channels: int) -> dict:
    """Channel names and colours, and the time step (``TimeIncrement``, default unit seconds) of an OME
    ``Pixels``."""
    if pixels is None:
        return {}
    found: dict = {}
    channels = [el for el in pixels if el.tag.endswith("Channel")]
    names = [el.get("Name") for el in channels]
    if names and all(names):
        found["channel_names"] = names
    if len(channels) == n_channels:
        found["display"] = _display.from_ome_channels([el.get("Color") for el in channels])
    step, unit = pixels.get("TimeIncrement"), time_unit(pixels.get("TimeIncrementUnit", "s"))
    if step is not None and unit is not None:
        found["time"] = {"interval": float(step), "unit": unit}
    return found


#: LSM scan types (CZ_LSMINFO ScanType) of x-y planes; the others scan lines (x-z, x-t, ...)
LSM_PLANE_SCANS = (0, 3, 6, 7)
#: the pixel type an LSM header states (DataType; 0: one per channel)
LSM_DATA_TYPES = {1: np.uint8, 2: np.uint16, 5: np.float32}
#: what a CZ_LSMINFO ScanType other than an x-y scan is
LSM_SCANS = {1: "an x-z scan", 2: "a line scan", 4: "a time series of x-z scans", 5: "a time series of line scans",
             8: "an x-z scan", 9: "a time series of x-z scans", 10: "a line scan"}


def _check_lsm(path: Path, lsm: dict, dtype) -> None:
    """Refuse an LSM file that is not x-y planes of one stack, or whose pixels tifffile reads as another type
    than its header states (a layout it misreads)."""
    scan = lsm.get("ScanType", 0)
    if scan not in LSM_PLANE_SCANS:
        raise InputError(f"{path} is {LSM_SCANS.get(scan, f'an LSM scan of type {scan}')} (LSM ScanType {scan}), "
                         "not a stack of x-y planes, which zaug needs.")
    for key, what in (("DimensionP", "stage positions"), ("DimensionM", "mosaic tiles")):
        if int(lsm.get(key, 0) or 0) > 1:
            raise InputError(f"{path} holds {int(lsm[key])} {what}; zaug reads one stack at a time: save each as a "
                             "file of its own first (ZEN, or Fiji's Bio-Formats with 'open all series').")
    stated = LSM_DATA_TYPES.get(lsm.get("DataType"))
    if stated is not None and np.dtype(stated) != np.dtype(dtype):
        raise InputError(f"{path} states {np.dtype(stated)} pixels but reads as {np.dtype(dtype)} (a layout of its "
                         f"bits per sample that tifffile misreads); convert it to OME-TIFF with Fiji's Bio-Formats "
                         "first.")


def _lsm_physical(lsm: dict, axes: str, n_channels: int) -> dict:
    """Voxel size (the file's metres, in micrometres), time step, channel names and colours of a Zeiss LSM
    file's ``CZ_LSMINFO``; a stack whose z step is missing has an unknown voxel size, as in a plain TIFF.
    Its origin (the stage's position, of the image's centre) is not taken."""
    to_um = conversion_factor("m", COMMON_UNIT)
    size = {axis: without_binary_noise(float(value) * to_um) for axis in "zyx"
            if isinstance(value := lsm.get(f"VoxelSize{axis.upper()}"), (int, float)) and 0 < value < np.inf}
    physical = known_sizes(size, COMMON_UNIT, "LSM header", has_z="Z" in axes)
    interval = lsm.get("TimeIntervall")  # sic, the LSM specification's spelling
    if "T" in axes and isinstance(interval, (int, float)) and 0 < interval < np.inf:
        physical["time"] = {"interval": float(interval), "unit": "s"}
    colors = lsm.get("ChannelColors") or {}
    names = colors.get("ColorNames") or []
    if len(names) == n_channels > 1 and all(isinstance(n, str) and n.strip() for n in names):
        physical["channel_names"] = [n.strip()[:MAX_SETTING] for n in names]
    rgba = colors.get("Colors") or []
    if len(rgba) == n_channels > 1 and all(len(c) == 4 for c in rgba):  # red, green, blue, a byte unused
        physical["display"] = _display.from_colors([f"{r:02X}{g:02X}{b:02X}" for r, g, b, _ in rgba])
    return physical


def _imagej_time(ij: dict) -> dict:
    """ImageJ's frame interval (``finterval``, in ``tunit``, default seconds)."""
    unit = time_unit(ij.get("tunit", "sec"))
    if ij.get("finterval") is None or unit is None:
        return {}
    return {"time": {"interval": float(ij["finterval"]), "unit": unit}}


# what tifffile logs about a file it cannot read whole (it then reads what it can)
DAMAGE_SIGNS = ("invalid page offset", "corrupted", "truncated", "failed to read", "invalid value offset",
                # OME metadata naming more planes than the file holds: tifffile reads them as zeros
                "index out of range", "missing data are zeroed")


# what tifffile logs about a file it reads right, which says nothing to the user
QUIET_SIGNS = ("correcting lsm bitspersample tag",)  # an old LSM writer's tag, which tifffile reads


@contextlib.contextmanager
def _tifffile_errors(path: Path):
    """Turn tifffile's logged read problems into one sentence: an error where the file is damaged (a
    truncated file reads as fewer planes, silently), else a warning."""
    logger = logging.getLogger("tifffile")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    except Exception as exc:
        _refuse_damage(path, records, exc)
        if any("lsm bitspersample" in _tifffile_message(r).lower() for r in records):
            raise InputError(f"{path} stores its bits per sample in a layout of LSM files that tifffile misreads; "
                             "convert it to OME-TIFF with Fiji's Bio-Formats first.") from exc
        raise
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    _refuse_damage(path, records)
    for message in dict.fromkeys(_tifffile_message(r) for r in records):
        if any(sign in message.lower() for sign in QUIET_SIGNS):
            continue
        warnings.warn(ZaugWarning(f"{path}: {message}"), stacklevel=4)


def _refuse_damage(path: Path, records: list[logging.LogRecord], exc: Exception | None = None) -> None:
    damaged = [m for m in map(_tifffile_message, records) if any(sign in m.lower() for sign in DAMAGE_SIGNS)]
    if damaged:
        raise InputError(f"{path} looks damaged or truncated ({damaged[0]}), so it cannot be read whole.") from exc


def _tifffile_message(record: logging.LogRecord) -> str:
    """A tifffile log line without the object it was logged for (``<tifffile.TiffPages @8> ...``)."""
    return re.sub(r"^<[^>]*>\s*", "", record.getMessage()).strip()


def _imagej_calibrated(data, ij: dict, path: Path):
    """The values Fiji shows: its signed 16-bit images are stored as uint16 plus 32768, with a calibration
    (``cf=0``, a straight line, ``c0=-32768``, ``c1=1``) that undoes it; other calibrations are left to
    the user, with a warning."""
    if "cf" not in ij:
        return data
    signed = ij.get("cf") == 0 and float(ij.get("c0", 0)) == -32768 and float(ij.get("c1", 1)) == 1
    if signed and np.dtype(data.dtype) == np.uint16:
        if isinstance(data, np.ndarray) and not isinstance(data, np.memmap):
            return (data.astype(np.int32) - 32768).astype(np.int16)
        import dask.array as da

        lazy = data if isinstance(data, da.Array) else da.from_array(data, chunks=(1,) * (data.ndim - 2) + (-1, -1))
        return (lazy.astype(np.int32) - 32768).astype(np.int16)
    warnings.warn(ZaugWarning(f"{path}: its ImageJ calibration of the values (function {ij.get('cf')}, "
                              f"{ij.get('vunit', 'no unit')}) is not applied; zaug works on the stored values."),
                  stacklevel=4)
    return data


def _planes_saved_one_by_one(tif: tifffile.TiffFile) -> bool:
    """Whether every series is a single plane of one shape and type (a stack saved page by page with
    metadata of its own on each page, which tifffile reads as a series per page)."""
    series = tif.series
    first = series[0]
    return len(series) > 1 and all(len(s.shape) == 2 and s.shape == first.shape and s.dtype == first.dtype
                                   and len(s.pages) == 1 for s in series)


def _image_series(tif: tifffile.TiffFile) -> list:
    """The file's image series, less an LSM file's thumbnails (tifffile's second series of one)."""
    return tif.series[:1] if tif.is_lsm else tif.series


def _given_series(tif: tifffile.TiffFile, path: Path, series: int) -> int:
    count = len(_image_series(tif))
    if not 0 <= series < count:
        raise InputError(f"{path} holds {count} image series (0 to {count - 1}); "
                         f"--series {series} is not one of them.")
    return series


def _pick_series(tif: tifffile.TiffFile, path: Path) -> int:
    """Which image series to read: the first, unless it is a single plane (an overview) and a later one
    is a stack; a warning names the series read when there are several."""
    series = _image_series(tif)
    chosen = 0
    if len(series) > 1:
        stacks = [i for i, s in enumerate(series) if len(s.shape) >= 3 and not s.axes.endswith("S")]
        if len(series[0].shape) < 3 and stacks:
            chosen = stacks[0]
        shapes = ", ".join(f"{i}: {'x'.join(map(str, s.shape))} ({s.axes})" for i, s in enumerate(series[:4]))
        warnings.warn(ZaugWarning(
            f"{path} holds {len(series)} image series ({shapes}{', ...' if len(series) > 4 else ''}); zaug reads "
            f"series {chosen}; choose another with --series N (series= in read_volume)."), stacklevel=4)
    return chosen


class TiffPlanes:
    """The planes of a TIFF file's first series as an array-like read on demand.

    One page holds one plane. Indexing decodes only the pages it touches (each
    whole: a compressed page cannot be read in part), so a dask array of lateral
    chunks holds a tile's part of each plane, never the stack; a tile reads each
    of its pages again. It pickles as its path: the workers of a dask cluster
    open the file themselves (each thread keeps its own handle).
    """

    def __init__(self, path: Path, shape: tuple, dtype, series: int = 0):
        self.path, self.shape, self.dtype, self.series = Path(path), tuple(shape), np.dtype(dtype), int(series)
        self.ndim = len(self.shape)
        self._local = threading.local()

    @staticmethod
    def fits(series) -> bool:
        """Whether ``series`` stores one plane per page (not RGB samples, not tiles of planes)."""
        shape = tuple(series.shape)
        return (len(shape) >= 3 and len(series.pages) == int(np.prod(shape[:-2]))
                and tuple(series.keyframe.shape) == shape[-2:])

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype, "series": self.series}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["shape"], state["dtype"], state.get("series", 0))

    def _pages(self):
        if getattr(self._local, "pages", None) is None:
            tif = tifffile.TiffFile(self.path)
            self._local.tif, self._local.pages = tif, tif.series[self.series].pages
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


def _memmap(path: Path, series: int = 0) -> np.ndarray | None:
    try:
        return tifffile.memmap(path, series=series, mode="r")
    except ValueError:  # compressed or not contiguous: cannot be mapped
        return None


#: the ImageJ version tifffile writes into the ImageJ metadata of the files it makes
TIFFFILE_IMAGEJ = "1.11a"


def _imagej_physical(tif: tifffile.TiffFile) -> dict:
    """Voxel size of an ImageJ hyperstack or of a plain TIFF's resolution tags.

    ImageJ's unit (in its description) wins over the ResolutionUnit tag, and a
    missing ``spacing`` in an ImageJ stack means one unit (ImageJ omits a
    spacing of 1), unless tifffile wrote the file (it omits a spacing it was
    not given): then the z spacing is unknown, as in a plain TIFF. A plain
    TIFF has no z spacing at all, so when its tags give a lateral size in
    centimetres the voxel size is left unknown, with that size in
    ``unknown_z``, rather than guessed. Dots per inch (the TIFF default unit,
    72 dpi a common default value) describe a printer, not a microscope, and a
    plain TIFF's ResolutionUnit NONE no length at all: both are ignored.
    """
    ij = tif.imagej_metadata or {}
    tags = tif.pages[0].tags
    res_unit = tags.get("ResolutionUnit")
    unit = ij.get("unit")
    if unit is None:
        unit = {2: "in", 3: "cm"}.get(int(res_unit.value) if res_unit is not None else 2)
    unit = normalize_unit(unit) if unit is not None else None
    physical: dict = {}
    if "zaug_z_positions" in ij:
        physical["z_positions"] = json.loads(ij["zaug_z_positions"])
    if unit == "in":
        return physical
    lateral = {}
    for axis, tag in (("y", "YResolution"), ("x", "XResolution")):
        t = tags.get(tag)
        if t is not None:
            num, den = t.value
            if num > 0 and den > 0 and (num, den) != (1, 1):
                lateral[axis] = den / num
    if ij and "spacing" not in ij and ij.get("ImageJ") == TIFFFILE_IMAGEJ and lateral and unit not in (None, "pixel"):
        # ImageJ leaves out a spacing of 1; tifffile leaves it out when it was not given one
        physical.update(_unknown_z(lateral, unit), **_imagej_origin(ij, {}), origin_in_pixels=True)
        return physical
    if ij:
        physical.update(lateral)
        if "spacing" in ij:
            physical["z"] = float(ij["spacing"])
        if unit is not None or physical.keys() & {"x", "y", "z"}:
            physical["unit"] = unit if unit is not None else "pixel"
        physical.update(_imagej_origin(ij, physical))
        physical["origin_in_pixels"] = True  # ImageJ's own unit for it: a new voxel size moves it
        return physical
    if not lateral or unit != "cm":  # ResolutionUnit NONE: an aspect ratio in no unit, which says nothing more
        return physical
    lateral = {a: float(f"{v * conversion_factor('cm', COMMON_UNIT):.12g}") for a, v in lateral.items()}
    physical.update(_unknown_z(lateral, COMMON_UNIT))
    return physical


def _imagej_origin(ij: dict, physical: dict) -> dict:
    """``z_origin`` and ``yx_origin`` from ImageJ's ``zorigin``, ``yorigin``, ``xorigin``.

    ImageJ counts its origin in pixels, the other way: pixel ``i`` lies at
    ``(i - origin) * size``, so the first pixel lies at ``-origin * size``.
    The sizes are those ``read_volume`` will take (a missing spacing is one unit).
    """
    size = {"z": physical.get("z", 1.0), "y": physical.get("y", physical.get("x", 1.0)),
            "x": physical.get("x", physical.get("y", 1.0))}
    return origin_entries({axis: without_binary_noise(-float(ij[f"{axis}origin"]) * size[axis]) for axis in "zyx"
                           if isinstance(ij.get(f"{axis}origin"), (int, float))})


def known_sizes(size: dict, unit: str, source: str, has_z: bool = True) -> dict:
    """Entries for the voxel sizes a microscope file's ``source`` gives (``size``: ``z``, ``y``, ``x`` found):
    all of them; the lateral ones only, with z unknown as in a plain TIFF; or, a lateral one missing, none,
    said (the other is not taken for it)."""
    if not {"y", "x"} <= size.keys():
        return {"warnings": [f"its {source} gives no usable pixel size, so the voxel size is unknown (1 pixel); "
                             "give it with --voxel-size Z Y X --unit um."]} if size else {}
    if "z" not in size and has_z:
        return _unknown_z(size, unit)
    return dict(size, unit=unit)


def _unknown_z(lateral: dict, unit: str) -> dict:
    """Entries for a file that gives a lateral pixel size but no z spacing.

    zaug has one unit for all three axes, so the voxel size is unknown (pixels)
    and the lateral size is kept only to tell the user (see ``read_volume``).
    """
    y, x = lateral.get("y", lateral.get("x")), lateral.get("x", lateral.get("y"))
    return {"unit": "pixel", "unknown_z": {"y": y, "x": x, "unit": unit}}


def _ome_physical(pixels: ET.Element | None) -> dict:
    """Voxel size, z positions and origin of an OME-XML ``Pixels`` element, in one unit.

    ``PhysicalSize*`` (default unit: micrometre) in different units are
    converted to micrometres; ``Plane`` positions to that unit too (a position
    without its unit, e.g. ``PositionZUnit``, is taken in the unit of the axis's
    ``PhysicalSize``, as zaug wrote ``PositionZ`` before it wrote the unit).
    Planes evenly spaced by ``PhysicalSizeZ`` give ``z_origin``, others
    ``z_positions``; the first plane's ``PositionY``/``PositionX`` give
    ``yx_origin``. Positions in no physical unit are ignored. Units that cannot
    be converted leave the voxel size unknown, with a warning (``warnings``).
    """
    if pixels is None:
        return {}
    sizes = {}
    for axis in "zyx":
        value = pixels.get(f"PhysicalSize{axis.upper()}")
        if value is not None:
            sizes[axis] = (float(value), normalize_unit(pixels.get(f"PhysicalSize{axis.upper()}Unit", "\u00b5m")))
    if not sizes:
        return {}  # nothing physical: positions in no stated unit would be meaningless too
    converted = in_one_unit(sizes)
    if converted is None:
        return unconvertible_units(sizes, "the OME metadata")
    physical, unit = converted
    if "y" not in physical and "x" not in physical:
        return {"warnings": [f"the OME metadata gives a z spacing ({physical['z']:g} {unit}) but no lateral pixel "
                             "size, so the voxel size is taken as unknown; pass --voxel-size Z Y X."]}
    physical["unit"] = unit
    planes = [el for el in pixels if el.tag.endswith("Plane")]
    size_units = {axis: sizes[axis][1] if axis in sizes else unit for axis in "zyx"}
    # the first time point and channel: a stage that drifts between time points moves them all
    first = [p for p in planes if int(p.get("TheT", 0)) == 0 and int(p.get("TheC", 0)) == 0]
    z = {(int(p.get("TheZ", 0)), _plane_position(p, "Z", size_units["z"], unit))
         for p in first if p.get("PositionZ") is not None}
    positions = [pos for _, pos in sorted(z)] if all(pos is not None for _, pos in z) else []
    problem = z_positions_problem(positions, len(positions)) if len(positions) > 1 else None
    if problem:  # a stage moving down, a position logged twice: the planes' order is kept, the positions not
        physical["warnings"] = [f"its OME plane positions (PositionZ) {problem}, so they are not used: the planes "
                                "are taken as evenly spaced from z 0 in their order"]
    elif len(positions) > 1:
        if "z" in physical and np.allclose(np.diff(positions), physical["z"], rtol=1e-6, atol=0):
            physical["z_origin"] = positions[0]  # even planes, as PhysicalSizeZ says: an origin
        else:
            physical["z_positions"] = positions
    if planes:
        lateral = {axis: _plane_position(planes[0], axis.upper(), size_units[axis], unit) for axis in "yx"}
        physical.update(origin_entries({axis: pos for axis, pos in lateral.items() if pos is not None}))
    if "z" not in physical and "z_positions" not in physical:
        physical = _unknown_z(physical, unit)
    return physical


def _plane_position(plane: ET.Element, axis: str, size_unit: str, unit: str) -> float | None:
    """A Plane's ``Position{axis}`` in ``unit``, or None when it has none or gives it in no physical unit.

    A position without its unit is taken in the unit of the axis's
    ``PhysicalSize`` (as zaug wrote ``PositionZ`` before it wrote the unit).
    """
    value = plane.get(f"Position{axis}")
    if value is None:
        return None
    factor = conversion_factor(normalize_unit(plane.get(f"Position{axis}Unit", size_unit)), unit)
    if factor is None:  # "reference frame", pixels: not comparable with the voxel size
        return None
    return without_binary_noise(float(value) * factor)


def write_tiff(volume: Volume, path: Path, ome: bool | None = None) -> None:
    """Write ImageJ TIFF (default) or OME-TIFF (``ome=True``, ``*.ome.tif``).

    ImageJ TIFF holds only uint8, uint16 and float32; other types go to OME-TIFF
    so that the data type is never changed silently. The origin goes into
    ImageJ's ``zorigin``/``yorigin``/``xorigin`` (and uneven z positions into
    ``zaug_z_positions``), or OME's Plane positions on every plane.
    """
    data = np.asarray(volume.data)
    name = path.name.lower()
    if ome is None:
        ome = name.endswith((".ome.tif", ".ome.tiff")) or data.dtype.type not in IMAGEJ_DTYPES
    vz, vy, vx = volume.voxel_size
    if ome:
        metadata = {"axes": volume.axes}
        unit = ome_unit(volume.unit)  # "pixel" for pixels, so that an unknown size reads back unknown
        if unit:  # a unit OME cannot name is left out: the sizes then read back unknown, not in um
            for axis, size in zip("ZYX", (vz, vy, vx)):
                metadata[f"PhysicalSize{axis}"] = size
                metadata[f"PhysicalSize{axis}Unit"] = unit
        if volume.z_positions is not None or volume.z_origin != 0 or any(volume.yx_origin):
            metadata["Plane"] = _plane_positions(volume, unit)
        channels = _ome_channel_entries(volume)
        if any(channels):
            metadata["Channel"] = channels
        if volume.time_interval is not None:
            metadata.update(TimeIncrement=volume.time_interval,
                            TimeIncrementUnit=time_unit_in(volume.time_unit, "ome"))
        acquisition = volume.metadata.get("acquisition") or {}
        if acquisition.get("date"):
            metadata["AcquisitionDate"] = acquisition["date"]
        record = file_record_text(volume)
        if record is not None:  # which planes are acquired and how zaug made the others: OMERO shows both
            metadata["MapAnnotation"] = {"zaug": record}
        description = "\n".join(filter(None, (acquisition.get("description"), summary(volume))))
        if description:
            metadata["Description"] = description
        # minisblack: else tifffile takes a last axis of 3 or 4 pixels for colour samples
        tifffile.imwrite(path, data, ome=True, metadata=metadata, compression="zlib", photometric="minisblack",
                         **_resolution_tags(volume.unit, vy, vx))
        return
    if volume.channel_names:
        warnings.warn(ZaugWarning(f"ImageJ TIFF holds no channel names, so {', '.join(volume.channel_names)} are "
                                  "not stored; write .ome.tif or .ome.zarr to keep them."), stacklevel=3)
    acquisition = volume.metadata.get("acquisition") or {}
    if acquisition.get("channels") or acquisition.get("date"):
        warnings.warn(ZaugWarning("ImageJ TIFF holds no acquisition settings, so the input's "
                                  f"{_settings_named(acquisition)} are not stored; write .ome.tif to keep them."),
                      stacklevel=3)
    if volume.data.shape[-1] == 1:  # tifffile then writes the stack as one plane, which no reader takes back
        raise OutputError("ImageJ TIFF cannot hold planes 1 pixel wide; write .ome.tif, .ome.zarr or .npz.")
    # ImageJ orders hyperstacks TZCYX.
    order = [volume.axes.index(a) for a in "TZCYX" if a in volume.axes]
    ij_axes = "".join(volume.axes[i] for i in order)
    metadata = {"spacing": vz, "unit": imagej_unit(volume.unit), "axes": ij_axes, **_imagej_origin_metadata(volume)}
    if volume.z_positions is not None:
        metadata["zaug_z_positions"] = json.dumps([float(z) for z in volume.z_positions])
    if volume.time_interval is not None:
        metadata.update(finterval=volume.time_interval, tunit=time_unit_in(volume.time_unit, "imagej"))
    metadata.update(_display.to_imagej(volume.metadata.get("display"), volume.n_channels))
    metadata.update(_imagej_provenance(volume))
    tifffile.imwrite(path, np.transpose(data, order), imagej=True, metadata=metadata, photometric="minisblack",
                     resolution=(1.0 / vx, 1.0 / vy), compression="zlib")


def _ome_channel_entries(volume: Volume) -> list[dict]:
    """Per channel: its name, colour and the input's acquisition settings (wavelengths, fluorophore, ...)."""
    names = _display.channel_labels(volume)
    colors = _display.to_ome_colors(volume.metadata.get("display"), volume.n_channels)
    settings = channel_settings(volume)
    entries = []
    for c in range(volume.n_channels):
        entry = dict(settings[c]) if settings else {}
        if names:
            entry["Name"] = names[c]
        if colors is not None:
            entry["Color"] = colors[c]
        entries.append(entry)
    return entries


def channel_settings(volume: Volume) -> list[dict] | None:
    """The acquisition settings of each channel that an OME input gave, where they fit ``volume``'s channels."""
    settings = (volume.metadata.get("acquisition") or {}).get("channels")
    return settings if isinstance(settings, list) and len(settings) == volume.n_channels else None


def _settings_named(acquisition: dict) -> str:
    names = sorted({k.replace("Unit", "") for c in acquisition.get("channels") or () for k in c})
    words = {"EmissionWavelength": "emission wavelength", "ExcitationWavelength": "excitation wavelength",
             "Fluor": "fluorophore", "PinholeSize": "pinhole size"}
    shown = [words.get(n, n) for n in names] + (["acquisition date"] if acquisition.get("date") else [])
    return ", ".join(shown[:4]) + (" and more" if len(shown) > 4 else "")


def _imagej_provenance(volume: Volume) -> dict:
    """The zaug record, each plane's label (Fiji shows it above the image) and a line for Image > Show Info."""
    record = file_record_text(volume)
    if record is None:
        return {}
    labels = plane_labels(volume)
    n_times = volume.data.shape[volume.axes.index("T")] if "T" in volume.axes else 1
    # one label per image, in ImageJ's order (time, then z, then channel)
    per_image = [labels[z] for _ in range(n_times) for z in range(volume.nz) for _ in range(volume.n_channels)]
    return {"zaug": record, "Info": summary(volume), "Labels": per_image}


def _resolution_tags(unit: str, vy: float, vx: float) -> dict:
    """TIFF resolution tags that agree with the OME metadata, for readers that use only the tags.

    Pixels per centimetre with ResolutionUnit CENTIMETER when the unit is a
    length (the TIFF tags cannot say micrometre); else ResolutionUnit NONE, the
    tags then giving the pixel aspect ratio only.
    """
    factor = conversion_factor(unit, "cm")
    if factor is not None:
        per_cm = (1.0 / (vx * factor), 1.0 / (vy * factor))
        if all(1e-6 <= r <= 4e9 for r in per_cm):  # stored as 32-bit rationals
            return {"resolution": per_cm, "resolutionunit": "CENTIMETER"}
        return {"resolutionunit": "NONE"}
    return {"resolution": (1.0 / vx, 1.0 / vy), "resolutionunit": "NONE"}


def _imagej_origin_metadata(volume: Volume) -> dict:
    """ImageJ's ``zorigin``, ``yorigin``, ``xorigin`` where not zero: the origin in pixels, counted the other way."""
    origin = zip("zyx", (volume.z_coords()[0], *volume.yx_origin), volume.voxel_size)
    return {f"{axis}origin": -float(o) / size for axis, o, size in origin if o != 0}


def _plane_positions(volume: Volume, unit: str | None) -> dict[str, list]:
    """OME Plane ``PositionZ``, ``PositionY``, ``PositionX`` (and their unit) of every plane."""
    # OME stores one Plane per (T, C, Z) image, in the order tifffile writes them.
    lead = int(np.prod(volume.data.shape[:-3], dtype=int))
    y, x = volume.yx_origin
    z = volume.z_coords().tolist() * lead
    positions = {"PositionZ": z, "PositionY": [y] * len(z), "PositionX": [x] * len(z)}
    if unit:
        positions.update({f"Position{axis}Unit": [unit] * len(z) for axis in "ZYX"})
    return positions
