"""Atomic, non-destructive output: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
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
        if out.resolve() in Path(src).resolve().parents:
            raise OutputError(f"the input {src} is inside the output {out}, which writing would replace; "
                              "choose another output path.")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} already exists; pass --overwrite to replace it.")
    if out.is_dir() and not out.is_symlink():
        _check_replaceable_store(out)
    check_parent_folder(out)
    if not out.parent.exists():
        raise OutputError(f"the folder {out.parent} does not exist; create it first.")
    return out


ZARR_METADATA = {".zattrs", ".zgroup", ".zarray", ".zmetadata", "zarr.json"}


def _check_replaceable_store(folder: Path) -> None:
    """Refuse to replace a folder that is not a zarr store: ``--overwrite`` replaces an earlier output,
    never a folder of the user's files that happens to have the output's name."""
    def is_node(path: Path) -> bool:
        return any((path / name).exists() for name in ZARR_METADATA)

    foreign = [p.name for p in sorted(folder.iterdir())
               if not p.name.startswith((".zaug-partial-", ".zaug-old-"))
               and not (p.name in ZARR_METADATA or (p.is_dir() and is_node(p)))]
    if foreign or (not is_node(folder) and any(folder.iterdir())):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        held = f"holds files that are not part of a zarr store ({shown})" if foreign else "is not a zarr store"

        raise OutputError(f"{folder} is a folder that {held}, so --overwrite will not replace it; "
                          "choose another output path.")


def check_parent_folder(path: str | os.PathLike) -> None:
    """Refuse an output below a file (``stack.tif/out.tif``) in one sentence."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{parent} is a file, not a folder, so {path} cannot be written there; "
                                  "choose another output path.")
            return


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
    except BaseException:
        _remove_settled(tmp)
        raise
    finally:
        _remove(tmp)


def clear_own_folder(folder: str | os.PathLike, entries: Iterable[str], what: str, keep: Iterable[str] = ()) -> None:
    """Remove from ``folder`` the entries zaug wrote there, refusing if it holds anything else.

    ``--overwrite`` replaces zaug's own output; a folder that also holds other files (the user's
    stack, notes) is refused whole rather than emptied, so that nothing zaug did not write is lost.

    Parameters
    ----------
    folder : path-like
        A folder zaug is about to write into again.
    entries : iterable of str
        Names (files or folders) that zaug writes there; hidden temporary names of an
        interrupted write (``.zaug-partial-*``, ``.zaug-old-*``) count as zaug's too.
    what : str
        What the folder is, for the message ("a zaug model folder").
    keep : iterable of str
        Names among ``entries`` to leave in place (a lock the caller holds).
    """
    folder = Path(folder)
    own = set(entries)
    names = sorted(p.name for p in folder.iterdir())
    foreign = [n for n in names if n not in own and not n.startswith((".zaug-partial-", ".zaug-old-"))]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(f"{folder} holds files zaug did not write ({shown}), so it is not only {what}; "
                          "choose another output.")
    for name in set(names) - set(keep):
        _remove(folder / name)


def _remove_settled(path: Path, checks: int = 5, wait_s: float = 0.2) -> None:
    """Remove ``path``, again if writes still in flight bring it back (an interrupted zarr store).

    zarr writes chunks from an event loop of its own; Ctrl-C stops the caller, not the chunks it
    already sent, which can land after a first removal and leave a hidden partial store.
    """
    store = path.is_dir()
    _remove(path)
    for _ in range(checks if store else 0):  # a single file is written by this thread alone
        time.sleep(wait_s)
        if path.exists() or path.is_symlink():
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
