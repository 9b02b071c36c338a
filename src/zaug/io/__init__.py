"""Reading and writing volumes with their voxel size.

Formats, chosen by the path:

- ``*.tif``, ``*.tiff``: ImageJ hyperstack (``spacing``, resolution, unit) or
  OME-TIFF (``PhysicalSize*``) on reading; ImageJ TIFF on writing (OME-TIFF when
  the name ends in ``.ome.tif`` or ImageJ cannot hold the data type);
- ``*.lsm``: Zeiss LSM (a TIFF with its voxel size in metres), read only;
- ``*.czi``: Zeiss CZI, read only, with the optional pylibCZIrw (``zaug[czi]``): a scene is a series;
- ``*.ims``: Imaris (HDF5), read only, with the optional h5py (``zaug[ims]``): the full resolution;
- ``*.xml``, ``*.h5``: a BigDataViewer dataset (XML and HDF5), read only, with h5py: a view setup is a
  series;
- ``*.zarr`` folders: OME-Zarr (NGFF 0.4 ``scale``);
- ``*.npy`` (pixels only) and ``*.npz`` (pixels, voxel size, unit, axes).

A volume has one unit for its three axes: sizes given in several (OME
``PhysicalSize*`` and ``PositionZ``, NGFF axes) are converted to micrometres.
An unknown voxel size is 1 ``pixel`` on every axis, as is one that a file gives
only in part (a plain TIFF's resolution in centimetres, an OME-TIFF without
``PhysicalSizeZ``: no z spacing), with a :class:`~zaug.ZaugWarning` that says
how to set it (``voxel_size``, ``--voxel-size``); an ImageJ stack without
``spacing`` has ImageJ's z step of 1 unit (ImageJ leaves a spacing of 1 out).
TIFF resolution in inches (72 dpi is a writer's default) is ignored.

The origin (the physical position of the first voxel) is kept in
:attr:`~zaug.Volume.z_origin` and :attr:`~zaug.Volume.yx_origin` and written
back: OME-Zarr's ``translation`` (after the multiscale's own
transformations), OME-TIFF's ``PositionZ``/``PositionY``/``PositionX`` (z from
every plane, y and x from the first), ImageJ's ``zorigin``/``yorigin``/``xorigin``
(in pixels, counted the other way: an origin ``o`` is ``-o / size``) and
``.npz``'s ``z_origin``/``yx_origin``. With a ``voxel_size`` given to
:func:`read_volume` the origin follows it: an origin kept in pixels (ImageJ's, or
a file without a physical unit) stays on the same pixel, one in a physical unit
is converted to the unit given (and dropped, with a warning, where it cannot be).

Channel names (:attr:`~zaug.Volume.channel_names`: OME ``Channel`` names,
OME-Zarr ``omero`` labels) and the time step (:attr:`~zaug.Volume.time_interval`,
``time_unit``, ``time_origin``: ImageJ ``finterval``/``tunit``, OME
``TimeIncrement``, OME-Zarr's ``t`` axis) are read and written back where the
format holds them, and so are the colour and display range of each channel
(``metadata["display"]``: ImageJ LUTs, ``Ranges`` and composite mode, OME
``Channel Color``, OME-Zarr ``omero`` colours and windows), so that an output
opens in Fiji or napari as its input did. Of a TIFF file with several image series the first stack is
read (with a warning); a damaged or truncated TIFF is refused.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from zaug import Volume
>>> from zaug.io import read_volume, write_volume
>>> vol = Volume(np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8), (0.5, 0.1, 0.1), "um")
>>> scratch = tempfile.TemporaryDirectory()  # removed with its contents when done
>>> path = os.path.join(scratch.name, "stack.tif")
>>> _ = write_volume(vol, path)
>>> read_volume(path)
Volume(shape=(4, 8, 8), dtype=uint16, axes='ZYX', voxel_size=(0.5, 0.1, 0.1) um)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, OutputError, ZaugWarning
from ..provenance import from_file_record, is_made_by_zaug
from ..volume import CANONICAL_AXES, Volume, z_positions_problem
from ._atomic import atomic_path, check_output_path, is_url
from ._units import checked_unit, conversion_factor, normalize_unit, without_binary_noise
from .bdv import read_bdv
from .czi import read_czi
from .ims import read_ims
from .numpy_io import read_numpy, write_numpy
from .omezarr import is_zarr_node, read_ome_zarr, write_ome_zarr
from .tiff import read_tiff, write_tiff

__all__ = ["read_volume", "write_volume", "check_output_path", "atomic_path", "format_of", "stored_dtype",
           "check_storable"]

TIFF_SUFFIXES = (".tif", ".tiff")
#: microscope files zaug reads but does not write (an output is named .tif): their format and what they are
READ_ONLY = {".lsm": ("tiff", "a Zeiss LSM file"), ".czi": ("czi", "a Zeiss CZI file"),
             ".ims": ("ims", "an Imaris file"), ".xml": ("bdv", "a BigDataViewer XML file"),
             ".h5": ("bdv", "an HDF5 file"), ".hdf5": ("bdv", "an HDF5 file")}
NUMPY_SUFFIXES = (".npy", ".npz")


#: microscope vendors' and other formats zaug does not read, by suffix: a reader is told how to convert them
OTHER_FORMATS = {".lif": "a Leica LIF file",
                 ".lof": "a Leica LOF file", ".nd2": "a Nikon ND2 file", ".oib": "an Olympus OIB file",
                 ".oif": "an Olympus OIF file", ".vsi": "an Olympus VSI file", ".oir": "an Olympus OIR file",
                 ".dv": "a DeltaVision file", ".r3d": "a DeltaVision file",
                 ".stk": "a MetaMorph STK file", ".ics": "an ICS file", ".ids": "an ICS file", ".n5": "an N5 store",
                 ".mrc": "an MRC file", ".nrrd": "an NRRD file",
                 ".nii": "a NIfTI file", ".nii.gz": "a NIfTI file", ".klb": "a KLB file", ".sld": "a SlideBook file",
                 ".ome.xml": "an OME-XML file", ".png": "a PNG image", ".jpg": "a JPEG image"}


def format_of(path: str | os.PathLike, reading: bool = False) -> str:
    """``'tiff'``, ``'ome-zarr'``, ``'numpy'`` (or, ``reading``, ``'czi'``, ``'ims'``, ``'bdv'``) from the path's
    name (an existing zarr folder whatever its name: a series or field inside a store, ``plate.zarr/A/1/0``);
    ``reading`` a format zaug does not read says how to convert it."""
    name = str(path).lower().rstrip("/\\")  # a folder typed with its separator (Windows: "a.zarr\\")
    if name.endswith(TIFF_SUFFIXES):
        return "tiff"
    if name.endswith(".zarr"):
        return "ome-zarr"
    if name.endswith(NUMPY_SUFFIXES):
        return "numpy"
    if is_zarr_node(Path(path)):
        return "ome-zarr"
    read_only = next((kind for suffix, kind in READ_ONLY.items() if name.endswith(suffix)
                      and not name.endswith(".ome.xml")), None)  # OME-XML holds no pixels
    if read_only and reading:
        return read_only[0]
    if read_only:
        raise InputError(f"{path} names {read_only[1]}, which zaug reads but does not write: name the output "
                         ".tif, .ome.tif, .ome.zarr or .npz.")
    other = next((kind for suffix, kind in OTHER_FORMATS.items() if name.endswith(suffix)), None)
    if reading and not Path(path).exists():
        raise InputError(f"{path} does not exist.")
    if reading and other:
        raise InputError(f"{path} is {other}, which zaug does not read: convert it to OME-TIFF or OME-Zarr "
                         "first, with its voxel size (Fiji: open it with Bio-Formats, then File > Save As > "
                         "OME-TIFF; or Bio-Formats' bfconvert or bioformats2raw on the command line).")
    raise InputError(
        f"cannot tell the format of {path}: use a name ending in .tif, .tiff, .ome.tif, .zarr, .npy or .npz."
    )


def read_volume(path: str | os.PathLike, axes: str | None = None,
                voxel_size: Sequence[float] | None = None, unit: str | None = None,
                lazy: bool = False, series: int | None = None) -> Volume:
    """Read a volume and its voxel size.

    Parameters
    ----------
    path : path-like
        TIFF file (Zeiss ``.lsm`` too), Zeiss ``.czi`` file (with pylibCZIrw),
        Imaris ``.ims`` file or BigDataViewer ``.xml``/``.h5`` (with h5py), OME-Zarr
        folder, ``.npy`` or ``.npz`` file.
    axes : str, optional
        Axis letters of the stored array (e.g. ``"ZYX"``, ``"ZCYX"``), overriding
        the file's. Letters are reordered to zaug's ``TCZYX`` order.
    voxel_size : sequence of 3 floats, optional
        ``(z, y, x)`` physical voxel size, overriding the file's.
    unit : str, optional
        Unit of ``voxel_size`` (default: the file's, else ``"um"``); without
        ``voxel_size``, the unit the file's voxel size, z positions and origin
        are converted to (:meth:`Volume.in_unit`).
    lazy : bool
        Keep the pixels on disk, for volumes larger than memory: OME-Zarr as a
        dask array, ``.npy`` and uncompressed TIFF memory-mapped (read-only), a
        compressed TIFF of one page per plane decoded page by page when read,
        a CZI, Imaris or BigDataViewer file's planes read in chunks when
        needed. Other files (``.npz``, TIFF of tiled or interleaved planes) are
        read into memory.
    series : int, optional
        Of a TIFF file with several image series (a CZI file's scenes, a BigDataViewer dataset's
        view setups), the one to read (0 is the
        first); default the first stack (after an overview plane).

    Returns
    -------
    Volume
    """
    if is_url(path):
        raise InputError(f"{path} is a URL: zaug reads local files and folders only; download the stack first.")
    path = Path(path)
    if unit is not None:
        checked_unit(unit)
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if not (path.is_file() or path.is_dir()):  # a FIFO or device would block or stream forever
        raise InputError(f"{path} is not a regular file or folder (a pipe or device?); save the stack to a file.")
    fmt = format_of(path, reading=True)
    if series is not None and fmt not in ("tiff", "czi", "bdv"):
        raise InputError(f"--series picks an image series of a TIFF, CZI or BigDataViewer file; {path} is {fmt}.")
    try:
        if fmt == "tiff":
            data, file_axes, physical = read_tiff(path, lazy=lazy, series=series)
        elif fmt == "czi":
            data, file_axes, physical = read_czi(path, lazy=lazy, series=series)
        elif fmt == "ims":
            data, file_axes, physical = read_ims(path, lazy=lazy)
        elif fmt == "bdv":
            data, file_axes, physical = read_bdv(path, lazy=lazy, series=series)
        elif fmt == "ome-zarr":
            if not is_zarr_node(path):
                raise InputError(f"{path} is not an OME-Zarr image folder.")
            data, file_axes, physical = read_ome_zarr(path, lazy=lazy)
        else:
            data, file_axes, physical = read_numpy(path, lazy=lazy)
    except InputError:
        raise
    except Exception as exc:  # a corrupt or foreign file: say so in one sentence
        raise InputError(f"cannot read {path} as {fmt}: {_short(exc)}.") from exc
    if axes is not None and voxel_size is None:
        _warn_if_axes_moved(path, axes, file_axes, physical)
    data, canon_axes = _to_canonical(data, axes or file_axes, user_axes=axes is not None)
    if axes is None and file_axes is None and len(data.shape) >= 4:  # a plain array: its order is a guess
        warnings.warn(ZaugWarning(f"{path} does not say the order of its {len(data.shape)} axes; read as "
                                  f"{canon_axes} (shape {tuple(data.shape)}); if that is wrong, pass --axes "
                                  "(axes= in Python)."), stacklevel=2)
    file_size = (physical.get("z", 1.0), physical.get("y", physical.get("x", 1.0)),
                 physical.get("x", physical.get("y", 1.0)))
    _check_file_positions(path, physical, int(data.shape[-3]), given=voxel_size is not None)
    # in the file's unit, like its voxel size; uneven z positions start at the first
    positions = physical.get("z_positions")
    first_z = float(positions[0]) if positions is not None and len(positions) else float(physical.get("z_origin", 0.0))
    file_origin = (first_z, *physical.get("yx_origin", (0.0, 0.0)))
    convert_to = None
    if voxel_size is not None:
        if len(voxel_size) != 3:
            raise InputError("--voxel-size needs three numbers: z y x.")
        size = tuple(float(v) for v in voxel_size)
        unit = normalize_unit(unit) if unit else (physical.get("unit") if physical.get("unit") not in (None, "pixel") else "um")
        origin = _origin_for_new_size(path, physical, file_origin, file_size, size, unit)
    else:
        if not all(np.isfinite(v) and v > 0 for v in file_size):
            raise InputError(f"{path} gives a voxel size of {', '.join(f'{v:g}' for v in file_size)} "
                             f"{physical.get('unit', 'pixel')} (z, y, x), which cannot be used; "
                             "give the right one with --voxel-size Z Y X (voxel_size= in Python).")
        _warn_about(path, physical, nz=int(data.shape[-3]))
        size = file_size
        convert_to, unit = unit, physical.get("unit", "pixel")
        origin = (float(physical.get("z_origin", 0.0)), *file_origin[1:])
    z_origin, yx_origin = origin[0], tuple(origin[1:])
    z_positions = physical.get("z_positions") if voxel_size is None else None  # Volume takes their mean spacing
    time = physical.get("time", {})
    names = tuple(physical.get("channel_names", ()))
    one_channel = {"channel": str(names[0])} if len(names) == 1 and "C" not in canon_axes else {}  # as select's
    volume = Volume(data, voxel_size=size, unit=unit, axes=canon_axes, z_positions=z_positions, z_origin=z_origin,
                    yx_origin=yx_origin, channel_names=names,
                    time_interval=time.get("interval"), time_unit=time.get("unit", "s"),
                    time_origin=time.get("origin", 0.0),
                    metadata={"source": str(path), "format": fmt, "name": _stem(path), **one_channel,
                              **({"series": physical["series"]} if physical.get("series") is not None else {}),
                              **({"ngff": physical["extras"]} if physical.get("extras") else {}),
                              **({"display": physical["display"]} if physical.get("display") else {}),
                              **({"acquisition": physical["acquisition"]} if physical.get("acquisition") else {})})
    if physical.get("zaug") is not None:  # which planes are acquired and how zaug made the others
        volume = volume.replace(metadata=from_file_record(physical["zaug"], volume, path))
    if convert_to is None:
        return volume
    try:
        return volume.in_unit(convert_to)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _origin_for_new_size(path: Path, physical: dict, origin: tuple, file_size: tuple, size: tuple,
                         unit: str) -> tuple[float, float, float]:
    """The file's origin ``(z, y, x)`` under the voxel size and unit the user gives instead of the file's.

    An origin the file counts in pixels (ImageJ's; any in the ``pixel`` unit)
    stays on the same pixel; one in a physical unit keeps its position,
    converted to ``unit``, or is dropped with a warning where it cannot be.
    """
    if not any(origin):
        return 0.0, 0.0, 0.0
    file_unit = physical.get("unit", "pixel")
    if physical.get("origin_in_pixels") or file_unit == "pixel":
        return tuple(without_binary_noise(o / old * new) for o, old, new in zip(origin, file_size, size))
    factor = conversion_factor(file_unit, unit)
    if factor is None:
        warnings.warn(ZaugWarning(f"{path}: its origin is in {file_unit}, which cannot be converted to {unit}, "
                                  "so it is set to 0."), stacklevel=4)
        return 0.0, 0.0, 0.0
    return tuple(without_binary_noise(o * factor) for o in origin)


def _check_file_positions(path: Path, physical: dict, nz: int, given: bool) -> None:
    """Drop the file's z positions, with a warning, where they cannot be used: not one finite, increasing
    position per plane, or replaced by a given voxel size (its even spacing)."""
    positions = physical.get("z_positions")
    if positions is None:
        return
    problem = z_positions_problem(positions, nz)
    if problem or given:
        if not problem:  # under the even spacing given, the planes start where the first plane was
            physical["z_origin"] = float(positions[0])
        del physical["z_positions"]
        reason = f"{problem}, so they are not used" if problem else "are replaced by the even spacing of --voxel-size"
        warnings.warn(ZaugWarning(f"{path}: its z positions (uneven planes) {reason}."), stacklevel=3)


def _warn_if_axes_moved(path: Path, axes: str, file_axes: str | None, physical: dict) -> None:
    """Warn when --axes puts Z, Y or X on another dimension than the file did.

    The file's voxel size stays with its axis letters (its writer knew which
    size is z), but whether it also knew which dimension holds z is what the
    user disputes, so the sizes are worth checking.
    """
    if not file_axes:
        return
    given, stored = axes.upper(), _guess_letters(file_axes.upper(), ())
    if "Z" in given and "Z" not in stored and "z" not in physical:
        warnings.warn(ZaugWarning(
            f"{path}: the file's axes {stored} have no z, so it gives no z spacing and 1 "
            f"{physical.get('unit', 'pixel')} is assumed; give the z step with --voxel-size Z Y X."), stacklevel=3)
    if physical.get("unit") in (None, "pixel"):
        return
    if len(given) != len(stored):
        return
    if any(a in stored and given.index(a) != stored.index(a) for a in "ZYX" if a in given):
        size = " ".join(f"{physical.get(a, 1.0):g}" for a in "zyx")
        warnings.warn(ZaugWarning(
            f"{path}: --axes {given} moves z, y or x to another dimension than the file's axes {stored}; the "
            f"file's voxel size ({size} {physical['unit']}, z y x) is kept by axis name, so check it or give "
            "--voxel-size Z Y X."), stacklevel=3)


def _warn_about(path: Path, physical: dict, nz: int) -> None:
    """Tell the user what the file's metadata left unknown (only when no --voxel-size replaces it)."""
    for message in physical.get("warnings", ()):
        warnings.warn(ZaugWarning(f"{path}: {message}"), stacklevel=3)
    lateral = physical.get("unknown_z")
    if lateral and nz > 1:
        y, x, unit = lateral["y"], lateral["x"], lateral["unit"]
        warnings.warn(ZaugWarning(
            f"{path} gives a pixel size of {y:g} x {x:g} {unit} but no z spacing, so the voxel size is taken as "
            f"unknown (1 pixel on every axis); give the z step Z with --voxel-size Z {y:g} {x:g} --unit {unit}."
        ), stacklevel=3)


def write_volume(volume: Volume, path: str | os.PathLike, overwrite: bool = False,
                 inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Write ``volume`` atomically, refusing to clobber anything.

    Parameters
    ----------
    volume : Volume
        What to write; its voxel size, unit, z positions and origin are stored.
    path : path-like
        Output path; its name selects the format (see module docstring).
    overwrite : bool
        Replace an existing output.
    inputs : sequence of path-like
        Input files of this run: writing onto one of them is refused.
    """
    fmt = format_of(path)
    out = check_output_path(path, overwrite=overwrite, inputs=inputs)
    stored = stored_dtype(volume.dtype, out)
    if stored != volume.dtype:
        data = np.asarray(volume.data)
        check_storable(data, out)
        warnings.warn(ZaugWarning(f"TIFF cannot hold {volume.dtype}; {out} is written as {stored} "
                                  "(every value kept)."), stacklevel=2)
        volume = volume.replace(data=data.astype(stored))
    lost = [f"the voxel size ({volume.voxel_size[0]:g} x {volume.voxel_size[1]:g} x {volume.voxel_size[2]:g} "
            f"{volume.unit})"] if volume.unit != "pixel" else []
    lost += ["the record of which planes are acquired"] if is_made_by_zaug(volume) else []
    if fmt == "numpy" and out.suffix.lower() == ".npy" and lost:
        warnings.warn(ZaugWarning(f"{out.name} holds pixels only, so {' and '.join(lost)} "
                                  f"{'are' if len(lost) > 1 else 'is'} not stored; write .npz, .tif or .ome.zarr "
                                  f"to keep {'them' if len(lost) > 1 else 'it'}."), stacklevel=2)
    _warn_if_one_step_for_uneven_planes(volume, out, fmt)
    with atomic_path(out, overwrite=overwrite) as tmp:
        if fmt == "tiff":
            write_tiff(volume, tmp, ome=str(out).lower().endswith((".ome.tif", ".ome.tiff")) or None)
        elif fmt == "ome-zarr":
            write_ome_zarr(volume, tmp)
        else:
            write_numpy(volume, tmp)
    return out


def _warn_if_one_step_for_uneven_planes(volume: Volume, out: Path, fmt: str) -> None:
    """Say where a format's single z step (the mean, which other software goes by) misplaces uneven planes;
    zaug reads the positions back from its own keys, and .npz holds them."""
    if volume.is_uniform or fmt == "numpy":
        return
    z, unit = volume.z_coords(), volume.unit
    gaps, step = np.diff(z), float(np.mean(np.diff(z)))
    off = float(np.max(np.abs(z - (z[0] + step * np.arange(len(z))))))
    said = f"the planes of {out.name} are unevenly spaced (steps {gaps.min():.4g} to {gaps.max():.4g} {unit})"
    even = "resample to even planes (zaug predict --z-spacing S)"
    if fmt == "tiff" and str(out).lower().endswith((".ome.tif", ".ome.tiff")):
        text = (f"{said}: its OME-XML gives each plane's position (PositionZ), but software that goes by "
                f"PhysicalSizeZ takes the mean step, {step:.4g} {unit}, and misplaces planes by up to {off:.3g} "
                f"{unit}; for such software, {even}.")
    else:
        held = "OME-Zarr (NGFF 0.4)" if fmt == "ome-zarr" else "ImageJ TIFF"
        text = (f"{said}, but {held} holds one z step: software other than zaug takes the mean, {step:.4g} "
                f"{unit}, and misplaces planes by up to {off:.3g} {unit}; write .ome.tif to keep every plane's "
                f"position, or {even}.")
    warnings.warn(ZaugWarning(text), stacklevel=3)


def check_storable(data, path: str | os.PathLike) -> None:
    """Refuse, in one sentence, values that the format of ``path`` cannot hold in :func:`stored_dtype`.

    Called by :func:`write_volume`, and by ``zaug predict`` on the input before
    any work (a prediction keeps the input's range).

    >>> import numpy as np
    >>> check_storable(np.array([2**40], np.uint64), "out.tif")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zaug.errors.OutputError: TIFF cannot hold uint64 and these values do not fit in uint32; write .ome.zarr ...
    >>> check_storable(np.array([2**40], np.uint64), "out.npz")
    """
    stored = stored_dtype(data.dtype, path)
    if stored.kind in "iu" and stored != data.dtype and data.size and not (
            np.iinfo(stored).min <= data.min() and data.max() <= np.iinfo(stored).max):
        raise OutputError(f"TIFF cannot hold {data.dtype} and these values do not fit in {stored}; write "
                          ".ome.zarr or .npz, or convert the stack to 32 bits first.")


def stored_dtype(dtype, path: str | os.PathLike) -> np.dtype:
    """The data type in which :func:`write_volume` stores ``dtype`` at ``path``: the same, except in TIFF
    (whose writers here hold neither): float16 as float32, and 64-bit integers as 32-bit ones of the same
    sign (:func:`write_volume` checks that every value fits)."""
    dtype = np.dtype(dtype)
    if format_of(path) != "tiff":
        return dtype
    return {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.int64): np.dtype(np.int32),
            np.dtype(np.uint64): np.dtype(np.uint32)}.get(dtype, dtype)


def _to_canonical(data, axes: str | None, user_axes: bool) -> tuple[object, str]:
    """Transpose ``data`` to zaug's TCZYX order, naming unknown axes."""
    ndim = data.ndim
    if ndim > len(CANONICAL_AXES) and (axes is None or user_axes):
        raise _too_many_axes(data.shape)
    if axes is None:
        axes = "ZYX"[-ndim:] if ndim <= 3 else "TCZYX"[-ndim:]
    axes = axes.upper()
    if len(axes) != ndim:
        raise InputError(f"the axes {axes!r} name {len(axes)} dimensions but the image has {ndim} "
                         f"(shape {tuple(data.shape)}); pass --axes with {ndim} letters.")
    if not user_axes:
        axes = _guess_letters(axes, data.shape)
        # Drop singleton axes other than Z, Y, X (e.g. a one-channel 'CZYX').
        keep = [i for i, a in enumerate(axes) if a in "ZYX" or data.shape[i] != 1]
        if len(keep) != ndim:
            data = data[tuple(slice(None) if i in keep else 0 for i in range(ndim))]
            axes = "".join(axes[i] for i in keep)
        if len(axes) > len(CANONICAL_AXES):
            raise _too_many_axes(data.shape)
    unknown = set(axes) - set(CANONICAL_AXES)
    if unknown or len(set(axes)) != len(axes) or not set("ZYX") <= set(axes):
        if "Z" not in axes:
            raise InputError(
                f"the image has axes {axes!r} (shape {tuple(data.shape)}) and no z axis: zaug needs a 3D stack "
                "(pass --axes if the file's axes are wrong)."
            )
        raise InputError(f"axes {axes!r} are not understood; use letters from TCZYX, e.g. --axes ZYX.")
    order = [axes.index(a) for a in CANONICAL_AXES if a in axes]
    return np.transpose(data, order), "".join(axes[i] for i in order)


def _too_many_axes(shape) -> InputError:
    return InputError(f"the image has {len(shape)} dimensions (shape {tuple(shape)}) but zaug handles at most 5 "
                      "axes (TCZYX); save it with the extra dimensions removed or split into files.")


def _guess_letters(axes: str, shape) -> str:
    """Map tifffile's generic letters (I, Q: image sequence; S: samples) to T/C/Z."""
    axes = axes.replace("S", "C") if "C" not in axes else axes
    for generic in "IQ":
        if generic in axes:
            for target in "ZTC":
                if target not in axes:
                    axes = axes.replace(generic, target, 1)
                    break
    return axes


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")[:200]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr", ".npy", ".npz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
