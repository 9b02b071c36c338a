"""BigDataViewer datasets (Fiji's BigStitcher and "Export Current Image as XML/HDF5", mesoSPIM, npy2bdv):
an XML file and the HDF5 file it names, read with h5py (the optional extra ``zaug[ims]``).

Either file may be given: an ``.xml`` names its HDF5 file (``ImageLoader``
``bdv.hdf5``), an ``.h5`` is read with the XML beside it that names it. A view
setup (a channel, tile, angle or illumination) is one image series
(``series`` picks it); its time points are the T axis, at full resolution
(``t00000/s00/0/cells``). The voxel size is the setup's ``voxelSize``;
BigDataViewer keeps unsigned 16-bit pixels as signed ones, read back as
unsigned. The registrations (where each view lies) are not read.
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError, ZaugWarning
from ._hdf5 import H5Planes, check_filters, h5py_for
from ._reads import read_planes
from ._units import normalize_unit, without_binary_noise

#: the full-resolution array of a time point and setup
CELLS = "t{T:05d}/s{S:02d}/0/cells"


def read_bdv(path: Path, lazy: bool = False, series: int | None = None) -> tuple[object, str, dict]:
    """Read one view setup of a BigDataViewer dataset (the first, or ``series``).

    Returns
    -------
    data, axes, physical
        As :func:`zaug.io.tiff.read_tiff`: the pixels, their axis letters
        (``ZYX``, ``TZYX`` for several time points) and the voxel size found.
    """
    h5py = h5py_for("a BigDataViewer dataset", "ims", "Fiji's BigDataViewer or Bio-Formats")
    xml, h5_path = _pair(path)
    physical: dict = {}
    with h5py.File(h5_path, "r") as f:
        in_file = sorted(int(m.group(1)) for m in map(re.compile(r"s(\d+)").fullmatch, f) if m)
        if not xml and not in_file:
            raise InputError(f"{h5_path} is an HDF5 file but not a BigDataViewer dataset (no s00 group); zaug reads "
                             "HDF5 files of BigDataViewer and Imaris: convert others to OME-TIFF first.")
        setups = sorted(xml) if xml else in_file
        setup = _pick_setup(path, setups, series)
        times = sorted(int(m.group(1)) for m in map(re.compile(r"t(\d+)").fullmatch, f)
                       if m and CELLS.format(T=int(m.group(1)), S=setup) in f)
        if not times:
            raise InputError(f"{h5_path} holds no image of view setup {setup} (no {CELLS.format(T=0, S=setup)}).")
        check_filters(h5_path, [f[CELLS.format(T=t, S=setup)] for t in times])
        cells = f[CELLS.format(T=times[0], S=setup)]
        size, dtype = tuple(cells.shape), cells.dtype
    if len(size) != 3:
        raise InputError(f"{h5_path} holds {len(size)}D arrays where BigDataViewer keeps 3D ones.")
    if xml:
        physical.update(_voxel_size(xml[setup]))
    else:
        physical["warnings"] = [f"no BigDataViewer XML beside {h5_path.name} names it, so the voxel size is unknown; "
                                "open the .xml file instead, or give --voxel-size Z Y X."]
    if len(setups) > 1:  # which one was read, for the output's record
        physical["series"] = setups.index(setup)
    lead = [("T", tuple(times))] if len(times) > 1 else []
    planes = H5Planes(h5_path, CELLS, lead, {"T": times[0], "S": setup}, size, dtype,
                      view=np.uint16 if dtype == np.int16 else None)
    axes = "T" * bool(lead) + "ZYX"
    return read_planes(planes, h5_path, axes, lazy), axes, physical


def _pair(path: Path) -> tuple[dict[int, ET.Element], Path]:
    """The view setups of the dataset's XML (by id; empty without one) and its HDF5 file."""
    if path.suffix.lower() == ".xml":
        root = _parse(path)
        if root is None or root.tag != "SpimData":
            raise InputError(f"{path} is not a BigDataViewer dataset (SpimData XML).")
        return _setups(root), _h5_of(path, root)
    for candidate in sorted(path.parent.glob("*.xml")):  # the XML beside it that names it
        root = _parse(candidate)
        if root is not None and root.tag == "SpimData" and _h5_of(candidate, root, check=False) == path.resolve():
            return _setups(root), path
    return {}, path


def _parse(path: Path) -> ET.Element | None:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None


def _h5_of(xml_path: Path, root: ET.Element, check: bool = True) -> Path | None:
    loader = root.find("./SequenceDescription/ImageLoader")
    kind = loader.get("format") if loader is not None else None
    if kind != "bdv.hdf5":
        if not check:
            return None
        raise InputError(f"{xml_path} keeps its pixels with the {kind or 'unnamed'} image loader; zaug reads "
                         "BigDataViewer's HDF5 one (bdv.hdf5): re-save the dataset as HDF5 in Fiji (BigStitcher, "
                         "or Plugins > BigDataViewer > Export Current Image as XML/HDF5).")
    element = loader.find("hdf5")
    name = (element.text or "").strip() if element is not None else ""
    if not name:
        if check:
            raise InputError(f"{xml_path} does not name its HDF5 file.")
        return None
    h5 = Path(name) if element.get("type") == "absolute" else xml_path.parent / name
    if check and not h5.is_file():
        raise InputError(f"{xml_path} keeps its pixels in {h5}, which does not exist; copy it beside the XML file.")
    return h5.resolve()


def _setups(root: ET.Element) -> dict[int, ET.Element]:
    found = {}
    for setup in root.iterfind("./SequenceDescription/ViewSetups/ViewSetup"):
        try:
            found[int((setup.findtext("id") or "").strip())] = setup
        except ValueError:
            continue
    return found


def _pick_setup(path: Path, setups: list[int], series: int | None) -> int:
    """The view setup to read: ``series``, else the first (with a warning naming them when there are several)."""
    if not setups:
        raise InputError(f"{path} names no view setup.")
    if series is not None:
        if not 0 <= series < len(setups):
            raise InputError(f"{path} holds {len(setups)} image series (view setups, 0 to {len(setups) - 1}); "
                             f"--series {series} is not one of them.")
        return setups[series]
    if len(setups) > 1:
        warnings.warn(ZaugWarning(
            f"{path} holds {len(setups)} view setups (channels, tiles or angles); zaug reads the first (setup "
            f"{setups[0]}); choose another with --series N (series= in read_volume)."), stacklevel=4)
    return setups[0]


def _voxel_size(setup: ET.Element) -> dict:
    """The setup's voxel size (``voxelSize``: ``unit`` and ``size`` as x y z), or a warning that it has none."""
    unknown = {"warnings": ["its view setup gives no voxel size, so it is unknown; give it with --voxel-size Z Y X."]}
    text = setup.findtext("./voxelSize/size")
    try:
        x, y, z = (float(v) for v in (text or "").split())
        unit = normalize_unit((setup.findtext("./voxelSize/unit") or "um").strip())
    except (InputError, ValueError):
        return unknown
    if not all(np.isfinite(v) and v > 0 for v in (x, y, z)):
        return unknown
    return {"z": without_binary_noise(z), "y": without_binary_noise(y), "x": without_binary_noise(x), "unit": unit}
