"""Fréchet and kernel Inception distances (FID, KID) between two sets of planes.

FID (Heusel et al. 2017) is the paper's measure of how alike the *distribution*
of reconstructed planes is to that of the true planes: it fits a Gaussian to
the 2048 Inception-v3 pool features of each set and returns the Fréchet
distance between the two Gaussians (lower is better, 0 for identical sets).
Unlike PSNR it rewards plausible texture and noise rather than the mean.

The Inception weights (the TensorFlow 2015 graph as converted by pytorch-fid,
``pt_inception-2015-12-05-6726825d.pth``, 91 MB) are not shipped and never
downloaded: get the file once, convert it to safetensors (zaug never unpickles
a file) and pass its path, or set the ``ZAUG_FID_WEIGHTS`` environment variable.
Preprocessing follows pytorch-fid: each plane, scaled to [0, 1], is repeated to
three channels, resized bilinearly to 299 x 299 and mapped to [-1, 1].

With a few dozen planes the covariances are estimated from far fewer samples
than features, which biases FID upwards: compare methods on the same planes
only, never with FIDs of other papers. KID (Bińkowski et al. 2018), computed
from the same features, has no such bias: it is the unbiased estimate of the
squared maximum mean discrepancy under the cubic polynomial kernel
``(x . y / 2048 + 1) ** 3``, so its expected value is 0 when both sets come
from one distribution, whatever their sizes (a single estimate can then be
slightly negative). zaug reports both.

Examples
--------
The distance itself works on any features:

>>> import numpy as np
>>> from zaug.fid import frechet_distance
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=(500, 3))
>>> round(frechet_distance(a, a), 6)
0.0
>>> round(frechet_distance(a, a + [2.0, 0.0, 0.0]), 6)  # a mean shift of 2: 2 ** 2
4.0
>>> from zaug.fid import kernel_distance
>>> abs(kernel_distance(a[:250], a[250:])) < 0.01  # two halves of one sample: close to 0
True
>>> kernel_distance(a[:250], a[250:] + [2.0, 0.0, 0.0]) > 0.1
True
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["FID_WEIGHTS_ENV", "FIDScorer", "axial_planes", "fid", "fid_weights_path", "frechet_distance",
           "distance_columns", "kernel_distance", "kernel_distance_and_error", "load_inception", "plane_features"]

FID_WEIGHTS_ENV = "ZAUG_FID_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
CONVERT_COMMAND = (f"python -c \"import torch, safetensors.torch as st; st.save_file(torch.load('{WEIGHTS_FILE}', "
                   "weights_only=True), 'pt_inception.safetensors')\"")
FID_CONVENTION = (f"FID = Fréchet distance of Inception-v3 pool features ({WEIGHTS_FILE}; pytorch-fid "
                  "preprocessing: [0,1] planes repeated to RGB, bilinear resize to 299) between the scored true "
                  "planes and each reconstruction; few planes bias it upwards: compare methods on the same planes only; "
                  "KID = unbiased squared MMD of the same features, kernel (x.y/2048+1)^3, shown x 1000 "
                  "± its jackknife standard error")
FID_AXIAL_CONVENTION = FID_CONVENTION.replace("scored true planes", "xz and yz planes (up to 64 each) of the truth")
HOW_TO_GET = (f"download {WEIGHTS_URL} once, convert it with {CONVERT_COMMAND} and pass the .safetensors file "
              f"(--fid-weights, or the {FID_WEIGHTS_ENV} environment variable)")


def fid_weights_path(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use: ``path``, else ``$ZAUG_FID_WEIGHTS``, else None (no FID)."""
    chosen = path if path is not None else os.environ.get(FID_WEIGHTS_ENV) or None
    return None if chosen is None else Path(chosen).expanduser()


def load_inception(path: str | os.PathLike, device: str = "cpu"):
    """Load the FID Inception-v3 network from a safetensors file.

    Raises :class:`~zaug.errors.InputError` with what to do when the file is
    missing, pickled, or not these weights. The classifier (``fc.*``) and batch
    norm counters in the file are ignored.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .methods._common import resolve_device
    from .nets.inception import FIDInceptionV3

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"FID weights {path} do not exist: {HOW_TO_GET}.")
    if path.suffix != ".safetensors":
        raise InputError(f"FID weights must be a .safetensors file and {path.name} is not (zaug never unpickles "
                         f"a file): convert it once with {CONVERT_COMMAND}.")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputError(f"cannot read the FID weights {path}: {exc}.") from None
    network = FIDInceptionV3()
    expected = {k: v.shape for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in tensors]
    wrong = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k])]
    if missing or wrong:
        example = (missing or wrong)[0]
        raise InputError(f"{path} is not the FID Inception-v3 weights ({len(missing)} tensors missing and "
                         f"{len(wrong)} of another shape, e.g. {example}): {HOW_TO_GET}.")
    network.load_state_dict({k: tensors[k].float() for k in expected}, strict=False)
    return network.eval().requires_grad_(False).to(resolve_device(device))


def plane_features(planes: np.ndarray, network, batch_size: int = 16) -> np.ndarray:
    """Inception pool features (N x 2048, float64) of N planes scaled to [0, 1]."""
    import torch
    import torch.nn.functional as F

    from .nets.inception import INPUT_SIZE

    planes = np.asarray(planes, dtype=np.float32)
    if planes.ndim != 3:
        raise InputError(f"FID needs a stack of planes (N, Y, X), got an array of shape {planes.shape}.")
    device = next(network.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(planes), batch_size):
            x = torch.from_numpy(planes[start:start + batch_size]).to(device)[:, None]
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            out.append(network(x.expand(-1, 3, -1, -1) * 2 - 1).double().cpu().numpy())
    return np.concatenate(out)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``. The trace of
    the square root is the sum of the singular values of ``A B^T / sqrt((n_a-1)(n_b-1))``
    (``A``, ``B`` the centred features), which is exact and needs no matrix
    square root, whose iterations are unstable for the singular covariances of
    few samples; many samples use the symmetric form ``S_a^(1/2) S_b S_a^(1/2)``.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InputError("FID needs at least two feature vectors of the same length in each set.")
    ca, cb = a - a.mean(0), b - b.mean(0)
    na, nb = len(a) - 1, len(b) - 1
    if len(a) * len(b) <= a.shape[1] ** 2:
        root_trace = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na * nb)
    else:
        w, v = np.linalg.eigh(ca.T @ ca / na)
        half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(half @ (cb.T @ cb / nb) @ half), 0, None)).sum()
    mean_term = float(np.sum((a.mean(0) - b.mean(0)) ** 2))
    return float(max(mean_term + (ca ** 2).sum() / na + (cb ** 2).sum() / nb - 2 * root_trace, 0.0))


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Kernel distance (KID, unbiased squared MMD) between two feature sets (rows are samples).

    The kernel is ``(x . y / d + 1) ** 3`` with ``d`` features; the within-set
    means leave out each sample's kernel with itself, which makes the estimate
    unbiased (Bińkowski et al. 2018, eq. 4). With equal set sizes this is
    torch-fidelity's ``unbiased`` estimate on one subset of all samples.
    """
    return kernel_distance_and_error(features_a, features_b, error=False)[0]


def kernel_distance_and_error(features_a: np.ndarray, features_b: np.ndarray,
                              error: bool = True) -> tuple[float, float]:
    """KID (as :func:`kernel_distance`) and its jackknife standard error.

    The error is the two-sample delete-one jackknife of the U-statistic
    (Arvesen 1969): the spread of the estimates with one sample of either set
    left out, each computed in closed form from the kernel's row sums. It is
    close to the estimate's sampling spread when the sets differ and
    conservative (about 10 to 30 % high) when they come from one distribution.
    It needs three samples in each set; with fewer (or ``error=False``) it is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from zaug.fid import kernel_distance_and_error
    >>> rng = np.random.default_rng(0)
    >>> kid, se = kernel_distance_and_error(rng.normal(size=(60, 16)), rng.normal(size=(60, 16)) + 0.5)
    >>> kid > 2 * se > 0  # a shift of half a standard deviation, told apart from 60 samples each
    True
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InputError("KID needs at least two feature vectors of the same length in each set.")
    d, m, n = a.shape[1], len(a), len(b)
    k_ab = (a @ b.T / d + 1) ** 3

    def off_diagonal_row_sums(x):
        k = (x @ x.T / d + 1) ** 3
        return k.sum(1) - np.diag(k)

    rows_a, rows_b = off_diagonal_row_sums(a), off_diagonal_row_sums(b)
    within_a, within_b = rows_a.sum() / (m * (m - 1)), rows_b.sum() / (n * (n - 1))
    cross = k_ab.sum()
    estimate = float(within_a + within_b - 2 * cross / (m * n))
    if not error or min(m, n) < 3:
        return estimate, float("nan")
    # leaving sample i out removes its row and column from the within-set sum and its row from the cross sum
    without_a = (rows_a.sum() - 2 * rows_a) / ((m - 1) * (m - 2)) + within_b - 2 * (cross - k_ab.sum(1)) / ((m - 1) * n)
    without_b = within_a + (rows_b.sum() - 2 * rows_b) / ((n - 1) * (n - 2)) - 2 * (cross - k_ab.sum(0)) / (m * (n - 1))
    variance = (m - 1) / m * np.sum((without_a - without_a.mean()) ** 2) \
        + (n - 1) / n * np.sum((without_b - without_b.mean()) ** 2)
    return estimate, float(np.sqrt(variance))


def fid(prediction: np.ndarray, truth: np.ndarray, network=None, weights: str | os.PathLike | None = None,
        device: str = "cpu") -> float:
    """FID between two stacks of planes (N, Y, X) scaled to [0, 1].

    Pass a loaded ``network`` (:func:`load_inception`) to score several
    predictions, or ``weights`` (default ``$ZAUG_FID_WEIGHTS``).
    """
    if network is None:
        path = fid_weights_path(weights)
        if path is None:
            raise InputError(f"FID needs the Inception-v3 weights, which zaug does not ship: {HOW_TO_GET}.")
        network = load_inception(path, device)
    return frechet_distance(plane_features(prediction, network), plane_features(truth, network))


class FIDScorer:
    """FID and KID of predictions against one fixed set of true planes (features computed once).

    Calling it gives the FID; :meth:`scores` gives ``{"fid": ..., "kid": ...}``
    from one pass of the network.

    Examples
    --------
    >>> from zaug.fid import FIDScorer
    >>> FIDScorer.maybe(np.zeros((4, 8, 8)), weights=None) is None  # no weights, no $ZAUG_FID_WEIGHTS: no FID
    True
    """

    def __init__(self, truth: np.ndarray, network, weights_name: str = ""):
        self.network = network
        self.truth_features = plane_features(truth, network)
        self.info = {"weights": weights_name, "planes": int(len(truth))}

    @classmethod
    def maybe(cls, truth: np.ndarray, weights: str | os.PathLike | None = None,
              device: str = "cpu") -> FIDScorer | None:
        """A scorer when weights are given (or set in ``$ZAUG_FID_WEIGHTS``), else None."""
        path = fid_weights_path(weights)
        if path is None:
            return None
        return cls(truth, load_inception(path, device), path.name)

    def __call__(self, prediction: np.ndarray) -> float:
        return frechet_distance(plane_features(prediction, self.network), self.truth_features)

    def scores(self, prediction: np.ndarray) -> dict[str, float]:
        """FID, KID and KID's standard error (``kid_se``) of ``prediction`` against the truth."""
        features = plane_features(prediction, self.network)
        kid, kid_se = kernel_distance_and_error(features, self.truth_features)
        return {"fid": frechet_distance(features, self.truth_features), "kid": kid, "kid_se": kid_se}


def distance_columns(scores: dict | None = None, markdown: bool = False) -> str:
    """The FID and KID columns of a results table: the header (``scores`` None) or one row's cells.

    KID is shown times 1000, as usual, with its standard error after ``±`` when
    the scores have one; a Markdown row without scores (a reference) gets empty cells.
    """
    if markdown:
        if scores is None:
            return " FID | KID x 1000 |"
        return f" {scores['fid']:.2f} | {_kid_cell(scores, ' ± ')} |" if "fid" in scores else " | |"
    if scores is None:
        return f"{'FID':>9}{'KIDx1000±SE':>15}"
    return f"{scores['fid']:>9.2f}{_kid_cell(scores, '±'):>15}" if "fid" in scores else ""


def _kid_cell(scores: dict, separator: str) -> str:
    kid = f"{1e3 * scores['kid']:.2f}"
    se = scores.get("kid_se", float("nan"))
    return f"{kid}{separator}{1e3 * se:.2f}" if np.isfinite(se) else kid


def axial_planes(volume: np.ndarray, per_axis: int = 64) -> np.ndarray:
    """Up to ``per_axis`` evenly spaced xz and yz planes of a ZYX stack, padded to one size.

    The planes where restoration shows: FID of a restoration compares these.
    """
    volume = np.asarray(volume, dtype=np.float32)
    nz, ny, nx = volume.shape
    xz = volume[:, np.linspace(0, ny - 1, min(per_axis, ny)).round().astype(int), :].transpose(1, 0, 2)
    yz = volume[:, :, np.linspace(0, nx - 1, min(per_axis, nx)).round().astype(int)].transpose(2, 0, 1)
    if xz.shape[2] != yz.shape[2]:  # non-square planes: bring both to the wider one (resized to 299 anyway)
        width = max(nx, ny)
        xz, yz = (np.pad(p, ((0, 0), (0, 0), (0, width - p.shape[2])), mode="reflect") for p in (xz, yz))
    return np.concatenate([xz, yz])
