"""NumPy ``.npy`` (pixels only) and ``.npz`` (pixels, voxel size and the rest of the metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..provenance import file_record_text
from ..volume import Volume
from ._display import channel_labels
from .tiff import checked_acquisition


def read_numpy(path: Path, lazy: bool = False):
    """Read ``.npy`` (memory-mapped read-only with ``lazy``) or ``.npz`` (never unpickles objects)."""
    try:
        return _read_numpy(path, lazy)
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's own message advises unpickling, which zaug never does
            raise InputError(f"{path} holds Python objects (pickled data), which zaug never loads (unpickling "
                             "can run code); save the pixels as an array of numbers.") from None
        raise


def _read_numpy(path: Path, lazy: bool):
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None), None, {}
    with np.load(path, allow_pickle=False) as npz:
        if not npz.files:
            raise InputError(f"{path} holds no arrays.")
        key = "data" if "data" in npz.files else npz.files[0]
        data = npz[key]
        physical: dict = {}
        if "voxel_size" in npz.files:
            size = np.ravel(npz["voxel_size"])
            if size.size != 3:
                raise InputError(f"{path} gives a voxel size of {size.size} number(s), not three (z, y, x).")
            physical.update(zip("zyx", (float(v) for v in size)))
        if "unit" in npz.files:
            physical["unit"] = str(npz["unit"])
        if "z_positions" in npz.files:
            physical["z_positions"] = npz["z_positions"].tolist()
        if "z_origin" in npz.files:
            physical["z_origin"] = float(npz["z_origin"])
        if "yx_origin" in npz.files:
            physical["yx_origin"] = tuple(float(v) for v in npz["yx_origin"])
        if "channel_names" in npz.files:
            physical["channel_names"] = [str(n) for n in np.ravel(npz["channel_names"])]
        if "time_interval" in npz.files:
            physical["time"] = {"interval": float(npz["time_interval"]),
                                "unit": str(npz["time_unit"]) if "time_unit" in npz.files else "s",
                                "origin": float(npz["time_origin"]) if "time_origin" in npz.files else 0.0}
        if "zaug" in npz.files:  # how zaug made the stack (zaug.provenance); a damaged one is said there
            physical["zaug"] = _text_or(npz, "zaug", "{}")
        if "acquisition" in npz.files:  # an OME-TIFF input's acquisition settings
            physical["acquisition"] = checked_acquisition(_json_or_none(_text_or(npz, "acquisition", "")))
        axes = str(npz["axes"]) if "axes" in npz.files else None
    return data, axes, physical


def _text_or(npz, key: str, default: str) -> str:
    """An entry of ``npz`` as text; ``default`` for one of Python objects (never unpickled: the pixels are
    still read)."""
    try:
        return str(npz[key])
    except ValueError:
        return default


def _json_or_none(text: str):
    try:
        return json.loads(text) if len(text) < 2**20 else None
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return None


def write_numpy(volume: Volume, path: Path) -> None:
    """Write ``.npy`` (pixels only) or ``.npz`` (pixels, voxel size, unit, axes, z positions or origin, yx origin,
    channel names, time step)."""
    data = np.asarray(volume.data)
    if path.suffix.lower() == ".npy":
        with open(path, "wb") as f:
            np.save(f, data)
        return
    if volume.z_positions is not None:
        extra = {"z_positions": volume.z_positions}
    else:
        extra = {"z_origin": np.array(volume.z_origin)} if volume.z_origin != 0 else {}
    if any(volume.yx_origin):
        extra["yx_origin"] = np.array(volume.yx_origin)
    if channel_labels(volume):
        extra["channel_names"] = np.array(channel_labels(volume))
    if volume.time_interval is not None:
        extra.update(time_interval=np.array(volume.time_interval), time_unit=np.array(volume.time_unit),
                     time_origin=np.array(volume.time_origin))
    record = file_record_text(volume)
    if record is not None:
        extra["zaug"] = np.array(record)
    if volume.metadata.get("acquisition"):
        extra["acquisition"] = np.array(json.dumps(volume.metadata["acquisition"]))
    with open(path, "wb") as f:
        np.savez_compressed(f, data=data, voxel_size=np.array(volume.voxel_size),
                            unit=np.array(volume.unit), axes=np.array(volume.axes), **extra)
