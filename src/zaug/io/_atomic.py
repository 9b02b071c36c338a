"""Atomic, non-destructive output: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..errors import OutputError, ZaugWarning


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: a link, or a case-insensitive disk (macOS, Windows: Stack.tif is stack.tif)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def is_url(path) -> bool:
    """Whether ``path`` is a URL (``https://...``, ``s3://...``) rather than a local path (``C:\\...`` too)."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", str(path)) is not None


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
    if is_url(path):
        raise OutputError(f"{path} is a URL: zaug writes to local files and folders only; write there and copy "
                          "the result.")
    out = Path(path)
    for src in inputs:
        if _same_file(out, Path(src)):
            raise OutputError(f"the output {out} is the input file; choose another output path.")
        if out.resolve() in Path(src).resolve().parents:
            raise OutputError(f"the input {src} is inside the output {out}, which writing would replace; "
                              "choose another output path.")
        if Path(src).is_dir() and Path(src).resolve() in out.resolve().parents:
            raise OutputError(f"the output {out} is inside the input {src}, which would no longer be the store it "
                              "was; choose another output path.")
    if os.path.lexists(out) and not overwrite:  # a dangling link too: exists() says False for it
        raise OutputError(f"{out} already exists; pass --overwrite to replace it.")
    if out.is_dir() and not out.is_symlink():
        _check_replaceable_store(out)
    check_parent_folder(out)
    if not out.parent.exists():
        raise OutputError(f"the folder {out.parent} does not exist; create it first.")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputError(f"the folder {out.parent} is not writable; choose another output path.")
    _warn_about_leftovers(out)
    return out


_SAID: set[tuple[str, tuple[str, ...]]] = set()


def _warn_about_leftovers(out: Path) -> None:
    """Point at hidden partial outputs of runs that were killed (``kill -9``, a node lost), which no later
    run removes: another run may still be writing one."""
    left = sorted(p.name for p in out.parent.glob(".zaug-partial-*") if p.name.endswith(f"-{out.name}"))
    said = (str(out.absolute()), tuple(left))
    if left and said not in _SAID:  # once: a command checks its output before the work and when it writes
        _SAID.add(said)
        warnings.warn(ZaugWarning(f"{out.parent} holds {len(left)} hidden partial output(s) of {out.name} from "
                                  f"runs that did not finish ({left[0]}{', ...' if len(left) > 1 else ''}): "
                                  "remove them unless a run is still writing."), stacklevel=3)


ZARR_METADATA = {".zattrs", ".zgroup", ".zarray", ".zmetadata", "zarr.json"}


def _check_replaceable_store(folder: Path) -> None:
    """Refuse to replace a folder that is not a zarr store: ``--overwrite`` replaces an earlier output,
    never a folder of the user's files that happens to have the output's name."""
    def is_node(path: Path) -> bool:
        return any((path / name).exists() for name in ZARR_METADATA)

    foreign = [p.name for p in sorted(folder.iterdir())
               if not p.name.startswith((".zaug-partial-", ".zaug-old-"))
               and not (p.name in ZARR_METADATA or (p.is_dir() and is_node(p)))]
    foreign = foreign or _foreign_files_inside(folder)
    if foreign or (not is_node(folder) and any(folder.iterdir())):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        held = f"holds files that are not part of a zarr store ({shown})" if foreign else "is not a zarr store"

        raise OutputError(f"{folder} is a folder that {held}, so --overwrite will not replace it; "
                          "choose another output path.")


def _foreign_files_inside(store: Path) -> list[str]:
    """The first file below the top of ``store`` that is neither zarr metadata nor a chunk (a name of digits,
    ``.`` separated): a file of the user's in an array's folder, which replacing the store would delete."""
    for root, dirs, files in os.walk(store):
        if Path(root) == store:  # the top level is checked by the caller
            dirs[:] = [d for d in dirs if not d.startswith((".zaug-partial-", ".zaug-old-"))]
            continue
        for name in files:
            if name not in ZARR_METADATA and not _CHUNK_KEY.fullmatch(name):
                return [str(Path(root, name).relative_to(store))]
    return []


_CHUNK_KEY = re.compile(r"\d+(\.\d+)*")


def check_parent_folder(path: str | os.PathLike, what: str | None = None) -> None:
    """Refuse, in one sentence, an output below a file (``stack.tif/out.tif``) or in a folder this process
    cannot write (the nearest one that exists: the writers make the missing ones), before any work.

    ``what`` names the output in the sentence (default ``path``).
    """
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{parent} is a file, not a folder, so {what or path} cannot be written there; "
                                  "choose another output path.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"the folder {parent} is not writable, so {what or path} cannot be written "
                                  "there; choose another output path.")
            return


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path; on success, rename it onto ``path``.

    A run killed half-way leaves only the hidden temporary file (or folder),
    never a half-written file under the final name. The temporary name keeps
    the suffixes of ``path`` so that writers that look at them still work.
    With ``overwrite=False`` the rename refuses a ``path`` that appeared
    while this run was writing (another run with the same output): checking
    at the start alone let the later run replace the earlier one's result.
    A failure to write (a full disk, a read-only folder) is an
    :class:`~zaug.OutputError` that names ``path``.
    """
    final = Path(path)
    tmp = final.with_name(_hidden_name(".zaug-partial-", final.name))
    try:
        yield tmp
        if not overwrite:
            _place_new(tmp, final)
        elif os.path.lexists(final) and (tmp.is_dir() or (final.is_dir() and not final.is_symlink())):
            # os.replace cannot put a folder where a file or link is, nor replace a non-empty folder:
            # move it aside first.
            old = final.with_name(_hidden_name(".zaug-old-", final.name))
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        _remove_settled(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}.") from exc
        raise
    finally:
        _remove(tmp)


@contextlib.contextmanager
def folder_beside(final: Path, what: str | None = None) -> Iterator[Path]:
    """Yield a new hidden folder beside ``final`` in which a run builds what goes into ``final``, removed on the
    way out (the caller moves what it keeps into ``final`` at the end): interrupted or failed half-way, the run
    leaves ``final`` as it was. A failure to write is an :class:`~zaug.OutputError` that names ``what``
    (default ``final``)."""
    stage = Path(final).absolute().parent / _hidden_name(".zaug-partial-", Path(final).name)
    try:
        stage.mkdir(parents=True)
        yield stage
    except OSError as exc:
        raise OutputError(f"cannot write {what or final}: {exc.strerror or exc}.") from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _hidden_name(prefix: str, name: str) -> str:
    """``prefix``, this process and a random token, then the end of ``name`` (which holds its suffixes),
    within the 255 characters a file name may have: the token keeps two hosts of one cluster file system
    whose processes share a pid apart."""
    head = f"{prefix}{os.getpid()}-{secrets.token_hex(4)}-"
    return head + name[-(255 - len(head)):]


def _place_new(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final`` only if nothing is there, without a window between look and leap."""
    clash = OutputError(f"{final} appeared while this run was writing it (another run with the same output?); "
                        "it was left as it is and this run's result was not kept.")
    if tmp.is_dir():
        if os.path.lexists(final):
            raise clash
        try:
            os.rename(tmp, final)  # fails on a folder with files or a file that appeared since
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise clash from exc
            raise
        return
    try:
        os.link(tmp, final)  # fails if final exists, whatever appeared there
    except FileExistsError as exc:
        raise clash from exc
    except OSError:  # a file system without hard links: look, then rename
        if os.path.lexists(final):
            raise clash from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def clear_own_folder(folder: str | os.PathLike, entries: Iterable[str] | Mapping[str, Iterable[str] | None],
                     what: str, keep: Iterable[str] = ()) -> None:
    """Remove from ``folder`` the entries zaug wrote there, refusing if it holds anything else.

    ``--overwrite`` replaces zaug's own output; a folder that also holds other files (the user's
    stack, notes) is refused whole rather than emptied, so that nothing zaug did not write is lost.

    Parameters
    ----------
    folder : path-like
        A folder zaug is about to write into again.
    entries : iterable of str, or mapping
        Names (files or folders) that zaug writes there; hidden temporary names of an
        interrupted write (``.zaug-partial-*``, ``.zaug-old-*``) count as zaug's too. A
        mapping gives, for a folder zaug writes, the names zaug writes inside it (checked the
        same way, at any depth); ``None`` for a file or a folder wholly zaug's.
    what : str
        What the folder is, for the message ("a zaug model folder").
    keep : iterable of str
        Names among ``entries`` to leave in place (a lock the caller holds).
    """
    folder = Path(folder)
    check_own_folder(folder, entries, what)
    for name in {p.name for p in folder.iterdir()} - set(keep):
        _remove(folder / name)


def check_own_folder(folder: str | os.PathLike, entries, what: str) -> None:
    """Refuse, as :func:`clear_own_folder` would, a folder holding anything zaug did not write there
    (checked before the work of a run that clears it at the end)."""
    foreign = _foreign_entries(Path(folder), entries)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(f"{folder} holds files zaug did not write ({shown}), so it is not only {what}; "
                          "choose another output.")


def _foreign_entries(folder: Path, entries, prefix: str = "") -> list[str]:
    """Paths below ``folder`` (relative, sorted) that are not among zaug's ``entries``."""
    own = entries if isinstance(entries, Mapping) else dict.fromkeys(entries)
    out = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith((".zaug-partial-", ".zaug-old-")):
            continue
        if name not in own:
            out.append(prefix + name)
        elif own[name] is not None and path.is_dir() and not path.is_symlink():
            out += _foreign_entries(path, own[name], f"{prefix}{name}/")
    return out


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
