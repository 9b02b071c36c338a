"""Downstream checks: do objects and filaments measured on a reconstruction match the truth?

The ZAugNet paper checks its outputs the way a biologist would use them: it
segments the reconstructed stack and the real finely sampled one, then compares
cell volumes, nuclear surface roughness (spherical-harmonic spectra) and
filament lengths. This module does the same with plain, deterministic
scikit-image pipelines, so that every method meets the same segmentation:

- **objects** (nuclei, cells): Gaussian smoothing of about one lateral pixel,
  one threshold (Otsu on the truth unless given), holes filled, touching
  objects split by a watershed on the distance map (markers: maxima at least
  ``split_um`` deep), objects below ``min_volume`` dropped; then volume, and
  roughness of the surface from a real spherical-harmonic fit;
- **filaments** (microtubules, vessels, mitochondria): the same smoothing and
  threshold, then the 3D skeleton (traced on the stack resampled to isotropic
  voxels), split into connected filaments whose lengths are those of minimum
  spanning trees over 26-connected steps, in physical units.

Every length and volume uses the voxel size. Filaments are traced on the stack
resampled to isotropic voxels, so that their lengths do not depend on their
direction (tubes of 1 um radius on 2 x 0.5 x 0.5 um voxels: within 12% along z,
in-plane and diagonally, against -33% to +22% traced on the voxels themselves);
each free end is carried on to the centre of its tip (thinning stops short of it). The Cellpose
and SOAX pipelines of the paper are not used (heavy
dependencies, and SOAX is not a Python library); the figures here compare
methods with each other and with the truth under one pipeline, which is what
the check is for.

Examples
--------
>>> import numpy as np
>>> z, y, x = np.mgrid[-12:13, -12:13, -12:13] * 0.5
>>> ball = (np.sqrt(z**2 + y**2 + x**2) < 4.0).astype(np.float32)
>>> labels = segment_objects(ball, (0.5, 0.5, 0.5), threshold=0.5)
>>> int(labels.max())
1
>>> round(object_volumes(labels, (0.5, 0.5, 0.5))[1] / (4 / 3 * np.pi * 4.0**3), 1)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage
from scipy.special import sph_harm_y_all
from skimage import filters, measure, morphology, segmentation

from .errors import InputError
from .io._units import conversion_factor

KINDS = ("objects", "filaments")

CONVENTIONS = {
    "objects": [
        "one pipeline for the truth and every method: Gaussian smoothing (sigma one lateral pixel), one threshold "
        "(Otsu on the smoothed truth), holes filled, touching objects split by a watershed on the distance map",
        "objects matched to the truth by largest overlap; matched = IoU of at least 0.5",
        "volume error = median over matched objects of |V - V_truth| / V_truth",
        "roughness = RMS radial deformation in spherical-harmonic degrees l_cut..l_max of the surface, "
        "relative to the mean radius (objects not touching the stack's border)",
    ],
    "filaments": [
        "one pipeline for the truth and every method: Gaussian smoothing (sigma one lateral pixel), one threshold "
        "(Otsu on the smoothed truth), 3D skeleton",
        "a filament is a connected piece of the skeleton; length summed along 26-connected steps in physical units, "
        "each free end carried on along its direction to the centre of its tip (mask edge less the radius)",
        "skeleton IoU: skeletons dilated by one voxel, then intersection over union (as the paper's SOAX masks)",
    ],
}


def check_downstream(kind: str | None) -> None:
    """Refuse an unknown check before any training starts."""
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown downstream check {kind!r}; choose one of {', '.join(KINDS)}.")


def smooth(stack: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Gaussian smoothing of about one lateral pixel, the same physical width on every axis."""
    lateral = float(min(voxel_size[1:]))
    sigma = [lateral / float(v) for v in voxel_size]
    return ndimage.gaussian_filter(np.asarray(stack, np.float32), sigma=sigma, mode="nearest")


def default_threshold(stack: np.ndarray, voxel_size: Sequence[float]) -> float:
    """Otsu's threshold of the smoothed stack."""
    smoothed = smooth(stack, voxel_size)
    if float(smoothed.max()) <= float(smoothed.min()):
        raise InputError("the stack is constant: there is nothing to segment.")
    return float(filters.threshold_otsu(smoothed))


#: objects smaller than this many cubes of the finest voxel size are dropped by default
MIN_VOLUME_VOXELS = 50


def segment_objects(stack: np.ndarray, voxel_size: Sequence[float], threshold: float | None = None,
                    split_um: float | None = 1.0, min_volume: float | None = None, unit: str = "um") -> np.ndarray:
    """Label blob-like objects (nuclei, cells) of a 3D stack.

    Parameters
    ----------
    stack : ndarray
        ZYX intensities.
    voxel_size : sequence of 3 floats
        z, y, x voxel size.
    threshold : float, optional
        Foreground threshold on the smoothed stack; default Otsu's.
    split_um : float or None
        Touching objects are split where the distance map has maxima at least
        this many micrometres deep (in the voxel size's own unit when that is
        not a length); None keeps connected components.
    min_volume : float, optional
        Smaller objects are dropped (the voxel size's unit cubed); default
        ``MIN_VOLUME_VOXELS`` cubes of the finest voxel size, the same on a
        stack and on its upsampled output.
    unit : str
        Unit of ``voxel_size`` (``"um"``, ``"nm"``, ``"m"``, ...).

    Returns
    -------
    ndarray of int32
        0 for background, 1..n for objects.
    """
    voxel_size = tuple(float(v) for v in voxel_size)
    threshold = default_threshold(stack, voxel_size) if threshold is None else float(threshold)
    mask = ndimage.binary_fill_holes(smooth(stack, voxel_size) > threshold)
    if split_um:
        distance = ndimage.distance_transform_edt(mask, sampling=voxel_size)
        depth = float(split_um) * (conversion_factor("um", unit) or 1.0)  # the same depth in nm as in um
        markers, _ = ndimage.label(morphology.h_maxima(distance, depth))
        labels = segmentation.watershed(-distance, markers, mask=mask)
    else:
        labels, _ = ndimage.label(mask)
    voxel_volume = float(np.prod(voxel_size))
    if min_volume is None:  # in physical units, so that a stack and its upsampled output keep the same objects
        min_volume = MIN_VOLUME_VOXELS * min(voxel_size) ** 3
    min_voxels = float(min_volume) / voxel_volume
    sizes = np.bincount(labels.ravel())
    small = sizes < min_voxels
    small[0] = True
    labels[small[labels]] = 0
    relabelled, _, _ = segmentation.relabel_sequential(labels)
    return relabelled.astype(np.int32)


def object_volumes(labels: np.ndarray, voxel_size: Sequence[float]) -> dict[int, float]:
    """Volume of each labelled object in the voxel size's unit cubed."""
    counts = np.bincount(labels.ravel())
    voxel_volume = float(np.prod(voxel_size))
    return {int(i): float(c) * voxel_volume for i, c in enumerate(counts) if i > 0 and c > 0}


def touches_border(labels: np.ndarray) -> set[int]:
    """Labels of objects cut by a face of the stack."""
    faces = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    return {int(v) for face in faces for v in np.unique(face) if v > 0}


def _real_sph_harm(l_max: int, polar: np.ndarray, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal real spherical harmonics up to degree ``l_max``: (points, (l_max+1)^2) and each column's l."""
    complex_y = sph_harm_y_all(l_max, l_max, polar, azimuth)  # (l, m, points); negative m counted from the end
    columns, degrees = [], []
    for l in range(l_max + 1):
        for m in range(-l, l + 1):
            y = complex_y[l, m]
            if m < 0:
                columns.append(np.sqrt(2) * (-1) ** m * y.imag)
            elif m == 0:
                columns.append(y.real)
            else:
                columns.append(np.sqrt(2) * (-1) ** m * y.real)
            degrees.append(l)
    return np.stack(columns, axis=1), np.asarray(degrees)


#: a voxel this many times longer on one axis than the finest is resampled before its surface is fitted
ROUGHNESS_RESAMPLE = 1.5


def surface_spectrum(mask: np.ndarray, voxel_size: Sequence[float], l_max: int = 12) -> tuple[np.ndarray, float]:
    """Spherical-harmonic power of one object's surface radius, per degree.

    The surface (marching cubes on the mask smoothed by about one lateral
    pixel, in physical units; a mask whose voxels are more than
    ``ROUGHNESS_RESAMPLE`` times longer on one axis is first resampled to the
    finest voxel size by its signed distance) is written as a radius
    r(theta, phi) around the object's centroid and fitted with real spherical
    harmonics up to ``l_max`` by least squares (the object must be star-shaped
    around its centroid, as nuclei are).

    Returns
    -------
    power : ndarray, shape (l_max + 1,)
        ``sum_m c_lm**2 / (4 pi)`` for each degree l: the mean square of the
        radius's degree-l component over the sphere.
    mean_radius : float
        ``c_00 / sqrt(4 pi)``.
    """
    spacing = np.asarray(voxel_size, float)
    padded = np.pad(np.asarray(mask, bool), 2)
    if padded.sum() < 8:
        raise InputError("the object is too small for a surface fit.")
    level = padded.astype(np.float32)
    zoom = spacing / spacing.min()
    if zoom.max() > ROUGHNESS_RESAMPLE:
        # the steps of coarse planes outlast the one-pixel smoothing and read as roughness (a smooth ball of
        # radius 5 on 2 x 0.5 x 0.5 voxels: 0.025, on 0.5 voxels 0.005). A binary mask resampled keeps its
        # steps; its signed distance (to the nearest voxel centre across, less half a voxel) does not: 0.008
        half = 0.5 * spacing.min()
        signed = np.where(padded, ndimage.distance_transform_edt(padded, sampling=spacing) - half,
                          half - ndimage.distance_transform_edt(~padded, sampling=spacing)).astype(np.float32)
        level = (ndimage.zoom(signed, zoom, order=1, grid_mode=True, mode="nearest") > 0).astype(np.float32)
        spacing = np.full(3, spacing.min())
    # the half-level of the smoothed mask: a surface without the voxel staircase, which would count as roughness
    smoothed = smooth(level, spacing)
    if not smoothed.max() > 0.5:  # a sliver (one plane thick) has no half-level surface
        raise InputError("the object is too thin for a surface fit.")
    vertices, _, _, _ = measure.marching_cubes(smoothed, 0.5, spacing=tuple(spacing))
    centre = (np.argwhere(level > 0.5).mean(axis=0)) * spacing
    offsets = vertices - centre
    radius = np.linalg.norm(offsets, axis=1)
    keep = radius > 0
    offsets, radius = offsets[keep], radius[keep]
    polar = np.arccos(np.clip(offsets[:, 0] / radius, -1, 1))  # z is the pole
    azimuth = np.arctan2(offsets[:, 1], offsets[:, 2])
    basis, degrees = _real_sph_harm(l_max, polar, azimuth)
    if len(radius) < 2 * basis.shape[1]:
        raise InputError(f"the object's surface has {len(radius)} points, too few for degree {l_max}.")
    coeffs, *_ = np.linalg.lstsq(basis, radius, rcond=None)
    if not coeffs[0] > 0:  # no radius function fits a surface this far from star-shaped
        raise InputError("the object's surface is not star-shaped around its centroid.")
    power = np.bincount(degrees, weights=coeffs**2, minlength=l_max + 1) / (4 * np.pi)
    return power, float(coeffs[0] / np.sqrt(4 * np.pi))


def surface_roughness(mask: np.ndarray, voxel_size: Sequence[float], l_cut: int = 5, l_max: int = 12) -> float:
    """Fine-scale roughness of one object's surface.

    The RMS of the radius's spherical-harmonic components of degree ``l_cut``
    to ``l_max`` over the sphere, divided by the mean radius: long-wavelength
    shape (degree below ``l_cut``: size, elongation, bending) is left out, as in
    the ZAugNet paper. A sphere gives about 0; bumps of 10% of the radius (about
    eight around the equator) give about 0.055, of 5% about 0.027.

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[-20:21, -20:21, -20:21].astype(float)
    >>> r = np.sqrt(z**2 + y**2 + x**2)
    >>> smooth_ball = r < 15
    >>> bumpy = r < 15 * (1 + 0.1 * np.cos(8 * np.arctan2(y, x)))
    >>> surface_roughness(smooth_ball, (1, 1, 1)) < 0.01 < surface_roughness(bumpy, (1, 1, 1))
    True
    """
    power, mean_radius = surface_spectrum(mask, voxel_size, l_max)
    return float(np.sqrt(power[l_cut:].sum()) / mean_radius)


def match_objects(truth: np.ndarray, other: np.ndarray) -> dict[int, tuple[int, float]]:
    """For each truth label, the label of ``other`` it overlaps most and their IoU (0, 0.0 when none)."""
    n_truth, n_other = int(truth.max()), int(other.max())
    both = (truth > 0) & (other > 0)
    overlap = np.zeros((n_truth + 1, n_other + 1), np.int64)
    np.add.at(overlap, (truth[both], other[both]), 1)
    size_t, size_o = np.bincount(truth.ravel(), minlength=n_truth + 1), np.bincount(other.ravel(),
                                                                                     minlength=n_other + 1)
    matches = {}
    for t in range(1, n_truth + 1):
        if size_t[t] == 0:
            continue
        o = int(np.argmax(overlap[t])) if n_other else 0
        inter = overlap[t, o] if o else 0
        matches[t] = (o, float(inter / (size_t[t] + size_o[o] - inter)) if o else 0.0)
    return matches


def _roughness_of(labels: np.ndarray, ids, voxel_size, l_cut: int, l_max: int) -> dict[int, float]:
    out = {}
    boxes = ndimage.find_objects(labels)
    for i in ids:
        box = boxes[i - 1]
        if box is None:
            continue
        try:
            out[i] = surface_roughness(labels[box] == i, voxel_size, l_cut, l_max)
        except InputError:  # too small for the fit: left out of the roughness figures
            continue
    return out


def measure_objects(labels: np.ndarray, voxel_size: Sequence[float], l_cut: int = 5, l_max: int = 12) -> dict:
    """Count, volumes and roughness of labelled objects (roughness only for objects inside the stack)."""
    volumes = object_volumes(labels, voxel_size)
    inside = sorted(set(volumes) - touches_border(labels))
    rough = _roughness_of(labels, inside, voxel_size, l_cut, l_max)
    values = list(volumes.values())
    return {
        "count": len(volumes),
        "inside": len(inside),
        "median_volume": float(np.median(values)) if values else float("nan"),
        "total_volume": float(np.sum(values)),
        "mean_roughness": float(np.mean(list(rough.values()))) if rough else float("nan"),
        "volumes": volumes,
        "roughness": rough,
    }


def compare_objects(truth_labels: np.ndarray, labels: np.ndarray, voxel_size: Sequence[float],
                    truth_measures: dict | None = None, l_cut: int = 5, l_max: int = 12) -> dict:
    """Object-level agreement of a segmentation with the truth's (volumes, IoU, roughness)."""
    truth_measures = truth_measures or measure_objects(truth_labels, voxel_size, l_cut, l_max)
    measures = measure_objects(labels, voxel_size, l_cut, l_max)
    matches = {t: m for t, m in match_objects(truth_labels, labels).items() if m[1] >= 0.5}
    vt, vo = truth_measures["volumes"], measures["volumes"]
    rel = [(vo[o] - vt[t]) / vt[t] for t, (o, _) in matches.items()]
    rough_pairs = [(truth_measures["roughness"][t], measures["roughness"][o]) for t, (o, _) in matches.items()
                   if t in truth_measures["roughness"] and o in measures["roughness"]]
    return {
        "count": measures["count"],
        "matched": len(matches),
        "matched_fraction": len(matches) / max(truth_measures["count"], 1),
        "mean_iou": float(np.mean([iou for _, iou in matches.values()])) if matches else 0.0,
        "volume_error": float(np.median(np.abs(rel))) if rel else float("nan"),
        "volume_bias": float(np.median(rel)) if rel else float("nan"),
        "mean_roughness": measures["mean_roughness"],
        "roughness_error": (float(np.median([abs(o - t) / t for t, o in rough_pairs if t > 0]))
                            if rough_pairs else float("nan")),
        "roughness_pairs": len(rough_pairs),
        "dice": _dice(truth_labels > 0, labels > 0),
    }


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.logical_or(a, b).sum())
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# the 13 "forward" neighbour offsets of 26-connectivity: each skeleton step is counted once
_STEPS = [o for o in np.ndindex(3, 3, 3) if o > (1, 1, 1)]


#: Rounds of moving each voxel of a skeleton's path to the mean of its two neighbours before measuring: a
#: voxel path is a staircase, longer than the curve it follows (a circle of 75.4 um read 78.9, 75.3 after 5).
PATH_SMOOTHING = 5


def skeleton_lengths(skeleton: np.ndarray, voxel_size: Sequence[float],
                     smoothing: int = PATH_SMOOTHING, mask: np.ndarray | None = None) -> list[float]:
    """Length of each connected piece of a 3D skeleton, in the voxel size's unit.

    The voxels of a piece are joined by a minimum spanning tree over 26-connected steps (the corners of a
    diagonal staircase are not counted twice), the voxels along its paths (not its ends and junctions) are
    moved ``smoothing`` times to the mean of their neighbours, and the tree's edges are summed.

    With the foreground ``mask`` the skeleton was thinned from, each free end is carried on along its
    direction to the mask's edge, less the filament's radius there (the centre of a rounded tip): thinning
    stops short of the ends by an amount that depends on the direction (tubes of radius 1 um and rounded
    tips, 24 to 30 um long, on 2 x 0.5 x 0.5 um voxels: -4% to -12% without this, -0.5% to -3% with it).

    On an anisotropic grid a skeleton is a staircase whose steps follow the grid, not the filament:
    :func:`segment_filaments` therefore traces it on an isotropic grid.

    Examples
    --------
    >>> import numpy as np
    >>> line = np.zeros((3, 3, 12), bool)
    >>> line[1, 1, 1:11] = True
    >>> skeleton_lengths(line, (1.0, 0.5, 0.5))
    [4.5]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    skeleton = np.asarray(skeleton, bool)
    labels, n = ndimage.label(skeleton, structure=np.ones((3, 3, 3)))
    size = int(skeleton.sum())
    index = np.full(skeleton.shape, -1, np.int64)
    index[skeleton] = np.arange(size)
    padded = np.pad(index, 1, constant_values=-1)
    rows, cols, weights = [], [], []
    for offset in _STEPS:
        step = np.array(offset) - 1
        shifted = padded[tuple(slice(1 + d, s + 1 + d) for d, s in zip(step, skeleton.shape))]
        pairs = skeleton & (shifted >= 0)
        rows.append(index[pairs])
        cols.append(shifted[pairs])
        weights.append(np.full(int(pairs.sum()), float(np.linalg.norm(step * np.asarray(voxel_size, float)))))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    tree = minimum_spanning_tree(graph.tocsr()).tocoo()
    points = np.argwhere(skeleton) * np.asarray(voxel_size, float)
    ends = np.concatenate([tree.row, tree.col])
    neighbours = coo_matrix((np.ones(len(ends)), (ends, np.concatenate([tree.col, tree.row]))), shape=(size, size))
    neighbours = neighbours.tocsr()
    degree = np.asarray(neighbours.sum(axis=1)).ravel()
    on_path = (degree == 2)[:, None]
    for _ in range(smoothing):
        points = np.where(on_path, neighbours @ points / np.maximum(degree, 1)[:, None], points)
    edges = np.linalg.norm(points[tree.row] - points[tree.col], axis=1)
    lengths = np.bincount(labels[skeleton][tree.row], weights=edges, minlength=n + 1)
    if mask is not None:
        adjacent = (graph + graph.T).tocsr()
        mask = np.asarray(mask, bool)
        radius = ndimage.distance_transform_edt(mask, sampling=voxel_size)
        for end in np.flatnonzero(degree == 1):
            lengths[labels[skeleton][end]] += _reach_past_end(end, neighbours, adjacent, points, mask, radius,
                                                              np.asarray(voxel_size, float))
    return [float(v) for v in lengths[1:]]


def _reach_past_end(end: int, neighbours, adjacent, points: np.ndarray, mask: np.ndarray, radius: np.ndarray,
                    voxel_size: np.ndarray, back: int = 3, step: float = 0.25) -> float:
    """How far a skeleton's free end stops short of its filament's end: the distance to the edge of
    ``mask`` along the end's direction (from the point ``back`` steps up its path, in ``step`` fractions of
    the finest voxel), less the filament's radius there (``radius``: the mask's distance map), since a
    filament blurred by the microscope ends a radius inside its mask's rounded tip. 0 where the end is not
    free (the spanning tree cut a loop there: the end touches voxels further up the skeleton)."""
    previous, current, path = -1, end, {end}
    for _ in range(back):  # up the path, stopping at a junction or the other end
        following = [v for v in neighbours.indices[neighbours.indptr[current]:neighbours.indptr[current + 1]]
                     if v != previous]
        if len(following) != 1:
            break
        previous, current = current, following[0]
        path.add(current)
        if neighbours.indptr[current + 1] - neighbours.indptr[current] != 2:
            break
    if not set(adjacent.indices[adjacent.indptr[end]:adjacent.indptr[end + 1]]) <= path:
        return 0.0
    direction = points[end] - points[current]
    norm = float(np.linalg.norm(direction))
    if norm == 0:
        return 0.0
    stride = step * float(voxel_size.min())
    direction *= stride / norm
    shape = np.asarray(mask.shape)
    reach, at = 0.0, points[end].copy()
    while True:
        at += direction
        voxel = np.round(at / voxel_size).astype(int)
        if np.any(voxel < 0) or np.any(voxel >= shape) or not mask[tuple(voxel)]:
            break
        reach += stride
    inside = tuple(np.round(points[current] / voxel_size).astype(int))
    return max(0.0, reach - float(radius[inside]))


def segment_filaments(stack: np.ndarray, voxel_size: Sequence[float],
                      threshold: float | None = None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Foreground mask, 3D skeleton and the lengths of its pieces, of a filament-like stack.

    The skeleton is traced on an isotropic grid (the smoothed stack resampled by cubic splines to its finest
    voxel size): traced on anisotropic voxels it is eroded unequally along z and in-plane and follows the
    grid in staircases, which shortened a filament along z by a third and lengthened a diagonal one by a
    fifth at 2 x 0.5 x 0.5 um voxels. It is returned on the stack's grid, for display and comparison; the
    lengths are measured on the isotropic one (:func:`skeleton_lengths`).

    Returns
    -------
    mask, skeleton, lengths
        Boolean arrays of the stack's shape, and one length per connected piece (the voxel size's unit).
    """
    threshold = default_threshold(stack, voxel_size) if threshold is None else float(threshold)
    smoothed = smooth(stack, voxel_size)
    mask = smoothed > threshold
    finest = float(min(voxel_size))
    zoom = np.asarray(voxel_size, float) / finest
    iso = ndimage.zoom(smoothed, zoom, order=3, grid_mode=True, mode="nearest") if np.any(zoom != 1) else smoothed
    traced = _skeletonize(iso > threshold)
    lengths = skeleton_lengths(traced, (finest,) * 3, mask=iso > threshold)
    skeleton = np.zeros(mask.shape, bool)
    at = np.argwhere(traced)  # each voxel of the isotropic skeleton on the stack's grid (voxel centres)
    on_grid = np.floor((at + 0.5) * np.asarray(mask.shape) / np.asarray(traced.shape)).astype(int)
    skeleton[tuple(np.minimum(on_grid, np.asarray(mask.shape) - 1).T)] = True
    return mask, skeleton, lengths


def _skeletonize(mask: np.ndarray) -> np.ndarray:
    """scikit-image's 3D skeleton, and one for every piece it thins away whole: a tube whose section is an
    even number of voxels both ways (4 x 4, 2 x 4) vanishes (scikit-image 0.26), so such a piece is made one
    voxel thicker along an axis, and again along the next, until it keeps a skeleton."""
    skeleton = morphology.skeletonize(mask).astype(bool)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    kept = set(np.unique(labels[skeleton]))
    for piece, where in enumerate(ndimage.find_objects(labels), start=1):
        if piece in kept or where is None:
            continue
        box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in where)
        part = labels[box] == piece
        for axis in range(3):
            grown = part.copy()  # thicker by one voxel along this axis
            grown[(slice(None),) * axis + (slice(1, None),)] |= part[(slice(None),) * axis + (slice(None, -1),)]
            part = grown
            thin = morphology.skeletonize(part).astype(bool)
            if thin.any():
                skeleton[box] |= thin
                break
    return skeleton


def measure_filaments(lengths: Sequence[float], voxel_size: Sequence[float], min_length: float | None = None) -> dict:
    """Number, total and median length of filaments (pieces shorter than ``min_length`` are left out;
    default two lateral pixels), from the lengths :func:`segment_filaments` gives."""
    min_length = 2 * float(min(voxel_size[1:])) if min_length is None else float(min_length)
    lengths = [float(v) for v in lengths if v >= min_length]
    return {
        "count": len(lengths),
        "total_length": float(np.sum(lengths)),
        "median_length": float(np.median(lengths)) if lengths else float("nan"),  # as for objects: no median of nothing
        "lengths": lengths,
    }


def compare_filaments(truth: tuple, other: tuple, voxel_size: Sequence[float],
                      truth_measures: dict | None = None) -> dict:
    """Agreement of a (mask, skeleton, lengths) of :func:`segment_filaments` with the truth's: lengths,
    mask IoU, skeleton IoU."""
    truth_measures = truth_measures or measure_filaments(truth[2], voxel_size)
    measures = measure_filaments(other[2], voxel_size)
    ball = ndimage.generate_binary_structure(3, 3)
    total_t = truth_measures["total_length"]
    return {
        "count": measures["count"],
        "total_length": measures["total_length"],
        "length_ratio": measures["total_length"] / total_t if total_t else float("nan"),
        "median_length": measures["median_length"],
        "mask_iou": _iou(truth[0], other[0]),
        "skeleton_iou": _iou(ndimage.binary_dilation(truth[1], ball), ndimage.binary_dilation(other[1], ball)),
    }


def downstream_checks(truth: np.ndarray, stacks: Mapping[str, np.ndarray], voxel_size: Sequence[float],
                      kind: str = "objects", threshold: float | None = None, unit: str = "um") -> dict:
    """Segment the truth and each reconstruction with one pipeline and compare them.

    Parameters
    ----------
    truth : ndarray
        The finely sampled ZYX stack (normalised as the reconstructions are).
    stacks : mapping of str to ndarray
        Reconstructions of the same shape, by method name.
    voxel_size : sequence of 3 floats
        z, y, x voxel size of ``truth``.
    kind : {'objects', 'filaments'}
        Blob-like objects (volumes, roughness) or filaments (lengths).
    threshold : float, optional
        Foreground threshold for every stack; default Otsu's on the smoothed truth.
    unit : str
        Unit of ``voxel_size``.

    Returns
    -------
    dict
        ``{"kind", "conventions", "threshold", "truth": {...}, "methods": {name: {...}}}``.

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[0:24, 0:32, 0:32]
    >>> truth = ((z - 12)**2 + (y - 16)**2 + (x - 16)**2 < 64).astype(np.float32)
    >>> out = downstream_checks(truth, {"same": truth.copy()}, (1, 1, 1))
    >>> out["methods"]["same"]["matched_fraction"], round(out["methods"]["same"]["volume_error"], 3)
    (1.0, 0.0)
    """
    check_downstream(kind)
    truth = np.asarray(truth, np.float32)
    if truth.ndim != 3:
        raise InputError(f"downstream checks need a ZYX stack, got {truth.ndim} dimensions.")
    threshold = default_threshold(truth, voxel_size) if threshold is None else float(threshold)
    result = {"kind": kind, "conventions": CONVENTIONS[kind], "threshold": threshold, "methods": {}}
    if kind == "objects":
        truth_labels = segment_objects(truth, voxel_size, threshold, unit=unit)
        truth_measures = measure_objects(truth_labels, voxel_size)
        result["truth"] = _summary(truth_measures)
        for name, stack in stacks.items():
            labels = segment_objects(stack, voxel_size, threshold, unit=unit)
            result["methods"][name] = compare_objects(truth_labels, labels, voxel_size, truth_measures)
    else:
        truth_seg = segment_filaments(truth, voxel_size, threshold)
        truth_measures = measure_filaments(truth_seg[2], voxel_size)
        result["truth"] = _summary(truth_measures)
        for name, stack in stacks.items():
            result["methods"][name] = compare_filaments(truth_seg, segment_filaments(stack, voxel_size, threshold),
                                                        voxel_size, truth_measures)
    return result


def measure_stack(volume, kind: str = "objects", threshold: float | None = None,
                  return_segmentation: bool = False):
    """Segment one stack and measure every object or filament in it, in physical units.

    The same pipeline as :func:`downstream_checks`, for a user's own stack
    (for example a reconstruction, to measure nuclear volumes in it).

    Parameters
    ----------
    volume : Volume
        A single ZYX stack with its voxel size.
    kind : {'objects', 'filaments'}
    threshold : float, optional
        Foreground threshold in the stack's own intensities (after smoothing);
        default Otsu's.
    return_segmentation : bool
        Also return the object labels or the filament skeleton.

    Returns
    -------
    dict
        ``{"kind", "threshold", "unit", "voxel_size", "summary", "items"}``; ``items`` holds one row per
        object (label, volume, centroid in the stack's coordinates: its z positions and origin, border,
        roughness) or filament (label, length). With
        ``return_segmentation``, a pair (that dict, the labels or skeleton array).

    Examples
    --------
    >>> import numpy as np
    >>> from zaug import Volume
    >>> z, y, x = np.mgrid[0:20, 0:40, 0:40]
    >>> two = ((z - 10)**2 + (y - 12)**2 + (x - 12)**2 < 36) | ((z - 10)**2 + (y - 28)**2 + (x - 28)**2 < 36)
    >>> out = measure_stack(Volume(two.astype(np.uint16) * 1000, (0.5, 0.2, 0.2), "um"))
    >>> out["summary"]["count"], [round(row["volume_um3"], 1) for row in out["items"]]
    (2, [18.2, 18.2])
    """
    from .volume import check_volume

    check_downstream(kind)
    if volume.axes != "ZYX":
        raise InputError(f"measuring needs a single ZYX stack, this one has axes {volume.axes}; "
                         "pick one channel and time point (--channel C, --time T; Volume.select in Python).")
    check_volume(volume, min_planes=3)
    data, voxel, unit = np.asarray(volume.data, np.float32), tuple(volume.voxel_size), volume.unit
    threshold = default_threshold(data, voxel) if threshold is None else float(threshold)
    if kind == "objects":
        labels = segment_objects(data, voxel, threshold, unit=unit)
        measures = measure_objects(labels, voxel)
        border = touches_border(labels)
        centres = ndimage.center_of_mass(labels > 0, labels, list(measures["volumes"])) if measures["count"] else []
        items = [{"label": i, f"volume_{unit}3": v, **dict(zip((f"centroid_{a}_{unit}" for a in "zyx"),
                                                                 _position(volume, centre))),
                  "touches_border": i in border, "roughness": measures["roughness"].get(i)}
                 for (i, v), centre in zip(measures["volumes"].items(), centres)]
    else:
        _, labels, lengths = segment_filaments(data, voxel, threshold)
        measures = measure_filaments(lengths, voxel)
        items = [{"label": i + 1, f"length_{unit}": v} for i, v in enumerate(measures["lengths"])]
    result = {"kind": kind, "threshold": threshold, "unit": unit, "voxel_size": list(voxel),
              "summary": _summary(measures), "items": items}
    return (result, labels) if return_segmentation else result


def _position(volume, index: Sequence[float]) -> tuple[float, float, float]:
    """Where a (fractional) voxel index lies in the stack's coordinates: its z positions and lateral origin."""
    z = float(np.interp(index[0], np.arange(volume.nz), volume.z_coords()))
    y, x = (o + float(i) * s for o, i, s in zip(volume.yx_origin, index[1:], volume.voxel_size[1:]))
    return z, y, x


def format_measurement(result: dict) -> str:
    """One line for :func:`measure_stack`."""
    s, unit = result["summary"], result["unit"]
    if result["kind"] == "objects":
        rough = (f"mean roughness {s['mean_roughness']:.4f}" if np.isfinite(s["mean_roughness"])
                 else "no roughness (every object touches the border or is too small)")
        return (f"{s['count']} objects ({s['inside']} not touching the border), median volume "
                f"{s['median_volume']:.4g} {unit}^3, total {s['total_volume']:.4g} {unit}^3, {rough} "
                f"(threshold {result['threshold']:.4g})")
    median = f", median length {s['median_length']:.4g} {unit}" if s["count"] else ""
    return (f"{s['count']} filaments, total length {s['total_length']:.4g} {unit}{median} "
            f"(threshold {result['threshold']:.4g})")


def _summary(measures: dict) -> dict:
    return {k: v for k, v in measures.items() if k not in ("volumes", "roughness", "lengths")}


# (header, key, format) of each column of the downstream tables, shared by the plain-text and Markdown reports
TABLE_COLUMNS = {
    "objects": [("objects", "count", "d"), ("matched", "matched_fraction", ".2f"), ("mean IoU", "mean_iou", ".3f"),
                ("volume error", "volume_error", ".1%"), ("volume bias", "volume_bias", "+.1%"),
                ("roughness", "mean_roughness", ".4f"), ("roughness error", "roughness_error", ".1%"),
                ("Dice", "dice", ".3f")],
    "filaments": [("filaments", "count", "d"), ("total length", "total_length", ".4g"),
                  ("ratio to truth", "length_ratio", ".3f"), ("median length", "median_length", ".4g"),
                  ("mask IoU", "mask_iou", ".3f"), ("skeleton IoU", "skeleton_iou", ".3f")],
}


def truth_line(result: dict, unit: str = "") -> str:
    """One sentence on what the truth's segmentation holds."""
    t = result["truth"]
    unit = unit or "(unit of the voxel size)"
    if result["kind"] == "objects":
        return (f"truth: {t['count']} objects ({t['inside']} inside the stack), median volume "
                f"{t['median_volume']:.4g} {unit}^3, mean roughness {t['mean_roughness']:.4f}")
    return (f"truth: {t['count']} filaments, total length {t['total_length']:.4g} {unit}, median "
            f"{t['median_length']:.4g} {unit}")


def table_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows (method first) of a :func:`downstream_checks` result."""
    columns = TABLE_COLUMNS[result["kind"]]
    rows = [[name] + [format(r[key], fmt) for _, key, fmt in columns] for name, r in result["methods"].items()]
    return ["method"] + [header for header, _, _ in columns], rows


def format_downstream(result: dict, unit: str = "") -> str:
    """Plain-text table of :func:`downstream_checks`."""
    headers, rows = table_rows(result)
    widths = [24] + [max(len(h), 6) + 2 for h in headers[1:]]
    lines = [f"downstream: {result['kind']} (threshold {result['threshold']:.3f}); {truth_line(result, unit)}",
             "".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(headers, widths)))]
    lines += ["".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths)))
              for row in rows]
    return "\n".join(lines)
