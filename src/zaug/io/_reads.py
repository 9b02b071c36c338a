"""Lazy reads that say where a file is damaged."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


class NamedReads:
    """An array-like over ``array`` whose failed reads name the file and the region.

    Lazy inputs are read tile by tile while the output is computed, so a damaged
    chunk or page (bad compression, truncated file) would otherwise surface as
    the decompressor's own error, far from the file. It pickles as its parts, so
    dask cluster workers read through it too.

    Examples
    --------
    >>> import numpy as np
    >>> reads = NamedReads(np.arange(24).reshape(2, 3, 4), "stack.zarr", "ZYX")
    >>> reads[1, :, 2:].tolist()
    [[14, 15], [18, 19], [22, 23]]
    """

    def __init__(self, array, path, axes: str):
        self.array, self.path, self.axes = array, Path(path), axes
        self.shape, self.dtype, self.ndim = tuple(array.shape), array.dtype, len(array.shape)

    def __getitem__(self, index):
        try:
            return self.array[index]
        except Exception as exc:  # noqa: BLE001 - codecs and stores raise many kinds
            raise InputError(f"{self.path} cannot be read at {self._region(index)} ({type(exc).__name__}: {exc}); "
                             "the file is damaged there: copy it again or restore that part.") from exc

    def _region(self, index) -> str:
        index = index if isinstance(index, tuple) else (index,)
        if Ellipsis in index:  # every axis it stands for, whole
            at = index.index(Ellipsis)
            index = index[:at] + (slice(None),) * (len(self.shape) - len(index) + 1) + index[at + 1:]
        parts = []
        for axis, size, item in zip(self.axes, self.shape, index):
            if isinstance(item, slice):
                start, stop, _ = item.indices(size)
                parts.append(f"{axis.lower()} {start}:{stop}")
            else:
                parts.append(f"{axis.lower()} {item}")
        return ", ".join(parts)


def full_key(key, ndim: int) -> tuple:
    """An index of an array-like as one entry per axis: the axes an ``Ellipsis`` or a short key leaves out
    taken whole."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1:]
    return key + (slice(None),) * (ndim - len(key))


def key_range(key, n: int) -> range:
    """The indices one axis's key takes (a single index, negative too, as a range of one); positive steps
    only, as the readers of files read from the first index asked for to the last."""
    if not isinstance(key, slice):
        index = int(key) + n if int(key) < 0 else int(key)
        if not 0 <= index < n:
            raise IndexError(f"index {int(key)} is out of range for an axis of {n}")
        key = slice(index, index + 1)
    r = range(*key.indices(n))
    if r.step < 0:
        raise IndexError("a file is read with positive steps only")
    return r


def read_planes(planes, path, axes: str, lazy: bool):
    """A file-backed array-like's pixels: with ``lazy``, a dask array of one plane by up to 512 x 512 pixels
    per chunk, read when needed; else read now, one index of the first axis at a time (a damaged part is
    named)."""
    reads = NamedReads(planes, path, axes)
    if lazy:
        import dask.array as da

        chunks = (1,) * (len(planes.shape) - 2) + tuple(min(512, n) for n in planes.shape[-2:])
        return da.from_array(reads, chunks=chunks, asarray=False)
    import numpy as np

    return np.stack([reads[i] for i in range(planes.shape[0])])
