"""Atomic, non-destructive output: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError


def check_output_path(path: str | os.PathLike, overwrite: bool = False,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse an output that would destroy data.

    Parameters
    ----------
    path : path-like
        Where the output is to go.
    overwrite : bool
        Allow replacing an existing output.
    inputs : iterable of path-like
        Input files of this run; an output equal to one of them is always refused.

    Returns
    -------
    pathlib.Path
        The output path.
    """
    out = Path(path)
    for src in inputs:
        if out.resolve() == Path(src).resolve():
            raise OutputError(f"the output {out} is the input file; choose another output path.")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} already exists; pass --overwrite to replace it.")
    if not out.parent.exists():
        raise OutputError(f"the folder {out.parent} does not exist; create it first.")
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success, rename it onto ``path``.

    A run killed half-way leaves only the hidden temporary file (or folder),
    never a half-written file under the final name. The temporary name keeps
    the suffixes of ``path`` so that writers that look at them still work.
    """
    final = Path(path)
    tmp = final.with_name(f".zaug-partial-{os.getpid()}-{final.name}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            # os.replace cannot replace a non-empty folder: move it aside first.
            old = final.with_name(f".zaug-old-{os.getpid()}-{final.name}")
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
