"""Isotropic restoration of a whole volume from a plane restorer.

A *plane restorer* turns coarsely sampled axial planes into finely sampled
ones (a network trained on degraded lateral planes, or plain interpolation).
:func:`restore_volume` applies it to every xz plane (z, x at each y) and every
yz plane (z, y at each x), fuses the two results and returns a volume sampled
at the lateral voxel size (or a given z spacing). Intensities are normalised
here with percentiles, so restorers always see about [0, 1].

Axial coordinates are in *low-res sample units*: acquired plane ``k`` is at
``u = k`` (non-uniform plane positions are mapped piecewise linearly).

Examples
--------
>>> import numpy as np
>>> from zaug import Volume
>>> from zaug.restore import ClassicalRestorer, restore_volume
>>> vol = Volume(np.random.default_rng(0).integers(0, 255, (5, 16, 12), dtype=np.uint8), (1.0, 0.25, 0.25), "um")
>>> out = restore_volume(vol, ClassicalRestorer("linear"))
>>> out.data.shape, out.data.dtype, out.voxel_size
((17, 16, 12), dtype('uint8'), (0.25, 0.25, 0.25))
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from .classic import CLASSICAL_METHODS, CUBIC_REACH, interpolate_stack
from .data.lateral import DEFAULT_PERCENTILES, normalise, percentile_range
from .errors import InputError, ZaugWarning
from .predict import cast_like, output_positions, warn_about_spacing
from .progress import advance, part
from .volume import Volume, check_volume

FUSIONS = ("mean", "geometric", "xz", "yz")


class PlaneRestorer(Protocol):
    """What :func:`restore_volume` needs of a method."""

    def restore_planes(self, planes_lr: np.ndarray, out_rows: np.ndarray) -> np.ndarray:
        """Restore axial planes.

        Parameters
        ----------
        planes_lr : numpy.ndarray
            ``(n, h_lr, w)`` float32 planes normalised to about [0, 1]; the
            first axis of each plane (``h_lr``) is the coarsely sampled z axis.
        out_rows : numpy.ndarray
            Wanted positions along that axis in low-res sample units (row
            ``k`` at ``k``).

        Returns
        -------
        numpy.ndarray
            ``(n, len(out_rows), w)`` float32.
        """
        ...


class ClassicalRestorer:
    """Interpolation along the axial axis, behind the :class:`PlaneRestorer` interface.

    The baseline for learned restorers, and a way to test the pipeline without
    a network. Rows outside the acquired range take the nearest edge value.
    It works in plane units, as the learned restorers do: on unevenly spaced
    planes its cubic spline is not ``zaug predict cubic``'s, which uses the
    positions (linear and nearest are the same either way).

    Parameters
    ----------
    method : {'linear', 'cubic', 'nearest'}

    Examples
    --------
    >>> import numpy as np
    >>> planes = np.array([[[0.0], [2.0], [4.0]]], np.float32)  # (n=1, h_lr=3, w=1)
    >>> ClassicalRestorer("linear").restore_planes(planes, np.array([0.5, 1.25]))[0, :, 0]
    array([1. , 2.5], dtype=float32)
    """

    def __init__(self, method: str = "linear"):
        if method not in CLASSICAL_METHODS:
            raise InputError(f"unknown interpolation {method!r}; choose one of {', '.join(CLASSICAL_METHODS)}.")
        self.name = method

    def restore_planes(self, planes_lr: np.ndarray, out_rows: np.ndarray) -> np.ndarray:
        planes = np.asarray(planes_lr, dtype=np.float32)
        h_lr = planes.shape[1]
        if h_lr < 2:
            return np.repeat(planes, len(out_rows), axis=1)
        rows = np.clip(np.asarray(out_rows, dtype=np.float64), 0, h_lr - 1)
        # interpolate_stack works along axis 0: put the axial axis first.
        out = interpolate_stack(planes.transpose(1, 0, 2), np.arange(h_lr, dtype=np.float64), rows, self.name)
        return out.transpose(1, 0, 2)

    def __repr__(self) -> str:
        return f"ClassicalRestorer({self.name!r})"


def restore_volume(volume: Volume, restorer: PlaneRestorer, z_spacing: float | None = None,
                   fuse: str = "mean", batch: int = 64,
                   percentiles: tuple[float, float] = DEFAULT_PERCENTILES) -> Volume:
    """Restore every xz and yz plane and fuse them into a near-isotropic volume.

    Parameters
    ----------
    volume : Volume
        Anisotropic stack (any dtype; T/C stacks processed one at a time).
    restorer : PlaneRestorer
        Learned or :class:`ClassicalRestorer`.
    z_spacing : float, optional
        Output z spacing in the volume's unit (default: the mean lateral voxel
        size, or the input's z step if finer). Output planes run from the first to the last acquired plane.
    fuse : {'mean', 'geometric', 'xz', 'yz'}
        Mean or geometric mean (CARE; on normalised intensities clipped at 0)
        of the xz and yz results, or one direction only.
    batch : int
        Planes per call to the restorer (bounds its memory).
    percentiles : (float, float)
        Intensities mapped to 0 and 1 (per stack) before restoring.

    Returns
    -------
    Volume
        Same dtype, axes and lateral voxel size; z voxel size ``z_spacing``.
    """
    check_volume(volume)
    if fuse not in FUSIONS:
        raise InputError(f"unknown fusion {fuse!r}; choose one of {', '.join(FUSIONS)}.")
    if z_spacing is None:
        z_spacing = default_z_spacing(volume)
    z_in = volume.z_coords()
    z_out = output_positions(z_in, z_spacing=float(z_spacing))
    rows = np.interp(z_out, z_in, np.arange(volume.nz, dtype=np.float64))
    out = np.empty(volume.data.shape[:-3] + (len(z_out),) + volume.spatial_shape[1:], volume.dtype)
    with part(volume.n_stacks):
        for index, stack in volume.stacks():
            stack = np.asarray(stack)
            lo, hi = percentile_range(stack, percentiles)
            restored = restore_stack(normalise(stack, lo, hi), restorer, rows, fuse, batch)
            restored *= np.float32(hi - lo)  # in place: the restored stack is the largest array here
            restored += np.float32(lo)
            cast_like(restored, volume.dtype, out=out[index])
    from .provenance import after_step

    metadata = dict(after_step(volume, z_out, "restoration", restorer), fuse=fuse)
    return volume.replace(data=out, voxel_size=(float(z_spacing),) + volume.voxel_size[1:], z_positions=None,
                          z_origin=float(z_out[0]), metadata=metadata)


def default_z_spacing(volume: Volume) -> float:
    """The output z spacing of a restoration: the mean lateral voxel size (isotropic voxels), or the input's z
    step where that is finer already (a restoration never drops planes unasked).

    >>> import numpy as np
    >>> default_z_spacing(Volume(np.zeros((3, 4, 4)), (1.2, 0.3, 0.3), "um"))
    0.3
    >>> default_z_spacing(Volume(np.zeros((3, 4, 4)), (0.1, 0.3, 0.3), "um"))
    0.1
    """
    return min(0.5 * (volume.voxel_size[1] + volume.voxel_size[2]), volume.voxel_size[0])


def restore_stack(stack: np.ndarray, restorer: PlaneRestorer, rows: np.ndarray, fuse: str = "mean",
                  batch: int = 64) -> np.ndarray:
    """Restore a normalised float ZYX stack at axial positions ``rows`` (sample units)."""
    parts = []
    with part((fuse != "yz") * stack.shape[1] + (fuse != "xz") * stack.shape[2]):  # planes to restore
        if fuse != "yz":  # xz planes: (Y, Z, X) -> (Y, Zout, X) -> (Zout, Y, X)
            parts.append(_restore_planes(stack.transpose(1, 0, 2), restorer, rows, batch).transpose(1, 0, 2))
        if fuse != "xz":  # yz planes: (X, Z, Y) -> (X, Zout, Y) -> (Zout, Y, X)
            parts.append(_restore_planes(stack.transpose(2, 0, 1), restorer, rows, batch).transpose(1, 2, 0))
    if len(parts) == 1:
        return parts[0]
    if fuse == "geometric":
        return np.sqrt(np.maximum(parts[0], 0) * np.maximum(parts[1], 0))
    return 0.5 * (parts[0] + parts[1])


def _restore_planes(planes: np.ndarray, restorer: PlaneRestorer, rows: np.ndarray, batch: int) -> np.ndarray:
    out = np.empty((planes.shape[0], len(rows), planes.shape[2]), np.float32)
    batch = max(1, int(batch))
    for start in range(0, planes.shape[0], batch):
        chunk = np.ascontiguousarray(planes[start:start + batch], dtype=np.float32)
        result = np.asarray(restorer.restore_planes(chunk, rows), dtype=np.float32)
        if result.shape != (len(chunk), len(rows), planes.shape[2]):
            raise ValueError(f"restorer returned shape {result.shape}, expected "
                             f"{(len(chunk), len(rows), planes.shape[2])}")
        out[start:start + batch] = result
        advance(len(chunk))
    return out


class RestorationTiles:
    """A restoration model as a z-interpolator, for tile-by-tile restoration (:mod:`zaug.blockwise`).

    Tiles must share one intensity normalisation, so :meth:`for_stack`
    measures the percentiles on the stack's central window (the whole-stack
    path measures them on the whole stack) and every tile uses them.

    Parameters
    ----------
    method : PlaneRestorer or a volume restorer with ``restore_normalised``
        niiv and Self-Net restore planes; RESIN restores the stack in 3D.
    fuse : str
        Fusion of the xz and yz results (plane restorers).
    percentiles : (float, float)
        As in :func:`restore_volume`.
    """

    lateral_margin = 32  # context each side of a tile: more than the networks' receptive field reaches
    keeps_acquired = False  # every output plane is restored, the acquired ones too (as restore_volume does)

    def __init__(self, method, fuse: str = "mean", percentiles: tuple[float, float] = DEFAULT_PERCENTILES):
        if fuse not in FUSIONS:
            raise InputError(f"unknown fusion {fuse!r}; choose one of {', '.join(FUSIONS)}.")
        self.method, self.fuse, self.percentiles = method, fuse, percentiles
        self.name = getattr(method, "name", type(method).__name__)
        self.range: tuple[float, float] | None = None

    def axial_margin(self, z_in: np.ndarray, z_out: np.ndarray) -> int:
        """Input planes of context each side of a cut along z (:mod:`zaug.blockwise`): the networks' reach,
        ``lateral_margin`` output planes, plus the resampling spline's."""
        step_in = float(np.mean(np.diff(z_in))) if len(z_in) > 1 else 1.0
        step_out = float(np.mean(np.diff(z_out))) if len(z_out) > 1 else step_in
        return int(np.ceil(self.lateral_margin * step_out / step_in)) + CUBIC_REACH

    def for_stack(self, sample: np.ndarray, z_in, z_out, pixel_size=None) -> "RestorationTiles":
        """A copy that normalises every tile with the percentiles of ``sample``."""
        tiles = RestorationTiles(self.method, self.fuse, self.percentiles)
        tiles.range = percentile_range(sample, self.percentiles)
        return tiles

    def interpolate(self, stack: np.ndarray, z_in: np.ndarray, z_out: np.ndarray,
                    pixel_size: tuple[float, float] | None = None) -> np.ndarray:
        """Restored planes at ``z_out`` (see :class:`zaug.predict.ZInterpolator`)."""
        lo, hi = self.range if self.range is not None else percentile_range(stack, self.percentiles)
        rows = np.interp(z_out, z_in, np.arange(len(z_in), dtype=np.float64))
        x = normalise(np.asarray(stack), lo, hi)
        if hasattr(self.method, "restore_normalised"):
            restored = self.method.restore_normalised(x, rows)
        else:
            restored = restore_stack(x, self.method, rows, self.fuse)
        return restored * np.float32(hi - lo) + np.float32(lo)



def is_restorer(method) -> bool:
    """Whether ``method`` restores volumes (a plane restorer or a 3D model) rather than interpolating planes."""
    return hasattr(method, "restore_volume") or hasattr(method, "restore_planes")


def check_anisotropy(volume: Volume, method) -> None:
    """Warn when ``volume`` is much more or less anisotropic than the stack a learned restorer was trained on.

    The model learnt the axial blur and sampling of that stack, so on another
    anisotropy it may not transfer (as ZAugNet warns about another z spacing).
    Stacks without a voxel size and RESIN models of an oblique blur are not checked.
    """
    config = getattr(method, "config", None)
    trained = float(getattr(config, "factor", 0) or 0)
    if trained <= 0 or getattr(config, "axial_angle", 0) or _unknown_voxel_size(volume):
        return
    current = volume.anisotropy
    if not 1 / 1.5 <= current / trained <= 1.5:
        warnings.warn(ZaugWarning(
            f"the model learnt to restore a {trained:.2f}-fold anisotropy and this stack's is {current:.2f}-fold "
            "(z voxel size over lateral); its axial blur may differ from what the model learnt: consider training "
            "on this stack."), stacklevel=3)


def _unknown_voxel_size(volume: Volume) -> bool:
    return volume.unit == "pixel" and volume.voxel_size == (1.0, 1.0, 1.0)


def with_training_anisotropy(volume: Volume, method) -> Volume:
    """``volume``, or, when its file gave no voxel size, the same stack with a z step of the anisotropy that
    ``method`` (a learned restorer) was trained for, with a warning.

    Without it the stack would read as isotropic already (1 pixel on every
    axis) and be restored onto the planes it has: nothing done.
    """
    config = getattr(method, "config", None)
    trained = float(getattr(config, "factor", 0) or 0)
    if not _unknown_voxel_size(volume) or trained <= 1 or getattr(config, "axial_angle", 0):
        return volume
    warnings.warn(ZaugWarning(
        f"the stack has no voxel size, so its z step is taken as {trained:.3g} pixels, the anisotropy the model was "
        f"trained for; give the voxel size (--voxel-size Z Y X) if it is another."), stacklevel=3)
    return volume.replace(voxel_size=(trained, 1.0, 1.0), z_positions=None)


def warn_if_coarser(volume: Volume, z_spacing: float | None) -> None:
    """Warn, as interpolation does (:func:`zaug.predict.warn_about_spacing`), what an asked-for ``z_spacing``
    drops: acquired planes when it is coarser than the input's, the last plane when the extent is not a whole
    number of steps. (The default spacing, the lateral pixel size, is not a choice to warn about.)"""
    if z_spacing is not None:
        z_in = volume.z_coords()
        warn_about_spacing(z_in, output_positions(z_in, z_spacing=float(z_spacing)), z_spacing, volume.unit)


def restore_with(volume: Volume, method, z_spacing: float | None = None, fuse: str = "mean") -> Volume:
    """Restore ``volume`` with a 3D model (RESIN: its own ``restore_volume``) or a plane restorer (niiv,
    Self-Net, classical: xz and yz planes fused by :func:`restore_volume`).

    Warns (:func:`check_anisotropy`) when a learned model was trained at a very different anisotropy.
    """
    volume = with_training_anisotropy(volume, method)
    check_anisotropy(volume, method)
    warn_if_coarser(volume, z_spacing)
    if hasattr(method, "restore_volume"):
        return method.restore_volume(volume, z_spacing=z_spacing)
    return restore_volume(volume, method, z_spacing=z_spacing, fuse=fuse)
