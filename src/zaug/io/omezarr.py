"""OME-Zarr: the full-resolution level, scale in and out.

Reads NGFF 0.4 (zarr v2) and 0.5 (zarr v3); writes NGFF 0.4, which more viewers read today.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import zarr

from ..errors import InputError
from ..provenance import file_record
from ..volume import Volume
from . import _display
from ._reads import NamedReads
from ._units import (conversion_factor, in_one_unit, ngff_unit, normalize_unit, origin_entries, time_unit,
                     time_unit_in, unconvertible_units, without_binary_noise)
from .tiff import checked_acquisition, ome_acquisition

NGFF_VERSION = "0.4"
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def is_zarr_node(path: Path) -> bool:
    """Whether ``path`` is a zarr group or array folder (zarr v2 or v3)."""
    return path.is_dir() and any((path / name).exists() for name in (".zattrs", ".zgroup", ".zarray", "zarr.json"))


def _is_array(path: Path) -> bool:
    if (path / ".zarray").exists():
        return True
    try:
        return json.loads((path / "zarr.json").read_text(encoding="utf-8")).get("node_type") == "array"
    except (OSError, ValueError, AttributeError):
        return False


def _ngff_attributes(path: Path) -> dict:
    """The OME-NGFF attributes of a zarr group folder, read without zarr (``{}`` where there are none)."""
    for name, inside in ((".zattrs", ()), ("zarr.json", ("attributes",))):
        try:
            attrs = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in inside:
            attrs = attrs.get(key, {}) if isinstance(attrs, dict) else {}
        if isinstance(attrs, dict):
            return attrs.get("ome", attrs)
    return {}


def _where_the_image_is(path: Path, ngff: dict) -> str | None:
    """For a store that is not itself an image (a resolution level, a bioformats2raw layout, a plate or a
    well), the sentence that says which folder to give instead; None otherwise."""
    if _is_array(path):
        parent = _ngff_attributes(path.parent)
        if parent.get("multiscales"):
            return (f"{path} is a resolution level of the image in {path.parent}; give {path.parent} (zaug reads "
                    "its finest level).")
        return f"{path} is a bare zarr array, not an OME-Zarr image (no 'multiscales' metadata)."
    if "bioformats2raw.layout" in ngff:
        series = sorted((p.name for p in path.iterdir() if p.name.isdigit() and is_zarr_node(p)), key=int)
        listed = ", ".join(series[:5]) + (", ..." if len(series) > 5 else "")
        return (f"{path} is a bioformats2raw store of {len(series)} image series ({listed}); give one, e.g. "
                f"{path / (series[0] if series else '0')}.")
    if isinstance(ngff.get("plate"), dict):
        wells = [w.get("path") for w in ngff["plate"].get("wells", []) if isinstance(w, dict) and w.get("path")]
        example = path / (wells[0] if wells else "A/1") / "0"
        return (f"{path} is an HCS plate of {len(wells)} well{'s' * (len(wells) != 1)}; give one field of a well, "
                f"e.g. {example}.")
    if isinstance(ngff.get("well"), dict):
        images = [i.get("path") for i in ngff["well"].get("images", []) if isinstance(i, dict) and i.get("path")]
        return (f"{path} is a well of {len(images)} field{'s' * (len(images) != 1)}; give one, e.g. "
                f"{path / (images[0] if images else '0')}.")
    return None


def _axis_letter(axis) -> str:
    """An NGFF axis as zaug's letter: by its type for channel and time (its name is free text), else its name."""
    kind = axis.get("type") if isinstance(axis, dict) else None
    if kind in ("channel", "time"):
        return "C" if kind == "channel" else "T"
    return str(axis.get("name", "") if isinstance(axis, dict) else axis).upper()


def read_ome_zarr(path: Path, lazy: bool = False):
    """Read level 0 of an OME-Zarr image: NGFF 0.4 (zarr v2) or 0.5 (zarr v3).

    Returns
    -------
    data, axes, physical
        The array (a dask array when ``lazy``), the axis letters (upper case)
        and a dict with the voxel size (``z``, ``y``, ``x``), ``unit``,
        ``z_origin``, ``yx_origin`` and ``z_positions`` found (see
        :func:`_spatial_transform`).
    """
    elsewhere = _where_the_image_is(path, _ngff_attributes(path))
    if elsewhere:
        raise InputError(elsewhere)
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr raises several kinds for a folder it cannot read
        raise InputError(f"{path} cannot be read as a zarr group ({exc}).") from exc
    attrs = root.attrs.asdict()
    ngff = attrs.get("ome", attrs)  # NGFF 0.5 keeps its metadata under "ome"
    multiscales = ngff.get("multiscales")
    if not multiscales:
        raise InputError(f"{path} is a zarr folder without OME-NGFF 'multiscales' metadata.")
    ms = multiscales[0]
    if not ms.get("datasets"):
        raise InputError(f"{path}: its OME-NGFF metadata lists no dataset (resolution level).")
    dataset = ms["datasets"][0]
    try:
        arr = root[dataset["path"]]
    except KeyError:
        raise InputError(f"{path}: its metadata names the array {dataset['path']!r}, which the folder does not "
                         "hold (a store copied in part?).") from None
    axes_meta = ms.get("axes") or [{"name": a} for a in "tczyx"[-arr.ndim:]]  # NGFF < 0.3
    names = [_axis_letter(a) for a in axes_meta]
    if lazy:
        import dask.array as da
        from dask.base import tokenize

        data = da.from_array(NamedReads(arr, path, "".join(names)), chunks=arr.chunks, asarray=False,
                             name=f"zarr-{tokenize(str(path), dataset['path'], arr.shape, arr.dtype.str)}")
    else:
        data = arr[...]
    physical = _spatial_transform(names, axes_meta, dataset.get("coordinateTransformations") or [],
                                  ms.get("coordinateTransformations") or [])
    own = attrs.get("zaug") if isinstance(attrs.get("zaug"), dict) else {}
    z_positions = own.get("z_positions")
    if z_positions:
        physical["z_positions"] = z_positions
    if "history" in own or "acquired_planes" in own:  # how zaug made the stack (zaug.provenance)
        physical["zaug"] = {key: own.get(key) for key in ("history", "acquired_planes")}
    elif attrs.get("zaug") is not None and not isinstance(attrs["zaug"], dict):
        physical["zaug"] = [attrs["zaug"]]  # not zaug's: read_volume says that the record is damaged
    n_channels = int(arr.shape[names.index("C")]) if "C" in names else 1
    if own.get("acquisition"):
        physical["acquisition"] = checked_acquisition(own["acquisition"])
    else:
        physical["acquisition"] = _bioformats2raw_acquisition(path, n_channels)
    physical.update(_time_axis(names, axes_meta, dataset.get("coordinateTransformations") or [],
                               ms.get("coordinateTransformations") or []))
    labels = [ch.get("label") for ch in (ngff.get("omero") or {}).get("channels", []) if isinstance(ch, dict)]
    if labels and all(labels):
        physical["channel_names"] = labels
    physical["extras"] = {"levels": len(ms["datasets"]), "labels": (path / "labels").is_dir()}
    physical["display"] = _display.from_omero(ngff.get("omero") or {}, n_channels)
    return data, "".join(names), physical


def _bioformats2raw_acquisition(path: Path, n_channels: int) -> dict:
    """The acquisition settings of a bioformats2raw series (``store.zarr/N``) from its store's OME-XML."""
    xml_file = path.parent / "OME" / "METADATA.ome.xml"
    if not path.name.isdigit() or not xml_file.is_file() or xml_file.stat().st_size > 64 * 2**20:
        return {}
    try:
        return ome_acquisition(xml_file.read_text(encoding="utf-8"), int(path.name), n_channels)
    except (OSError, ValueError, SyntaxError):  # unreadable, not UTF-8, or not XML (ElementTree's ParseError)
        return {}


def _scale_and_offset(n: int, dataset_transforms: list, global_transforms: list) -> tuple[list, list]:
    """Per-axis scale and translation of level 0: the multiscale's own (global) transformations apply
    after the dataset's, so the scales multiply and the dataset's translation is scaled by the global
    scale before the global translation is added."""
    scale, offset = [1.0] * n, [0.0] * n
    for transforms in (dataset_transforms, global_transforms):
        for tr in transforms:
            if tr.get("type") == "scale" and "scale" in tr:
                scale = [a * float(b) for a, b in zip(scale, tr["scale"])]
                offset = [a * float(b) for a, b in zip(offset, tr["scale"])]
            elif tr.get("type") == "translation" and "translation" in tr:
                offset = [a + float(b) for a, b in zip(offset, tr["translation"])]
    return scale, offset


def _time_axis(names: list[str], axes_meta: list, dataset_transforms: list, global_transforms: list) -> dict:
    """The time step, unit and origin of a ``t`` axis that states a time unit."""
    if "T" not in names:
        return {}
    meta = axes_meta[names.index("T")]
    unit = time_unit(meta.get("unit")) if isinstance(meta, dict) else None
    if unit is None:
        return {}
    scale, offset = _scale_and_offset(len(names), dataset_transforms, global_transforms)
    t = names.index("T")
    return {"time": {"interval": scale[t], "unit": unit, "origin": offset[t]}}


def _spatial_transform(names: list[str], axes_meta: list, dataset_transforms: list,
                       global_transforms: list) -> dict:
    """Voxel size, unit and origin (``z_origin``, ``yx_origin``) of level 0 from its NGFF transformations.

    Axes in different units are converted to micrometres.
    """
    scale, offset = _scale_and_offset(len(names), dataset_transforms, global_transforms)
    given = {(a.get("name") or "").upper(): normalize_unit(a["unit"]) for a in axes_meta
             if isinstance(a, dict) and a.get("unit") and (a.get("name") or "").upper() in ("Z", "Y", "X")}
    default = next(iter(given.values()), "pixel")  # a spatial axis without a unit shares the others'
    sizes = {name.lower(): (s, given.get(name, default)) for name, s in zip(names, scale) if name in ("Z", "Y", "X")}
    converted = in_one_unit(sizes)
    if converted is None:
        return unconvertible_units(sizes, "the NGFF axes' metadata")
    physical, unit = converted
    if given:
        physical["unit"] = unit
    physical.update(origin_entries({
        axis: without_binary_noise(offset[names.index(axis.upper())] * conversion_factor(sizes[axis][1], unit))
        for axis in sizes}))
    return physical


#: an output's coarser levels halve its planes' sides until the larger is at most this (viewers load them to
#: show a large stack whole)
LEVEL_SIDE = 512
MAX_LEVELS = 8


def pyramid_levels(shape_yx: tuple[int, int], side: int = LEVEL_SIDE) -> int:
    """How many resolution levels an output of planes ``shape_yx`` gets: the full one, then halved ones until
    the larger side is at most ``side``.

    >>> pyramid_levels((400, 300)), pyramid_levels((2048, 1500)), pyramid_levels((1025, 10))
    (1, 3, 3)
    """
    levels, longest = 1, max(shape_yx)
    while longest > side and levels < MAX_LEVELS:
        longest, levels = -(-longest // 2), levels + 1
    return levels


def halve_plane(plane: np.ndarray) -> np.ndarray:
    """A plane at half the size: the mean of each 2 x 2 block (an odd last row or column counts twice),
    in the plane's type (integers rounded).

    >>> halve_plane(np.array([[0, 2, 4], [2, 4, 6]], np.uint8))
    array([[2, 5]], dtype=uint8)
    """
    plane = np.asarray(plane)
    odd = [(0, 0)] * (plane.ndim - 2) + [(0, plane.shape[-2] % 2), (0, plane.shape[-1] % 2)]
    values = plane.astype(np.float64 if plane.dtype.itemsize > 2 else np.float32)  # 32-bit integers exactly
    values = np.pad(values, odd, mode="edge") if any(b for _, b in odd) else values
    mean = (values[..., 0::2, 0::2] + values[..., 1::2, 0::2] + values[..., 0::2, 1::2] + values[..., 1::2, 1::2])
    mean *= 0.25
    if np.issubdtype(plane.dtype, np.integer):
        return np.rint(mean, out=mean).astype(plane.dtype)
    return mean.astype(plane.dtype)


def _write_coarser_levels(root, levels: int, chunks: tuple[int, ...], full=None) -> None:
    """Levels 1 .. levels-1, each from the one before, in one pass a plane at a time (memory: a few planes;
    no level read back from the store); ``full``, the full resolution where it is in memory."""
    source = full if full is not None else root["0"]
    targets, shape = [], tuple(source.shape)
    for level in range(1, levels):
        shape = shape[:-2] + tuple(-(-n // 2) for n in shape[-2:])
        targets.append(root.create_array(str(level), shape=shape, dtype=source.dtype,
                                         chunks=tuple(min(c, n) for c, n in zip(chunks, shape)),
                                         chunk_key_encoding={"name": "v2", "separator": "/"}))
    if not targets:
        return
    for index in np.ndindex(tuple(source.shape[:-2])):
        plane = np.asarray(source[index])
        for target in targets:
            plane = halve_plane(plane)
            target[index] = plane


def write_ome_zarr(volume: Volume, path: Path, chunk_yx: int = 256, levels: int | None = None) -> None:
    """Write ``volume`` as an NGFF 0.4 image (written with dask when lazy): the full resolution, and for large
    planes coarser levels (:func:`pyramid_levels`, or ``levels``), each halving y and x, for viewers."""
    unit = ngff_unit(volume.unit)
    axes = []
    timed = volume.time_interval is not None
    for a in volume.axes.lower():
        entry = {"name": a, "type": _AXIS_TYPES[a]}
        if a in "zyx" and unit:
            entry["unit"] = unit
        if a == "t" and timed:
            entry["unit"] = time_unit_in(volume.time_unit, "ngff")
        axes.append(entry)
    lead = {"T": (volume.time_interval, volume.time_origin) if timed else (1.0, 0.0), "C": (1.0, 0.0)}
    scale = [lead[a][0] for a in volume.axes[:-3]] + list(volume.voxel_size)
    translation = [lead[a][1] for a in volume.axes[:-3]] + [float(volume.z_coords()[0]), *volume.yx_origin]
    data = volume.data
    lazy = hasattr(data, "dask")
    if lazy:
        # every dask chunk must cover whole zarr chunks, or two tasks would write into one (a race)
        chunk_y, chunk_x = data.chunks[-2][0], data.chunks[-1][0]
        data = data.rechunk({data.ndim - 2: chunk_y, data.ndim - 1: chunk_x})
    else:
        chunk_y = chunk_x = chunk_yx
    chunks = tuple([1] * (len(volume.axes) - 3) + [1, chunk_y, chunk_x])
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    target = root.create_array("0", shape=data.shape, dtype=data.dtype,
                               chunks=tuple(min(c, s) for c, s in zip(chunks, data.shape)),
                               chunk_key_encoding={"name": "v2", "separator": "/"})  # NGFF 0.4 requires "/"
    if lazy:
        _store(data, target)
    else:
        # a plane per call: zarr writes a call's chunks from its own event loop, which Ctrl-C does not stop;
        # one call for the whole stack went on writing after the interrupt and left a hidden partial store
        data = np.asarray(data)
        for index in np.ndindex(data.shape[:-2]):
            target[index] = data[index]
    levels = pyramid_levels(volume.spatial_shape[1:]) if levels is None else max(1, int(levels))
    _write_coarser_levels(root, levels, chunks, full=None if lazy else data)
    datasets = []
    for level in range(levels):  # a coarse pixel's centre lies between the fine ones it averages
        grow = [1.0] * (len(scale) - 2) + [2.0 ** level] * 2
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [s * g for s, g in zip(scale, grow)]},
            {"type": "translation", "translation": [t + (g - 1) / 2 * s for t, g, s in zip(translation, grow, scale)]},
        ]})
    root.attrs["multiscales"] = [{
        "version": NGFF_VERSION,
        "name": volume.metadata.get("name", path.stem),
        "axes": axes,
        "datasets": datasets,
    }]
    own = {"z_positions": [float(z) for z in volume.z_positions]} if volume.z_positions is not None else {}
    own.update(file_record(volume) or {})  # which planes are acquired and how zaug made the others
    if volume.metadata.get("acquisition"):  # an OME-TIFF input's channel settings: NGFF has no place for them
        own["acquisition"] = volume.metadata["acquisition"]
    if own:
        root.attrs["zaug"] = own
    source = target if lazy else data  # written by now: read back rather than computed again
    omero = _display.to_omero(volume.metadata.get("display"), _display.channel_labels(volume),
                               volume.n_channels, data.dtype,
                               value_range=lambda c: _channel_range(source, volume.axes, c))
    if omero:
        root.attrs["omero"] = omero


def _channel_range(array, axes: str, channel: int) -> tuple[float, float]:
    """The lowest and highest value of one channel of ``array`` (a zarr array is read a plane at a time)."""
    low, high = np.inf, -np.inf
    for index in np.ndindex(array.shape[:-2]):
        if "C" in axes and index[axes.index("C")] != channel:
            continue
        plane = np.asarray(array[index])
        low, high = min(low, float(plane.min())), max(high, float(plane.max()))
    return (low, high) if low <= high else (0.0, 1.0)


def _store(data, target) -> None:
    """Compute a dask array into ``target``, chunk by chunk.

    When a chunk fails, the chunks already running finish before the error
    reaches the caller, who then removes the partial store (they would
    otherwise write into it again, after its removal). With dask's local
    threads they run in a pool of our own; on a ``dask.distributed`` cluster
    the workers are watched until none runs a chunk of this store.
    """
    import dask
    import dask.threaded
    from concurrent.futures import ThreadPoolExecutor

    scheduler = dask.base.get_scheduler(collections=[data])
    client = getattr(scheduler, "__self__", None)
    if type(client).__name__ == "Client" and type(client).__module__.startswith("distributed"):
        _store_on_cluster(data, target, client)
        return
    if scheduler is not dask.threaded.get:
        data.store(target, lock=False)
        return
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    try:
        with dask.config.set(pool=pool):
            data.store(target, lock=False)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _store_on_cluster(data, target, client, timeout: float = 600.0) -> None:
    stored = data.store(target, lock=False, compute=False)
    names = [str(name) for name in stored.__dask_graph__().layers if "store" in str(name)]
    future = client.compute(stored)
    try:
        future.result()
    except BaseException:
        client.cancel(future, force=True)
        _wait_until_idle(client, names, timeout)
        raise


def _wait_until_idle(client, names: list[str], timeout: float) -> None:
    """Wait until no worker runs a task whose key contains one of ``names`` (a cancelled task still runs)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [key for keys in client.run(_running_keys).values() for key in keys]
        if not any(name in key for key in running for name in names):
            return
        time.sleep(0.1)


def _running_keys(dask_worker) -> list[str]:
    """Keys of the tasks a worker runs now, cancelled ones included (run on the worker)."""
    state = dask_worker.state
    return [str(ts.key) for ts in (*state.executing, *state.long_running)]
