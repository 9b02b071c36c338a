"""Restoration evaluation: simulate anisotropy on a fine stack, restore, compare.

Protocol (stated in every report):

1. a finely sampled stack is degraded along z with the chosen degradation and
   factor (average pooling, or a Gaussian of sigma factor/2 planes then every
   factor-th plane kept): this is the only input the methods see, and learned
   methods are trained on it alone;
2. each method restores the original planes that lie between the first and
   last simulated sample (xz and yz planes restored, then fused by the mean);
3. ground truth and restorations are normalised with the 0.1 / 99.9
   percentiles of the original stack to [0, 1] and clipped; PSNR is pooled
   over all restored planes, SSIM the mean over planes;
4. the isotropy ratio (axial / lateral FWHM of thin structures) and the axial
   vs lateral spectral extent are measured on the original, the input and
   every restoration.

The stack must be finely sampled along z: an already anisotropic one warns
(:func:`anisotropic_input`), since the scores then are about a coarser
anisotropy than the user's, against a truth blurred along z.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> from zaug import Volume
>>> from zaug.evaluate_restore import evaluate_restoration
>>> rng = np.random.default_rng(0)
>>> fine = Volume(ndimage.gaussian_filter(rng.random((24, 32, 32)), 2).astype(np.float32), (0.5, 0.5, 0.5), "um")
>>> result = evaluate_restoration(fine, 4, "avgpool", ["linear", "cubic"])
>>> sorted(result["methods"]), len(result["planes"])
(['cubic', 'linear'], 20)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from . import metrics
from .classic import CLASSICAL_METHODS
from .downstream import check_downstream, downstream_checks, format_downstream
from .data.lateral import normalise, percentile_range, simulate_anisotropy
from .errors import InputError, ZaugWarning
from .evaluate import THROWAWAY, input_label, check_trainable, cubic_as_linear, scratch_folder
from .fid import FID_AXIAL_CONVENTION, FIDScorer, axial_planes, distance_columns
from .isotropy import (ISOTROPY_RATIO_MEANING, SPECTRAL_RATIO_MEANING, axial_lateral_spectra, isotropy_ratio,
                       unmeasured_sentence)
from .methods import is_learned, is_restoration, learned_module, method_names
from .restore import ClassicalRestorer, restore_stack
from .provenance import said_once
from .volume import Volume, check_volume

CONVENTIONS = [
    "anisotropy simulated along z on the finely sampled input; methods see (and learned methods train on) "
    "the degraded stack only",
    "restored planes: the original planes between the first and last simulated sample; xz and yz restorations "
    "fused by the mean",
    "intensities normalised with the 0.1/99.9 percentiles of the original stack to [0, 1], clipped",
    "PSNR pooled over restored planes (one MSE); SSIM mean over planes (data range 1); CF-PSNR radius as a "
    "fraction of Nyquist (low 0.1, mid 0.25, high 0.5), on xy planes",
    ISOTROPY_RATIO_MEANING,
    SPECTRAL_RATIO_MEANING,
]
#: Sampling anisotropy (z voxel over lateral) above which the stack is not a fine one to simulate from.
ANISOTROPIC = 1.5


def evaluate_restoration(volume: Volume, factor: float, degradation: str = "avgpool",
                         methods: Sequence[str] = ("linear", "cubic"), train_options: dict | None = None,
                         keep_predictions: bool = False, log: Callable[[str], None] | None = None,
                         simulate_sigma: float | None = None, downstream: str | None = None,
                         fid_weights=None) -> dict:
    """Score restoration methods on a stack made anisotropic by simulation.

    Parameters
    ----------
    volume : Volume
        Finely (near-isotropically) sampled ZYX stack.
    factor : float
        Simulated anisotropy.
    degradation : {'avgpool', 'gaussian'}
    methods : sequence of str
        ``linear``, ``cubic`` and learned restoration methods (``niiv``,
        ``selfnet``, ``resin``), trained here on the simulated stack.
    train_options : dict, optional
        Passed to learned methods' ``fit``.
    keep_predictions : bool
        Return normalised stacks under ``"arrays"`` for reports.
    simulate_sigma : float, optional
        Sigma (planes) of the simulated Gaussian blur, default ``factor / 2``.
        Independent of the methods' own model of the blur (``train_options
        ["sigma"]``), so a method can be tested on a blur it was not told.
    downstream : {'objects', 'filaments'}, optional
        Also compare objects or filaments segmented in the truth and in every
        restoration with one pipeline (:mod:`zaug.downstream`).
    fid_weights : path, optional
        Inception-v3 weights for the paper's FID, computed on up to 64 xz and
        64 yz planes of the truth and of each restoration; default
        ``$ZAUG_FID_WEIGHTS``; no FID without either (:mod:`zaug.fid`).

    Returns
    -------
    dict
        Scores per method, the isotropy of the original and simulated input
        under ``reference``, and ``warnings``: sentences also issued as
        :class:`~zaug.errors.ZaugWarning` (an already anisotropic stack).
    """
    if volume.axes != "ZYX":
        raise InputError(f"evaluation needs a single ZYX stack, this one has axes {volume.axes}; pick one channel "
                         "and time point (--channel C, --time T; Volume.select in Python).")
    check_volume(volume, min_planes=3)
    check_downstream(downstream)
    volume = said_once(volume, "evaluation")  # scored against predicted planes, if zaug made them
    log = log or (lambda msg: None)
    warning = anisotropic_input(volume, factor)
    if warning:
        warnings.warn(ZaugWarning(warning), stacklevel=2)
    fine = np.asarray(volume.data, dtype=np.float32)
    if simulate_sigma is not None and (degradation != "gaussian" or simulate_sigma <= 0):
        raise InputError("a simulated sigma needs the gaussian degradation and a positive value.")
    sim = simulate_anisotropy(volume, factor, degradation, sigma=simulate_sigma)
    positions = np.asarray(sim.metadata["z_sample_positions"])
    planes = np.arange(int(np.ceil(positions[0] - 1e-9)), int(np.floor(positions[-1] + 1e-9)) + 1)
    if len(planes) < 2:
        raise InputError(f"the stack has too few planes for factor {factor:g}.")
    rows = (planes - positions[0]) / (positions[1] - positions[0])
    lo, hi = np.percentile(fine, (0.1, 99.9))
    norm = _normaliser(lo, hi)
    truth = norm(fine[planes])
    fid_scorer = FIDScorer.maybe(axial_planes(truth), fid_weights, (train_options or {}).get("device", "cpu"))
    sim_stack = np.asarray(sim.data, dtype=np.float32)
    s_lo, s_hi = percentile_range(sim_stack)
    sim_norm = normalise(sim_stack, s_lo, s_hi)
    voxel = volume.voxel_size
    results, arrays = {}, {}
    reference = _isotropy(fine, voxel)
    input_iso = _isotropy(sim_stack, sim.voxel_size)
    for name in method_names(methods):
        if name not in CLASSICAL_METHODS:
            _check_restorer(name)
    check_trainable({m: _fit_options(m, sim, train_options or {}) for m in method_names(methods)
                     if m not in CLASSICAL_METHODS}, sim)
    for name in method_names(methods):
        start = time.perf_counter()
        restorer, extra = _restorer(name, sim, train_options or {}, log)
        if hasattr(restorer, "restore_normalised"):  # 3D restorers (RESIN)
            restored = restorer.restore_normalised(sim_norm, rows)
        else:  # plane restorers: xz and yz planes, fused
            restored = restore_stack(sim_norm, restorer, rows, fuse="mean")
        restored = restored * np.float32(s_hi - s_lo) + np.float32(s_lo)
        pred = norm(restored)
        seconds = time.perf_counter() - start
        scores = metrics.score(pred, truth)
        scores.update(_isotropy(restored, voxel), seconds=round(seconds, 2), **extra)
        if fid_scorer:
            scores.update(fid_scorer.scores(axial_planes(pred)))
        results[name] = scores
        arrays[name] = pred
        iso = scores["isotropy_ratio"]
        log(f"{name}: PSNR {scores['psnr']:.2f} dB, isotropy ratio "
            + (f"{iso:.3f}" if np.isfinite(iso) else "not measured"))
    result = {
        "input": input_label(volume), "shape": list(volume.data.shape),
        "voxel_size": list(voxel), "unit": volume.unit, "factor": float(factor), "degradation": degradation,
        "simulated_sigma": (float(simulate_sigma if simulate_sigma is not None else factor / 2)
                            if degradation == "gaussian" else None),
        "conventions": CONVENTIONS + ([cubic_as_linear(sim.nz)] if "cubic" in method_names(methods) and sim.nz < 4
                                      else []), "planes": planes.tolist(),
        "reference": {"original": reference, "input": input_iso},
        "methods": results, "warnings": [warning] if warning else [],
    }
    if fid_scorer:
        result["fid"] = fid_scorer.info
        result["conventions"] = result["conventions"] + [FID_AXIAL_CONVENTION]
    if downstream:
        log(f"downstream: segmenting the truth and {len(arrays)} restorations ({downstream})")
        result["downstream"] = downstream_checks(truth, arrays, voxel, downstream, unit=volume.unit)
    if keep_predictions:
        result["arrays"] = dict(arrays, truth=truth, input=norm(sim_stack), input_positions=positions,
                                planes=planes)
    return result


def _normaliser(lo: float, hi: float):
    scale = float(hi - lo) if hi > lo else 1.0
    return lambda x: np.clip((np.asarray(x, np.float32) - np.float32(lo)) / np.float32(scale), 0.0, 1.0)


def anisotropic_input(volume: Volume, factor: float) -> str | None:
    """The warning for a stack already anisotropic (z voxel over lateral above :data:`ANISOTROPIC`), else None.

    The protocol makes a finely sampled stack ``factor`` times coarser along z
    and scores restorations against it; given an anisotropic acquisition it
    scores a far coarser anisotropy than the user's, against a truth blurred
    along z. Stacks without a voxel size (1, 1, 1) cannot be checked.

    Examples
    --------
    >>> import numpy as np
    >>> fine = Volume(np.zeros((8, 8, 8), np.float32), (0.29, 0.26, 0.26), "um")
    >>> anisotropic_input(fine, 4) is None
    True
    >>> anisotropic_input(fine.replace(voxel_size=(1.3, 0.26, 0.26)), 4)[:37]
    'this stack is already 5.00-fold aniso'
    """
    ratio = volume.anisotropy
    if ratio <= ANISOTROPIC:
        return None
    vz, vy, _ = volume.voxel_size
    return (f"this stack is already {ratio:.2f}-fold anisotropic (z voxel {vz:.3g} {volume.unit} against "
            f"{vy:.3g} laterally), so this evaluation, which simulates a {factor:g}-fold anisotropy on a finely "
            f"sampled stack, scores a {ratio * factor:.3g}-fold one against a truth already blurred along z; to "
            "restore this stack, use `zaug predict` (cubic, or a model from `zaug train --method "
            "selfnet|niiv|resin`) with `--report DIR`, which gives the isotropy ratio before and after.")


def isotropy_notes(result: dict) -> list[str]:
    """One sentence for every row of a restoration evaluation whose isotropy ratio could not be measured, with why."""
    rows = {"the original": result["reference"]["original"], "the simulated input": result["reference"]["input"]}
    rows.update(result["methods"])
    return [unmeasured_sentence(label, r["isotropy_note"]) for label, r in rows.items() if r.get("isotropy_note")]


def _isotropy(stack: np.ndarray, voxel_size) -> dict:
    iso = isotropy_ratio(stack, tuple(voxel_size))
    spectra = axial_lateral_spectra(stack, tuple(voxel_size))
    return {"isotropy_ratio": float(iso["ratio"]), "axial_fwhm": float(iso["axial_fwhm"]),
            "lateral_fwhm": float(iso["lateral_fwhm"]), "profiles": int(iso["count"]),
            "isotropy_note": iso["reason"], "spectral_extent_ratio": float(spectra["extent_ratio"])}


def _check_restorer(name: str) -> None:
    if not is_learned(name):
        raise InputError(f"unknown method {name!r} for restoration.")
    if not is_restoration(name):
        raise InputError(f"{name} interpolates missing planes and does not restore a blur: evaluate it without "
                         "--restore (drop-slice).")


def _fit_options(name: str, sim: Volume, options: dict) -> dict:
    """A learned restorer's training options on the simulated stack: its factor and blur unless given."""
    return dict(options, **THROWAWAY, method=name, factor=sim.metadata["simulated_factor"],
                degradation=options.get("degradation") or sim.metadata["degradation"])


def _restorer(name: str, sim: Volume, options: dict, log):
    if name in CLASSICAL_METHODS:
        return ClassicalRestorer(name), {}
    _check_restorer(name)
    module = learned_module(name)
    log(f"{name}: training on the simulated anisotropic stack only")
    with scratch_folder() as tmp:
        model_dir = module.fit([sim], tmp / "model", _fit_options(name, sim, options))
        restorer = module.load(model_dir, device=options.get("device", "auto"))
    return restorer, {"training": getattr(restorer, "training_summary", {})}


def restoration_verdicts(result: dict) -> list[str]:
    """One line per restoring method: its PSNR and SSIM against the better interpolation, in words.

    The tolerance of "better" and "worse" is 0.05 dB, as in the drop-slice
    verdict (:func:`zaug.evaluate.verdict`).
    """
    scores = result["methods"]
    classical = {name: scores[name] for name in ("linear", "cubic") if name in scores}
    if not classical:
        return []
    best = max(classical, key=lambda name: classical[name]["psnr"])
    lines = []
    for name, r in scores.items():
        if name in classical:
            continue
        gain = r["psnr"] - classical[best]["psnr"]
        ssim_gain = r["ssim"] - classical[best]["ssim"]
        line = (f"{name}: {gain:+.2f} dB PSNR and {ssim_gain:+.4f} SSIM against {best} interpolation, the better "
                "classical method here. ")
        if gain > 0.05:
            line += "It restores more than interpolation does on this simulated anisotropy."
        else:
            line += (f"It is {'worse' if gain < -0.05 else 'no better'} than {best} interpolation on this simulated "
                     f"anisotropy: prefer {best} (or train longer, or on this stack's own blur).")
        lines.append(line)
    return lines


def simulation_words(result: dict) -> str:
    """How the anisotropy was simulated: 'gaussian, sigma 2 planes' or 'avgpool'."""
    sigma = result.get("simulated_sigma")
    return result["degradation"] + (f", sigma {sigma:g} planes" if sigma is not None else "")


def format_restoration_table(result: dict) -> str:
    """Plain-text table of a restoration evaluation."""
    lines = [f"restoration x{result['factor']:g} ({simulation_words(result)}) on {result['input']} "
             f"({len(result['planes'])} planes scored, PSNR/SSIM on [0,1] data)",
             f"{'method':<10}{'PSNR':>8}{'SSIM':>8}{'CF-low':>8}{'CF-mid':>8}{'CF-high':>9}{'sharp':>7}"
             f"{'iso':>7}{'spec':>7}{'time s':>9}" + (distance_columns() if "fid" in result else "")]
    for name, r in result["methods"].items():
        cf = r["cf_psnr"]
        lines.append(f"{name:<10}{r['psnr']:>8.2f}{r['ssim']:>8.4f}{cf['low']:>8.2f}{cf['mid']:>8.2f}"
                     f"{cf['high']:>9.2f}{r['sharpness']:>7.3f}{r['isotropy_ratio']:>7.3f}"
                     f"{r['spectral_extent_ratio']:>7.3f}{r['seconds']:>9.1f}"
                     + distance_columns(r))
    ref = result["reference"]
    lines.append(f"isotropy ratio: original {ref['original']['isotropy_ratio']:.3f}, simulated input "
                 f"{ref['input']['isotropy_ratio']:.3f}; spectral extent ratio: original "
                 f"{ref['original']['spectral_extent_ratio']:.3f}, input {ref['input']['spectral_extent_ratio']:.3f}")
    lines += isotropy_notes(result)
    lines += restoration_verdicts(result)
    lines += [_blur_model_line(name, r["training"], result) for name, r in result["methods"].items()
              if "sigma" in r.get("training", {})]
    lines += [f"note: {c}" for c in result.get("conventions", []) if c.startswith("cubic: only")]
    if "downstream" in result:
        lines.append(format_downstream(result["downstream"], result["unit"]))
    return "\n".join(lines)


def _blur_model_line(name: str, training: dict, result: dict) -> str:
    """Which blur a learned method assumed, against the simulated one: a wrong PSF model is the usual loss."""
    sigma = training["sigma"]
    assumed = f"{0.5 * result['factor']:.2f} (factor / 2)" if sigma is None else f"{sigma:.2f}"
    source = {"widths": ", measured from thin structures", "spectrum": ", measured from the power spectra"}
    simulated = result.get("simulated_sigma")
    return (f"{name}: {training.get('steps')} steps; blur model sigma {assumed}"
            f"{source.get(training.get('sigma_measured_by'), '')}{', noise put back' if training.get('renoise') else ''}"
            + (f"; simulated {simulated:.2f}" if simulated is not None else ""))
