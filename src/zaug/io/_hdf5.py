"""What the HDF5-based readers (Imaris, BigDataViewer) share: h5py, and stacks read on demand."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._reads import full_key, key_range


def h5py_for(what: str, extra: str, convert: str):
    """h5py, with the compression filters of hdf5plugin where installed; else one sentence on how to get it
    (``what`` the kind of file, ``extra`` zaug's optional extra, ``convert`` how to convert the file instead)."""
    try:
        import h5py
    except ImportError as exc:
        raise InputError(f"reading {what} needs h5py: pip install 'zaug[{extra}]' (or pip install h5py); or "
                         f"convert the file to OME-TIFF first ({convert}).") from exc
    try:  # the compression filters some writers use (LZ4, Blosc), where installed
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


def check_filters(path: Path, arrays) -> None:
    """Refuse, in one sentence, arrays compressed with a filter this h5py cannot decode (LZ4 or Blosc without
    hdf5plugin), rather than read them as damaged."""
    import h5py

    for array in arrays:
        plist = array.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code, _, _, name = plist.get_filter(i)
            if not h5py.h5z.filter_avail(code):
                label = name.decode("latin-1", "replace") if isinstance(name, bytes) else str(name)
                raise InputError(f"{path} is compressed with a filter h5py lacks ({label or 'filter'} {code}): pip "
                                 "install hdf5plugin, then read it again.")


class H5Planes:
    """A stack kept in an HDF5 file as one 3D array (z, y, x) per time point and channel, read on demand.

    ``pattern`` names an array from its time point and channel (``"{T}"`` and
    ``"{C}"``, formatted with ``fixed`` entries too); ``lead`` names the axes
    kept (letter, the file's numbers); ``size`` cuts the arrays to the image
    (a writer may pad them); an array the file lacks reads as zeros (its
    reader says so). Indexing reads only the part of each array it
    asks for; ``view`` reinterprets the stored type (BigDataViewer keeps
    unsigned 16-bit values as signed ones). It pickles as its parts: the
    workers of a dask cluster open the file themselves (a handle per thread).
    """

    def __init__(self, path: Path, pattern: str, lead: list[tuple[str, tuple[int, ...]]], fixed: dict,
                 size: tuple[int, int, int], dtype, view=None):
        self.path, self.pattern, self.fixed = Path(path), str(pattern), {k: int(v) for k, v in fixed.items()}
        self.lead = [(axis, tuple(int(i) for i in values)) for axis, values in lead]
        self.size, self.stored = tuple(int(n) for n in size), np.dtype(dtype)
        self.view = None if view is None else np.dtype(view)
        self.dtype = self.view or self.stored
        self.shape = tuple(len(values) for _, values in self.lead) + self.size
        self.ndim = len(self.shape)
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path, "pattern": self.pattern, "lead": self.lead, "fixed": self.fixed,
                "size": self.size, "dtype": self.stored, "view": self.view}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _file(self):
        if getattr(self._local, "file", None) is None:
            import h5py

            self._local.file = h5py.File(self.path, "r")
        return self._local.file

    def __getitem__(self, key) -> np.ndarray:
        key = full_key(key, self.ndim)
        n_lead = len(self.lead)
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else [k] for k, n in zip(key[:n_lead], self.shape)]
        spans = [key_range(k, n) for k, n in zip(key[n_lead:], self.size)]
        out = np.zeros([len(r) for r in ranges] + [len(r) for r in spans], self.stored)
        if out.size:
            f = self._file()
            # the box from the first voxel asked for to the last, then every step-th of it
            box = tuple(slice(r.start, r.start + (len(r) - 1) * r.step + 1) for r in spans)
            steps = tuple(slice(None, None, r.step) for r in spans)
            for index in itertools.product(*[enumerate(r) for r in ranges]):
                where = dict(self.fixed, **{axis: values[i] for (axis, values), (_, i) in zip(self.lead, index)})
                name = self.pattern.format(**where)
                if name in f:
                    out[tuple(i for i, _ in index)] = f[name][box][steps]
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        out = out[drop]
        return out.view(self.view) if self.view is not None else out
