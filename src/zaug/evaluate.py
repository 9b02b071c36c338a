"""Drop-slice evaluation: how well does a method recreate planes we removed?

Protocol (stated in every report):

1. the stack is cut to its first ``(N - 1) // k * k + 1`` planes;
2. planes ``0, k, 2k, ...`` are kept, the others removed;
3. each method reconstructs the removed planes from the kept ones only
   (learned methods are trained on the kept planes only: no leakage);
4. ground truth and predictions are normalised with the 0.1 / 99.9
   percentiles of the whole input stack to [0, 1] and clipped;
5. PSNR is pooled over all removed planes (one MSE), SSIM is the mean over
   removed planes; cubic is a not-a-knot cubic spline through the kept planes.

On noisy stacks the removed planes carry their own noise, so anything smoother
than the truth scores well. The ``linear+smooth`` oracle (linear interpolation
followed by the in-plane Gaussian whose sigma maximises PSNR against the truth)
bounds what smoothing alone can buy; Fourier-clipped PSNR bands and the
sharpness ratio show where a gain comes from.

Examples
--------
>>> import numpy as np
>>> from zaug import Volume
>>> from zaug.evaluate import evaluate_drop_slice
>>> z = np.linspace(0, 1, 9)[:, None, None]
>>> vol = Volume((np.sin(6 * z) + np.zeros((9, 16, 16))).astype(np.float32), (0.5, 0.5, 0.5), "um")
>>> result = evaluate_drop_slice(vol, factor=2, methods=["linear", "cubic"])
>>> sorted(result["methods"])
['cubic', 'linear']
>>> result["methods"]["cubic"]["psnr"] > result["methods"]["linear"]["psnr"]
True
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage, optimize

from . import metrics
from .classic import CLASSICAL_METHODS, ClassicalInterpolator
from .errors import InputError, ZaugWarning
from .fid import FID_CONVENTION, FIDScorer, distance_columns
from .downstream import check_downstream, downstream_checks, format_downstream
from .methods import ORACLES, is_learned, is_restoration, learned_module, method_names
from .provenance import said_once
from .volume import Volume, check_volume, region_text

CONVENTIONS = [
    "stack cut to its first (N-1)//k*k+1 planes; planes 0, k, 2k, ... kept, the others removed and scored",
    "learned methods are trained on the kept planes only",
    "intensities normalised with the 0.1/99.9 percentiles of the whole input stack to [0, 1], clipped",
    "PSNR pooled over all removed planes (one MSE); SSIM is the mean over removed planes (data range 1)",
    "cubic = not-a-knot cubic spline along z through the kept planes",
    "CF-PSNR = Fourier-clipped PSNR; radius as a fraction of Nyquist (low 0.1, mid 0.25, high 0.5)",
    "sharpness = mean in-plane gradient magnitude of the prediction / that of the truth (1 is right)",
    "linear+smooth = linear, then the in-plane Gaussian whose sigma maximises PSNR against the truth (an oracle)",
]


def drop_slice_split(n_planes: int, factor: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Planes used, kept and removed for a drop-slice test.

    Examples
    --------
    >>> n, kept, removed = drop_slice_split(10, 4)
    >>> n, kept.tolist(), removed.tolist()
    (9, [0, 4, 8], [1, 2, 3, 5, 6, 7])
    """
    if int(factor) != factor or factor < 2:
        raise InputError(f"--factor must be a whole number of 2 or more, got {factor}.")
    used = (n_planes - 1) // factor * factor + 1
    if used < factor + 1:
        raise InputError(f"the stack has {n_planes} planes: at least {factor + 1} are needed for factor {factor}.")
    kept = np.arange(0, used, factor)
    removed = np.setdiff1d(np.arange(used), kept)
    return used, kept, removed


def smooth_oracle(linear: np.ndarray, truth: np.ndarray, max_sigma: float = 6.0) -> tuple[np.ndarray, float]:
    """In-plane Gaussian on ``linear`` with the sigma that maximises PSNR against ``truth``."""
    def cost(sigma: float) -> float:
        return metrics.mse(_blur(linear, sigma), truth)

    grid = np.linspace(0.0, max_sigma, 13)
    costs = [cost(s) for s in grid]
    best = int(np.argmin(costs))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    sigma = grid[best]
    if hi > lo:
        res = optimize.minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
        if res.fun < costs[best]:
            sigma = float(res.x)
    return np.clip(_blur(linear, sigma), 0, 1), float(sigma)


def _blur(stack: np.ndarray, sigma: float) -> np.ndarray:
    return stack if sigma <= 0 else ndimage.gaussian_filter(stack, sigma=(0, sigma, sigma), mode="reflect")


def evaluate_drop_slice(volume: Volume, factor: int, methods: Sequence[str] = ("linear", "cubic"),
                        train_options: dict | None = None, oracle: bool | None = None,
                        keep_predictions: bool | str = False,
                        log: Callable[[str], None] | None = None, downstream: str | None = None,
                        fid_weights: str | Path | None = None) -> dict:
    """Score methods on planes removed from a finely sampled stack.

    Parameters
    ----------
    volume : Volume
        A finely sampled ZYX stack (one channel, one time point).
    factor : int
        Keep every ``factor``-th plane.
    methods : sequence of str, or str
        Classical names, learned method names (trained here on the kept planes
        with ``train_options``) and/or ``'linear+smooth'``; or one string of
        them separated by commas (``"linear,cubic"``).
    train_options : dict, optional
        Options passed to learned methods' ``fit`` (preset, minutes, steps,
        seed, device, ``progress``: False for no bar; ``model_dir`` keeps the
        model there).
    oracle : bool, optional
        Add ``linear+smooth``; default: when a learned method is evaluated.
    keep_predictions : bool or 'raw'
        Return the normalised stacks under ``"arrays"`` (for reports); ``'raw'``
        also each method's reconstruction in the input's intensities, float32,
        under ``result["arrays"]["raw"]`` (what the demo writes, not predicted twice).
    log : callable, optional
        Receives progress messages.
    downstream : {'objects', 'filaments'}, optional
        Also segment the truth and every reconstruction with one pipeline and
        compare objects (volumes, roughness) or filaments (lengths); see
        :mod:`zaug.downstream`.
    fid_weights : path, optional
        Inception-v3 weights (safetensors) for the paper's FID between the
        removed planes and each reconstruction; default ``$ZAUG_FID_WEIGHTS``;
        no FID without either (:mod:`zaug.fid`).

    Returns
    -------
    dict
        ``{"input", "factor", "conventions", "planes", "methods": {name: scores}, "gains"}``, and
        ``"downstream"`` and ``"fid"`` when asked.
    """
    if volume.axes != "ZYX":
        raise InputError(f"evaluation needs a single ZYX stack, this one has axes {volume.axes}; "
                         "pick one channel and time point (--channel C, --time T; Volume.select in Python).")
    check_volume(volume, min_planes=factor + 1)
    check_downstream(downstream)
    volume = said_once(volume, "evaluation")  # scored against predicted planes, if zaug made them
    methods = method_names(methods)
    for name in methods:
        if is_restoration(name):
            raise InputError(f"{name} restores isotropic volumes: evaluate it with --restore.")
        if name not in CLASSICAL_METHODS and name not in ORACLES and not is_learned(name):
            raise InputError(f"unknown method {name!r} for evaluation.")
    if oracle is None:
        oracle = any(is_learned(m) for m in methods)
    if oracle and "linear+smooth" not in methods:
        methods.append("linear+smooth")
    log = log or (lambda msg: None)

    data = np.asarray(volume.data, dtype=np.float32)
    used, kept, removed = drop_slice_split(volume.nz, factor)
    lo, hi = np.percentile(data, (0.1, 99.9))
    norm = _normaliser(lo, hi)
    z_all = volume.z_coords()[:used]
    kept_volume = volume.replace(data=np.asarray(volume.data)[kept], z_positions=z_all[kept]
                                 if not volume.is_uniform else None,
                                 voxel_size=(volume.voxel_size[0] * factor,) + volume.voxel_size[1:])
    for name in methods:  # said of the stack the user gave, not of the kept planes a method's fit sees
        counts = getattr(learned_module(name), "fewest_training_planes", None) if is_learned(name) else None
        needed = counts(name) if counts else 0
        if len(kept) < needed:
            raise InputError(f"{name} trains on the planes kept: x{factor} keeps {len(kept)} of the stack's "
                             f"{volume.nz}, and it needs {needed} (a stack of at least {(needed - 1) * factor + 1} "
                             "planes).")
    check_trainable({m: dict(train_options or {}, method=m) for m in methods if is_learned(m)}, kept_volume)
    truth = norm(data[removed])
    fid_scorer = FIDScorer.maybe(truth, fid_weights, (train_options or {}).get("device", "cpu"))
    predictions: dict[str, np.ndarray] = {}
    raw: dict[str, np.ndarray] = {}
    results: dict[str, dict] = {}
    said: list[str] = []
    with said_warnings(said):  # repeated in the report: an advice on stderr is lost with the terminal
        for name in methods:
            start = time.perf_counter()
            interpolator = None
            if name == "linear+smooth":
                base = predictions.get("linear")
                if base is None:
                    base = norm(ClassicalInterpolator("linear").interpolate(data[kept], z_all[kept], z_all))
                full = base.copy()
                full[removed], sigma = smooth_oracle(base[removed], truth)
                extra = {"sigma": sigma}
            else:
                interpolator, extra = _prepare(name, kept_volume, train_options or {}, log)
                log(f"{name}: reconstructing {len(removed)} planes")
                full = interpolator.interpolate(data[kept], z_all[kept], z_all, pixel_size=volume.voxel_size[1:])
                if keep_predictions == "raw":
                    raw[name] = full
                full = norm(full)
                if getattr(interpolator, "calibration", None):
                    extra["calibration"] = _calibration_record(interpolator)
            rows = [(name, full, time.perf_counter() - start, extra)]
            if hasattr(interpolator, "resolved_mode"):  # ZAugNet: the other mode of the same model too
                extra["mode"] = in_use = interpolator.resolved_mode()
                other = "transfer" if in_use == "direct" else "direct"
                rows.append(_mode_row(name, other, interpolator, data, kept, z_all, volume, norm, log))
            for label, full, seconds, extra in rows:
                predictions[label] = full
                results[label] = dict(metrics.score(full[removed], truth), seconds=round(seconds, 3), **extra)
                if fid_scorer:
                    results[label].update(fid_scorer.scores(full[removed]))
                log(f"{label}: PSNR {results[label]['psnr']:.2f} dB")
    conventions = CONVENTIONS + ([] if volume.is_uniform else _uneven_z_convention(z_all, volume.unit))
    if "cubic" in methods and len(kept) < 4:
        conventions = conventions + [cubic_as_linear(len(kept))]
    result = {
        "input": input_label(volume),
        "shape": list(volume.data.shape),
        "voxel_size": list(volume.voxel_size),
        "unit": volume.unit,
        "factor": int(factor),
        "conventions": conventions,
        "normalisation": {"p0.1": float(lo), "p99.9": float(hi)},
        "planes": {"used": int(used), "kept": kept.tolist(), "removed": removed.tolist()},
        "methods": results,
        "gains": gains(results),
        "warnings": said,
    }
    if fid_scorer:
        result["fid"] = fid_scorer.info
        result["conventions"] = result["conventions"] + [FID_CONVENTION]
    full_truth = norm(data[:used]) if downstream or keep_predictions else None
    if downstream:
        log(f"downstream: segmenting the truth and {len(predictions)} reconstructions ({downstream})")
        result["downstream"] = downstream_checks(full_truth, predictions, volume.voxel_size, downstream,
                                                 unit=volume.unit)
    if keep_predictions:
        result["arrays"] = {"truth": full_truth, "kept": kept, "removed": removed, **predictions}
        if raw:
            result["arrays"]["raw"] = raw
    return result


def input_label(volume: Volume) -> str:
    """The evaluated stack as reports name it: its file, and the box of it that ``--crop`` kept.

    >>> import numpy as np
    >>> input_label(Volume(np.zeros((8, 8, 8)), metadata={"source": "a.tif", "region": [[0, 8], [0, 8], [2, 8]]}))
    'a.tif (planes 0:8, rows 0:8, columns 2:8)'
    """
    name = str(volume.metadata.get("source", volume.metadata.get("name", "array")))
    region = volume.metadata.get("region")
    if not region:
        return name
    return f"{name} ({region_text(region)})"


def cubic_as_linear(planes: int) -> str:
    """The convention line when too few planes make 'cubic' linear interpolation (:func:`zaug.classic`)."""
    return (f"cubic: only {planes} planes to interpolate from, so cubic is linear interpolation here "
            "(a cubic spline needs 4)")


@contextlib.contextmanager
def said_warnings(into: list[str]):
    """Collect the text of the ZaugWarnings shown meanwhile (still shown), for the report to repeat."""
    original = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, ZaugWarning) and str(message) not in into:
            into.append(str(message))
        original(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield into
    finally:
        warnings.showwarning = original


def _uneven_z_convention(z: np.ndarray, unit: str) -> list[str]:
    """The report's line for unevenly spaced planes: the split is by plane index, not by position."""
    gaps = np.diff(z)
    return [f"z positions are uneven (gaps {gaps.min():.4g} to {gaps.max():.4g} {unit}, mean {gaps.mean():.4g}): "
            "planes are kept and removed by index, every method interpolates at the true positions"]


def _calibration_record(model) -> dict:
    """ZAugNet's calibration weights per spacing (and the variance cap's scale in them), as results.json keeps them."""
    scales = getattr(model, "calibration_scale", {})
    from .nets.zstack import band_weights

    def record(k, weights):  # per in-plane detail band, finest first
        bands = band_weights(weights)
        return {"model": [round(a, 4) for a, _ in bands], "cubic": [round(c, 4) for _, c in bands],
                "scale": round(scales.get(k, 1.0), 4)}

    return {f"{k:g}": record(k, w) for k, w in model.calibration.items()}


def _mode_row(name: str, mode: str, model, data, kept, z_all, volume: Volume, norm, log):
    """The same trained ZAugNet in its other mode (see ``ZAugNetModel.mode``): no second training."""
    start = time.perf_counter()
    label = f"{name}:{mode}"
    log(f"{label}: reconstructing with the same model in its {mode!r} mode")
    before, calibration, scale = model.mode, dict(model.calibration), dict(model.calibration_scale)
    model.mode = mode
    try:
        full = norm(model.interpolate(data[kept], z_all[kept], z_all, pixel_size=volume.voxel_size[1:]))
        extra = {"mode": mode}
        if model.calibration:
            extra["calibration"] = _calibration_record(model)
    finally:
        model.mode, model.calibration, model.calibration_scale = before, calibration, scale
    return label, full, time.perf_counter() - start, extra


def _normaliser(lo: float, hi: float):
    scale = float(hi - lo) if hi > lo else 1.0

    def norm(x: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(x, np.float32) - np.float32(lo)) / np.float32(scale), 0.0, 1.0)

    return norm


#: Training options of a model in a temporary folder: nothing resumes it, so no checkpoints (tens of MB each)
#: every minute, only the one at the end.
THROWAWAY = {"checkpoint_every_s": math.inf}
SCRATCH_PREFIX = "zaug-eval-"


@contextlib.contextmanager
def scratch_folder():
    """A temporary folder for an evaluation's throwaway models, named by host and process, removed on the
    way out; the folders evaluations on this host left when they were killed outright (``kill -9``, a
    cluster's time limit: nothing runs on the way out) are removed first."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    _remove_orphans(Path(tempfile.gettempdir()), f"{SCRATCH_PREFIX}{host}-")
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{host}-{os.getpid()}-") as tmp:
        yield Path(tmp)


def _remove_orphans(folder: Path, prefix: str) -> None:
    for path in folder.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-")[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def check_trainable(fits: dict[str, dict], volume: Volume) -> None:
    """Make every refusal of the learned methods' training (a stack too small for one, a bad option) before
    any of them trains: refused after the first, the minutes of its training would be lost.

    ``fits`` maps each learned method to the options its ``fit`` will get.
    """
    for name, options in fits.items():
        with tempfile.TemporaryDirectory(prefix="zaug-check-") as tmp:
            learned_module(name).fit([volume], Path(tmp) / "model", dict(options, check_only=True))


def _prepare(name: str, kept_volume: Volume, options: dict, log):
    if name in CLASSICAL_METHODS:
        return ClassicalInterpolator(name), {}
    module = learned_module(name)
    log(f"{name}: training on the {kept_volume.nz} kept planes only")
    if options.get("model_dir"):  # the caller keeps the model
        model_dir = module.fit([kept_volume], options["model_dir"], dict(options, method=name, overwrite=True))
        model = module.load(model_dir, device=options.get("device", "auto"))
    else:
        with scratch_folder() as tmp:
            model_dir = module.fit([kept_volume], tmp / "model", dict(options, method=name, **THROWAWAY))
            model = module.load(model_dir, device=options.get("device", "auto"))
    if hasattr(model, "calibrate"):
        model.calibrate = bool(options.get("calibrate", True))
    if hasattr(model, "tta"):
        model.tta = bool(options.get("tta", True))
    if hasattr(module, "format_self_check"):
        log(module.format_self_check(model.config.self_check))
    summary = getattr(model, "training_summary", {})
    extra = {"training": summary} if summary else {}
    self_check = getattr(getattr(model, "config", None), "self_check", None)
    if self_check:  # the scores on planes held out of the kept ones, as the training printed them
        extra["self_check"] = self_check
    return model, extra


def gains(results: dict[str, dict]) -> dict[str, dict]:
    """PSNR gain of each learned method over the best classical method and over smoothing."""
    classical = {m: r["psnr"] for m, r in results.items() if m in CLASSICAL_METHODS and m != "nearest"}
    out = {}
    if not classical:
        return out
    best_classical = max(classical, key=classical.get)
    with_smooth = dict(classical)
    if "linear+smooth" in results:
        with_smooth["linear+smooth"] = results["linear+smooth"]["psnr"]
    best_any = max(with_smooth, key=with_smooth.get)
    for name, r in results.items():
        if name in CLASSICAL_METHODS or name in ORACLES:
            continue
        out[name] = {
            "best_classical": best_classical,
            "gain_db": r["psnr"] - classical[best_classical],
            "best_baseline": best_any,
            "gain_over_baselines_db": r["psnr"] - with_smooth[best_any],
            "sharpness": r["sharpness"],
        }
        if "cf_psnr" in r:  # structure: the lowest band, where noise weighs least
            low = {m: results[m]["cf_psnr"]["low"] for m in classical if "cf_psnr" in results[m]}
            best_low = max(low, key=low.get)
            out[name].update(best_low_band=best_low, low_band_gain_db=r["cf_psnr"]["low"] - low[best_low])
    return out


def verdict(name: str, gain: dict) -> str:
    """One line a biologist can read."""
    g, gs = gain["gain_db"], gain["gain_over_baselines_db"]
    word = "better" if g > 0.05 else ("worse" if g < -0.05 else "no better")
    line = (f"{name}: {g:+.2f} dB vs the best interpolation ({gain['best_classical']}), "
            f"{gs:+.2f} dB vs the best of interpolation and smoothing ({gain['best_baseline']}); "
            f"sharpness {gain['sharpness']:.2f} (1.00 = as sharp as the real planes). ")
    low = gain.get("low_band_gain_db")
    if g > 0.05 and gs <= 0.05:
        line += "Its gain is no more than smoothing would give: it mostly denoises."
    elif word == "better" and low is not None and low < -0.05:  # the tolerance of "better" and "worse"
        line += (f"But at low spatial frequencies (structure) it is {-low:.2f} dB below {gain['best_low_band']}: "
                 "its gain is noise removal, not better-recovered structure.")
    elif word == "better":
        line += "It recovers structure beyond interpolation and smoothing."
    else:
        line += f"It is {word} than interpolation on this stack: prefer {gain['best_classical']}."
    for mode in ("direct", "transfer"):
        if name.endswith(f":{mode}"):
            line += f" (zaug predict --z-mode {mode})"
    return line


def format_table(result: dict) -> str:
    """Plain-text table of an evaluation result."""
    head = (f"{'method':<24}{'PSNR':>8}{'SSIM':>8}{'RMSE':>9}{'CF-low':>8}{'CF-mid':>8}"
            f"{'CF-high':>9}{'sharp':>7}{'time s':>9}" + (distance_columns() if "fid" in result else ""))
    lines = [f"drop-slice x{result['factor']} on {result['input']} "
             f"({len(result['planes']['removed'])} planes removed, PSNR/SSIM on [0,1] data)", head]
    for name, r in result["methods"].items():
        label = name + (f" (s={r['sigma']:.2f})" if "sigma" in r else "")
        cf = r["cf_psnr"]
        lines.append(f"{label:<24}{r['psnr']:>8.2f}{r['ssim']:>8.4f}{r['rmse']:>9.5f}{cf['low']:>8.2f}"
                     f"{cf['mid']:>8.2f}{cf['high']:>9.2f}{r['sharpness']:>7.3f}{r['seconds']:>9.2f}"
                     + distance_columns(r))
    for name, g in result["gains"].items():
        lines.append(verdict(name, g))
    lines += exact_notes(result["methods"])
    lines += [f"note: {c}" for c in result.get("conventions", []) if c.startswith("cubic: only")]
    if "downstream" in result:
        lines.append(format_downstream(result["downstream"], result["unit"]))
    return "\n".join(lines)


def exact_notes(methods: dict) -> list[str]:
    """Say in words why a PSNR reads inf (JSON: null): the method's planes equal the truth."""
    exact = [name for name, r in methods.items() if r.get("psnr") == np.inf]
    if not exact:
        return []
    return [f"PSNR inf: {', '.join(exact)} reproduced the scored planes exactly (no error to measure)."]
