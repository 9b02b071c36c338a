"""Plane triplets for slice interpolation (ZAugNet, ZAugNet+).

A triplet is two outer planes and the plane between them that the network
learns to predict. From a stack of N planes (the user's anisotropic stack, or a
finely sampled one), triplets ``(i, j, k)`` with ``i < j < k`` give a target
``j`` at relative position ``t = (z_j - z_i) / (z_k - z_i)``.

ZAugNet uses consecutive triplets ``(i, i+1, i+2)``: on the user's own stack
the outer planes are twice as far apart as the planes the model interpolates
between at prediction. ZAugNet+ uses every gap ``k - i <= max_gap``.

Examples
--------
>>> from zaug.data.triplets import triplet_indices
>>> triplet_indices(5, max_gap=2)
[(0, 1, 2), (1, 2, 3), (2, 3, 4)]
>>> len(triplet_indices(5, max_gap=4, all_positions=True))
10
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


def triplet_indices(n_planes: int, max_gap: int = 2, all_positions: bool = False,
                    planes: set[int] | None = None) -> list[tuple[int, int, int]]:
    """Index triplets ``(i, j, k)`` within ``n_planes``.

    Parameters
    ----------
    n_planes : int
        Number of planes in the stack.
    max_gap : int
        Largest ``k - i``.
    all_positions : bool
        False: only the middle plane of even gaps (ZAugNet, t = 0.5);
        True: every ``j`` between ``i`` and ``k`` (ZAugNet+).
    planes : set of int, optional
        Only triplets whose three planes are all in this set.
    """
    out = []
    for gap in range(2, max_gap + 1):
        for i in range(n_planes - gap):
            k = i + gap
            middles = range(i + 1, k) if all_positions else ([i + gap // 2] if gap % 2 == 0 else [])
            for j in middles:
                if planes is None or {i, j, k} <= planes:
                    out.append((i, j, k))
    return out


def split_validation(n_planes: int, fraction: float = 0.15, min_planes: int = 3) -> tuple[set[int], set[int]]:
    """Split plane indices into a training set and a contiguous validation block.

    The block sits in the middle of the stack (where the sample usually is);
    no plane of it is ever used for training, as input or as target. The
    larger side keeps at least 3 consecutive planes, one training triplet.
    """
    n_val = max(min_planes, int(round(n_planes * fraction)))
    if n_planes - n_val < 5:
        raise InputError(f"the stack has {n_planes} planes: too few to train on and hold out "
                         f"{n_val} for validation (at least {fewest_planes(fraction, min_planes)} are needed).")
    start = (n_planes - n_val) // 2
    val = set(range(start, start + n_val))
    return set(range(n_planes)) - val, val


def fewest_planes(fraction: float = 0.15, min_planes: int = 3) -> int:
    """The fewest planes :func:`split_validation` accepts: 5 to train on beside the validation block.

    >>> fewest_planes(), fewest_planes(min_planes=5)
    (8, 10)
    """
    return next(n for n in range(5, 1000) if n - max(min_planes, int(round(n * fraction))) >= 5)


@dataclass
class TripletSampler:
    """Random training patches from plane triplets.

    Parameters
    ----------
    stacks : list of numpy.ndarray
        Normalised float32 ZYX stacks.
    triplets : list of list of (i, j, k)
        Triplets per stack.
    z : list of numpy.ndarray
        Plane positions per stack (for t).
    patch : int
        Patch size (pixels); planes smaller than that are used whole (padded by reflection).
    foreground_bias : float
        Probability of keeping the brightest of a few candidate patches instead of a random one.
    """

    stacks: list
    triplets: list
    z: list
    patch: int = 64
    foreground_bias: float = 0.7
    candidates: int = 4

    def __post_init__(self) -> None:
        self._flat = [(s, t) for s, trips in enumerate(self.triplets) for t in trips]
        if not self._flat:
            raise InputError("no training triplets: the stack has too few planes for this method.")

    def __len__(self) -> int:
        return len(self._flat)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A batch ``(I0, I1, target, t)``: arrays ``(B, 1, P, P)`` and ``t`` of shape ``(B,)``."""
        i0s, i1s, gts, ts = [], [], [], []
        for _ in range(batch):
            s, (i, j, k) = self._flat[rng.integers(len(self._flat))]
            stack, z = self.stacks[s], self.z[s]
            t = (z[j] - z[i]) / (z[k] - z[i])
            planes = self._crop(stack, (i, j, k), rng)
            planes = _augment(planes, rng)
            if rng.random() < 0.5:  # reversed triplet: position 1 - t
                planes, t = planes[::-1], 1.0 - t
            i0s.append(planes[0])
            gts.append(planes[1])
            i1s.append(planes[2])
            ts.append(t)
        as_batch = lambda xs: np.ascontiguousarray(np.stack(xs)[:, None], dtype=np.float32)  # noqa: E731
        return as_batch(i0s), as_batch(i1s), as_batch(gts), np.asarray(ts, np.float32)

    def _crop(self, stack: np.ndarray, idx: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
        p = self.patch
        ny, nx = stack.shape[1:]
        planes = stack  # indexed by the triplet only after cropping: planes may be large
        if ny < p or nx < p:  # pad a short side by reflection; a long side still gets a random offset
            planes = np.pad(stack[list(idx)], ((0, 0), (0, max(0, p - ny)), (0, max(0, p - nx))), mode="reflect")
            ny, nx, idx = *planes.shape[1:], (0, 1, 2)
        n_cand = self.candidates if rng.random() < self.foreground_bias else 1
        best, best_mean = None, -np.inf
        for _ in range(n_cand):
            y, x = rng.integers(0, ny - p + 1), rng.integers(0, nx - p + 1)
            mean = float(planes[idx[1], y:y + p, x:x + p].mean())
            if mean > best_mean:
                best, best_mean = (y, x), mean
        y, x = best
        return planes[list(idx), y:y + p, x:x + p]


def _augment(planes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flips, 90-degree rotations and one intensity scale for the whole triplet.

    The scale is at most 1 so targets stay inside [0, 1] (the network's output
    range); rotations by multiples of 90 degrees leave no empty corners.
    """
    planes = np.rot90(planes, k=int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        planes = planes[:, :, ::-1]
    return planes * np.float32(rng.uniform(0.7, 1.0))


@dataclass
class LateralTripletSampler:
    """Triplets of axial planes along the finer lateral axes of the same stack.

    In a stack with z spacing ``dz`` and pixel size ``dx``, the xz (or yz) planes
    at ``y``, ``y + g``, ``y + 2g`` with ``2 g dx ~ dz`` form a triplet whose outer
    planes are as far apart as the acquired planes the model interpolates
    between at prediction (z triplets are twice as far). Only rows of training
    planes are used, in contiguous runs, so validation planes never leak in.

    Parameters
    ----------
    segments : list of numpy.ndarray
        Normalised ZYX runs of consecutive training planes (at least 4 planes).
    gaps : list of int or (int, int)
        Lateral gap ``g`` (pixels) per segment, or ``(g_y, g_x)`` where the
        pixel is not square. An axis of a segment shorter than ``2 g + 1`` is
        not used.
    patch : int
        Patch width along the lateral axis; rows are the segment's planes.
    """

    segments: list
    gaps: list
    patch: int = 64

    def __post_init__(self) -> None:
        if not self.segments:
            raise InputError("no run of 4 or more consecutive training planes for lateral triplets.")
        self.rows = min(len(s) for s in self.segments)
        pairs = [(g, g) if np.ndim(g) == 0 else tuple(g) for g in self.gaps]
        # (segment, axis, gap) where three planes g apart fit
        self._choices = [(s, axis, int(g[axis - 1])) for s, g in enumerate(pairs) for axis in (1, 2)
                         if self.segments[s].shape[axis] > 2 * int(g[axis - 1])]
        if not self._choices:
            raise InputError("the planes are too small for lateral triplets at this gap.")

    def sample(self, batch: int, rng: np.random.Generator):
        """A batch ``(I0, I1, target, t)`` of shape ``(B, 1, rows, patch)``, ``t = 0.5``."""
        out = []
        for _ in range(batch):
            s, axis, g = self._choices[int(rng.integers(len(self._choices)))]
            seg = self.segments[s]
            n = seg.shape[axis]
            p = int(rng.integers(0, n - 2 * g))
            planes = np.stack([np.take(seg, p + k * g, axis=axis) for k in range(3)])  # (3, Z, W)
            z0 = int(rng.integers(0, planes.shape[1] - self.rows + 1))
            w = planes.shape[2]
            width = min(self.patch, w)
            x0 = int(rng.integers(0, w - width + 1))
            planes = planes[:, z0:z0 + self.rows, x0:x0 + width]
            if rng.random() < 0.5:
                planes = planes[:, ::-1]
            if rng.random() < 0.5:
                planes = planes[:, :, ::-1]
            if rng.random() < 0.5:
                planes = planes[::-1]
            out.append(planes * np.float32(rng.uniform(0.7, 1.0)))
        arr = np.ascontiguousarray(np.stack(out), dtype=np.float32)  # (B, 3, R, W)
        return arr[:, 0:1], arr[:, 2:3], arr[:, 1:2], np.full(batch, 0.5, np.float32)


def training_runs(n_planes: int, train_planes: set[int], min_len: int = 4) -> list[list[int]]:
    """Contiguous runs of training plane indices of at least ``min_len`` planes."""
    runs, current = [], []
    for i in range(n_planes):
        if i in train_planes:
            current.append(i)
        else:
            if len(current) >= min_len:
                runs.append(current)
            current = []
    if len(current) >= min_len:
        runs.append(current)
    return runs
