"""Export a trained ZAugNet, ZAugNet+, Self-Net, niiv or RESIN model as a bioimage.io model package.

The package (a ``.zip`` of the bioimage.io model format 0.5) runs without zaug
in consumers that read ``pytorch_state_dict`` weights (tested with
bioimageio.core; not TorchScript-only ones): its architecture is one of the
stack modules of :mod:`zaug.nets.zstack` (``ZStackInterpolator`` for ZAugNet
and ZAugNet+, ``ZStackRestorer`` for Self-Net, ``ZStackNiivRestorer`` for niiv,
``ZVolumeRestorer`` for RESIN) with its network, one source file that needs
torch, numpy and scipy. Its input
is a ``(batch, z, y, x)`` stack in the stack's intensity units; its output the
stack with ``factor`` times finer z sampling, in float32, with the z scale
divided by ``factor``.

What the package cannot carry is what zaug measures on every stack: ZAugNet's
calibration (the weights of the model against linear and cubic interpolation,
fitted on lateral triplets of each stack it interpolates) and the restoration
models' intensity range (percentiles). It is measured once here, on the stack
given, and fixed in the package: use that stack, or one of the same kind and
sampling.

Needs ``pip install 'zaug[bioimageio]'`` (bioimageio.spec to write and validate
the description, bioimageio.core to test-run it).

Examples
--------
>>> from zaug.export import check_export_factor
>>> check_export_factor(4, plus=False)
4
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch

from . import __version__
from .errors import InputError, ZaugError, ZaugWarning
from .classic import CLASSICAL_METHODS
from .io import check_output_path
from .io._atomic import atomic_path
from .io._units import normalize_unit, significant
from .nets import edsr_liif, ifnet, resnet2d, unet3d, zstack
from .methods.zaugnet import TRANSFER_ALPHA, describe_weights, check_mode as zaugnet_mode
from .predict import output_positions
from .volume import Volume, check_volume

#: Largest lateral side and number of planes of the test tensor shipped in the package.
TEST_SIDE, TEST_PLANES = 64, 6

SELFNET_CITATION = {
    "text": "Ning, Lu et al., Deep self-learning enables fast, high-fidelity isotropic resolution restoration for "
            "volumetric fluorescence microscopy (Self-Net), Light: Science & Applications 12, 204 (2023)",
    "doi": "10.1038/s41377-023-01230-2",
}

NIIV_CITATION = {
    "text": "Troidl et al., niiv: fast self-supervised neural implicit isotropic volume reconstruction",
    "url": "https://github.com/jakobtroidl/niiv",
}

RESIN_CITATION = {
    "text": "Wang, Zhao, Liu, Zhang, Yang, Xu and Zhou, RESIN: A self-supervised framework for enhancing axial "
            "resolution of volumetric imaging data",
    "url": "https://github.com/wwbwang/sr_3dunet",
}

ZAUGNET_CITATION = {
    "text": "Pasqui et al., Self-supervised z-slice augmentation for 3D bio-imaging via knowledge distillation "
            "(ZAugNet)",
    "url": "https://github.com/VirtualEmbryo/ZAugNet",
}


class ExportError(ZaugError):
    """The model cannot be exported (missing packages, unsupported method, failed test)."""


NO_AUTHOR = "unknown (exported by zaug without --author)"


def check_export_factor(factor: int, plus: bool, minimum: int = 2) -> int:
    """The z factor of an exported model: a power of two for ZAugNet (x2 per pass), any integer for ZAugNet+.

    Restoration models also take 1 (``minimum=1``): restored at the stack's own z sampling.
    """
    if int(factor) != factor or factor < minimum:
        raise InputError(f"--factor must be an integer of at least {minimum} for an export, got {factor:g}.")
    factor = int(factor)
    if not plus and factor & (factor - 1):
        raise InputError(f"a ZAugNet model doubles the planes per pass, so a package takes --factor 2, 4, 8, ...; "
                         f"got {factor} ('zaug predict' reaches other factors by interpolating between the "
                         "model's planes, which a package does not do; --z-mode transfer or a ZAugNet+ model "
                         "takes any integer).")
    if factor > 16:
        raise InputError(f"--factor {factor} is more than 16; export a smaller factor.")
    return factor


#: Powers of ten of the units an exported axis may be given in, coarsest first (zaug's short names).
_EXPONENTS = {"m": 0, "cm": -2, "mm": -3, "um": -6, "nm": -9, "A": -10}
_FINER = (("um", -6), ("nm", -9), ("pm", -12))
_NAMES = {"m": "meter", "cm": "centimeter", "mm": "millimeter", "um": "micrometer", "nm": "nanometer",
          "A": "angstrom", "pm": "picometer"}


def axis_scales(voxel_size, unit: str, factor: int) -> tuple[str | None, list[float], float]:
    """Unit name, input (z, y, x) scales and output z scale of an exported package.

    bioimage.io sizes the output z axis as ``n * input scale / output scale +
    offset``, in floating point: it checks the test tensor for equality and
    truncates when run, so ``0.29 / 0.145`` or ``0.58 / (0.58 / 3)``, a hair
    off, would cost a plane. Whole numbers divide exactly, so the scales are
    given in the coarsest unit (the stack's, nanometres or picometres) in which
    the output z scale is a whole number to within a millionth (else in whole
    picometres), and the input z scale is exactly ``factor`` times it.

    >>> axis_scales((0.29, 0.26, 0.26), "um", 2)
    ('nanometer', [290.0, 260.0, 260.0], 145.0)
    >>> axis_scales((0.58, 0.26, 0.26), "um", 3)[2]
    193333.0
    >>> axis_scales((2.0, 1.0, 1.0), "pixel", 3)
    (None, [6.0, 3.0, 3.0], 2.0)
    """
    unit = normalize_unit(unit)
    vz, vy, vx = (float(v) for v in voxel_size)
    if unit not in _EXPONENTS:  # pixels or an unknown unit: relative scales, free up to a common multiple
        candidates = [(None, factor * 10.0**k) for k in range(7)]
    else:
        own = _EXPONENTS[unit]
        candidates = [(unit, 1.0)] + [(u, 10.0 ** (own - e)) for u, e in _FINER if e < own]
    for name, mult in candidates:
        out = round(vz * mult / factor)
        if out >= 1 and abs(out * factor - vz * mult) <= 1e-6 * vz * mult:
            break
    out = max(1, out)
    lateral = [_whole(v * mult) for v in (vy, vx)]
    return (_NAMES[name] if name else None), [float(out * factor)] + lateral, float(out)


def _whole(value: float) -> float:
    return float(round(value)) if abs(value - round(value)) <= 1e-9 * abs(value) else value


def _bioimageio():
    try:
        import bioimageio.core  # noqa: F401
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5
    except ImportError as exc:
        raise ExportError("exporting to bioimage.io needs bioimageio.spec and bioimageio.core: "
                          "pip install 'zaug[bioimageio]'.") from exc
    return v0_5, save_bioimageio_package


def architecture_source() -> str:
    """One Python file holding zaug's networks and the stack modules that run them (torch, numpy, scipy)."""
    parts, defined = [], {}
    for module in (ifnet, resnet2d, unet3d, edsr_liif, zstack):
        for node in ast.parse(inspect.getsource(module)).body:  # one namespace: no name may be defined twice
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if node.name in defined:
                    raise RuntimeError(f"{node.name} is defined in both {defined[node.name]} and {module.__name__}; "
                                       "rename one so that the bundled architecture file keeps both.")
                defined[node.name] = module.__name__
        source = re.sub(r'^""".*?"""\n', "", inspect.getsource(module), count=1, flags=re.S)
        lines = [line for line in source.splitlines()
                 if "# zaug-bundle" not in line and line != "from __future__ import annotations"]
        parts.append(f"# ---- zaug/nets/{module.__name__.rsplit('.', 1)[-1]}.py ----\n" + "\n".join(lines))
    header = (f'"""zaug {__version__} networks for bioimage.io: zaug/nets/ifnet.py, resnet2d.py, unet3d.py, edsr_liif.py and zstack.py.\n\n'
              'Copyright (c) 2026, the zaug authors. BSD-3-Clause licence (the package\'s own licence is that of its\n'
              'weights and files): redistributions must keep this notice.\n"""\n\n'
              "from __future__ import annotations\n\n")
    return header + "\n\n".join(parts) + "\n"


@dataclass
class _Plan:
    """What one kind of model puts in a package."""

    method: str  # ZAugNet, ZAugNet+, Self-Net, niiv or RESIN
    factor: int  # how many times finer the output's z sampling is
    module: torch.nn.Module  # the packaged network (zaug.nets.zstack)
    kwargs: dict  # its constructor's arguments
    fixed: dict  # what was measured on the stack and fixed in the package
    fixed_lines: list  # the same, in words
    reference: Callable  # (ZYX crop, z positions) -> zaug's own prediction with the same fixed values
    summary: str  # what the package does, one sentence
    tags: list
    cite: dict


def export_bioimageio(model_dir: str | Path, volume: Volume, output: str | Path, *, factor: int | None = None,
                      name: str | None = None, authors: list[str] | None = None, license: str = "CC-BY-4.0",
                      calibrate: bool = True, overwrite: bool = False, test: bool = True,
                      mode: str | None = None) -> dict:
    """Write ``model_dir`` as a bioimage.io model package (``output``, a ``.zip``).

    Parameters
    ----------
    model_dir : path
        A ZAugNet, ZAugNet+, Self-Net, niiv or RESIN model folder from ``zaug train``.
    volume : Volume
        A stack of the kind the package is for (uniform z spacing): what
        zaug measures per stack (ZAugNet's calibration weights, the
        restoration models' intensity range) is measured on it (its central 512 x 512 window;
        the first channel / time point) and fixed in the package; a crop of
        it becomes the package's test input, and its voxel size the axes' scale.
    output : path
        The package to write; must end in ``.zip``; never replaced without ``overwrite``.
    factor : int, optional
        How many times finer the output's z sampling is (default 2 for
        ZAugNet, the trained anisotropy rounded for the restoration models,
        which also take 1: restored at the stack's own sampling, e.g. a RESIN
        model of an oblique blur on a near-isotropic stack).
    name, authors, license
        For the description (defaults: from the model folder, :data:`NO_AUTHOR` with a warning, CC-BY-4.0).
        The licence is checked before any work.
    calibrate : bool
        ZAugNet: False fixes the weights at the model alone, as ``zaug predict --no-calibrate``.
    mode : {'direct', 'transfer', 'auto'}, optional
        ZAugNet: the mode of the packaged module, as ``zaug predict --z-mode``
        (default: the model's; ``'auto'`` is resolved here, from the
        self-check). ``'transfer'`` fixes no calibration and takes any integer
        factor.
    test : bool
        Run bioimageio.core's test of the package before it is written.

    Returns
    -------
    dict
        ``path``, ``fixed`` (what was fixed on the stack) and ``fixed_lines`` (in
        words), ``test`` (the test's status, or None), ``max_difference``
        (package vs zaug on the test input, in intensity units).
    """
    from .methods import resolve

    v0_5, save_package = _bioimageio()
    output = Path(output)
    if output.suffix != ".zip":
        raise InputError(f"a bioimage.io package is a .zip file; {output.name} does not end in .zip.")
    check_output_path(output, overwrite=overwrite)
    _check_licence(v0_5, license)
    if not Path(model_dir).exists() and str(model_dir) not in CLASSICAL_METHODS:
        raise InputError(f"{model_dir} does not exist; give the folder of a model from 'zaug train'.")
    model = resolve(str(model_dir), device="cpu")
    stack, z_in = _check_volume(volume)
    if mode is not None:
        if not hasattr(model, "mode"):
            raise InputError("--z-mode is a ZAugNet option; this model has no modes.")
        model.mode = zaugnet_mode(mode)
    plan = _plan(model, stack, z_in, volume, factor, calibrate, Path(model_dir).resolve().name)
    _warn_about_what_is_shared(model, authors)
    factor = plan.factor
    test_input = _test_input(stack)
    test_output = plan.module(torch.from_numpy(test_input)).numpy()
    reference = plan.reference(test_input[0], z_in[:test_input.shape[1]])
    difference = float(np.max(np.abs(test_output[0] - reference)))
    with tempfile.TemporaryDirectory(prefix="zaug-bioimageio-") as tmp:
        descr = _description(v0_5, plan, model, volume, Path(tmp), test_input, test_output,
                             name or f"{plan.method} x{factor} z ({Path(model_dir).resolve().name})",
                             authors or [NO_AUTHOR], license)
        status = _run_test(descr) if test else None
        with atomic_path(output, overwrite=overwrite) as part:
            save_package(descr, output_path=part)
    return {"path": output, "fixed": plan.fixed, "fixed_lines": plan.fixed_lines, "test": status,
            "max_difference": difference}


def _plan(model, stack, z_in, volume: Volume, factor, calibrate: bool, folder: str) -> _Plan:
    from .methods.niiv import NiivRestorer
    from .methods.resin import ResinRestorer
    from .methods.selfnet import SelfNetRestorer
    from .methods.zaugnet import ZAugNetModel

    if isinstance(model, ZAugNetModel):
        # the package holds one intensity scaling: the one zaug predict chooses for this stack
        model.fixed_normalisation = model._normalisation_for(stack)
        return _interpolation_plan(model, stack, z_in, volume, 2 if factor is None else factor, calibrate)
    if isinstance(model, (SelfNetRestorer, NiivRestorer, ResinRestorer)):
        return _restoration_plan(model, stack, z_in, factor)
    raise ExportError(f"only ZAugNet, ZAugNet+, Self-Net, niiv and RESIN models can be exported to bioimage.io; "
                      f"{folder} is a {model.name} model.")


def _interpolation_plan(model, stack, z_in, volume: Volume, factor, calibrate: bool) -> _Plan:
    if model.resolved_mode() == "transfer":
        return _transfer_plan(model, factor)
    factor = check_export_factor(factor, model.plus)
    model.calibrate = calibrate
    weights = _calibration_weights(model, stack, z_in, factor, volume.voxel_size[1:])
    module = _wrapper(model, factor, weights)
    kwargs = {"net": {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.net.items()},
              "low": module.low, "high": module.high, "factor": factor, "weights": weights,
              "tta": module.tta, "tile": module.tile, "overlap": module.overlap, "batch": module.batch}
    method = "ZAugNet+" if model.plus else "ZAugNet"
    lines = [f"calibration, pass {n}: {describe_weights(w).replace('linear interpolation', 'linear', 1)}"
             for n, w in enumerate(weights, 1)]
    return _Plan(method, factor, module, kwargs, {"calibration_weights": weights}, lines,
                 lambda crop, z: _zaug_prediction(model, weights, crop, z, factor),
                 f"{method} trained with zaug on the user's own stack: {factor} times finer z sampling "
                 "of fluorescence / EM z-stacks (self-supervised, no ground truth).",
                 ["zaug", method.lower(), "z-interpolation", "3d", "self-supervised", "pytorch"],
                 ZAUGNET_CITATION)


def _transfer_plan(model, factor) -> _Plan:
    """ZAugNet in its transfer mode: the model at its training gap only, nothing measured on the stack."""
    factor = check_export_factor(factor if factor is not None else 2, plus=True)  # any integer
    module = _wrapper(model, factor, [], mode="transfer")
    kwargs = {"net": {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.net.items()},
              "low": module.low, "high": module.high, "factor": factor, "weights": [],
              "tta": module.tta, "tile": module.tile, "overlap": module.overlap, "batch": module.batch,
              "mode": "transfer", "alpha": module.alpha}
    method = "ZAugNet+" if model.plus else "ZAugNet"
    lines = [f"mode: transfer (each acquired plane estimated from its two neighbours, weight {module.alpha:g} "
             "on the measured plane, then carried to the new planes; no calibration)"]

    def reference(crop, z):
        fixed = copy.copy(model)
        fixed.mode = "transfer"
        with warnings.catch_warnings():  # the spacing advice is zaug predict's, not the package's
            warnings.simplefilter("ignore")
            return fixed.interpolate(crop, z, output_positions(z, factor=factor))

    return _Plan(method, factor, module, kwargs, {"mode": "transfer"}, lines, reference,
                 f"{method} trained with zaug on the user's own stack, in its transfer mode: {factor} times "
                 "finer z sampling of fluorescence / EM z-stacks (self-supervised, no ground truth).",
                 ["zaug", method.lower(), "z-interpolation", "3d", "self-supervised", "pytorch"],
                 ZAUGNET_CITATION)


def _restoration_plan(model, stack, z_in, factor) -> _Plan:
    """Self-Net, niiv (the xz and yz planes restored and fused) or RESIN (3D restoration in cubes)."""
    from .restore import RestorationTiles

    trained = float(model.config.factor)
    factor = check_export_factor(max(1, round(trained)) if factor is None else factor, plus=True, minimum=1)
    if abs(factor / trained - 1) > 0.15:
        warnings.warn(ZaugWarning(
            f"the model restores a {trained:.2f}-fold anisotropy; a package that samples z {factor} times "
            "finer resamples its axial planes to another spacing than it learnt."), stacklevel=4)
    tiles = RestorationTiles(model, "mean").for_stack(_central_window(stack), z_in, None)
    low, high = tiles.range
    spacing = float(np.mean(np.diff(z_in))) / factor
    if model.name == "resin":
        net = dict(model.config.net["net"])
        module = zstack.ZVolumeRestorer(net, low, high, 1.0 / factor, model.tile, model.overlap)
        module.restore.load_state_dict(model.net.state_dict())
        kwargs = {"tile": module.tile, "overlap": module.overlap}
        method, cite, tags = "RESIN", RESIN_CITATION, ["resin"]
        how = "the 3D network restores it in overlapping cubes (self-supervised, self-imitation on its lateral axes)"
    elif model.name == "niiv":
        net = dict(model.config.net)
        module = zstack.ZStackNiivRestorer(net, low, high, 1.0 / factor, "mean", chunk=model.chunk)
        module.niiv.load_state_dict(model.net.state_dict())
        kwargs = {"fuse": "mean", "batch": module.batch, "chunk": module.chunk}
        method, cite, tags = "niiv", NIIV_CITATION, ["niiv", "implicit-neural-representation"]
        how = ("the xz and yz planes are decoded at the new rows by an implicit network and fused "
               "(self-supervised, from the stack's lateral planes)")
    else:
        net = dict(model.config.net["generator"])
        module = zstack.ZStackRestorer(net, low, high, 1.0 / factor, "mean", model.tile)
        module.deblur.load_state_dict(model.net.state_dict())
        kwargs = {"fuse": "mean", "tile": module.tile}
        method, cite, tags = "Self-Net", SELFNET_CITATION, ["self-net"]
        how = "the xz and yz planes are deblurred and fused (self-supervised, from the stack's lateral planes)"
    module.eval()

    def reference(crop, z):
        return tiles.interpolate(crop, z, output_positions(z, z_spacing=spacing))

    return _Plan(method, factor, module, {"net": net, "low": low, "high": high, "step": 1.0 / factor, **kwargs},
                 {"intensity_range": [low, high]},
                 [f"intensity range {low:g} to {high:g} mapped to 0 and 1 (percentiles of the stack)"], reference,
                 f"{method} trained with zaug on the user's own stack: isotropic restoration, "
                 f"{_sampling(factor)} and {how}.", ["zaug", *tags, "isotropic-restoration", "3d", "self-supervised",
                                             "pytorch"], cite)


def _sampling(factor: int) -> str:
    return f"z sampled {factor} times finer" if factor > 1 else "at the stack's own z sampling"


def _check_volume(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    check_volume(volume, min_planes=2)
    if not volume.is_uniform:
        raise InputError("the stack's z spacing is not uniform; a bioimage.io package describes one z scale, "
                         "so export with a uniformly sampled stack.")
    if volume.data.ndim > 3:
        warnings.warn(ZaugWarning(
            f"the stack has {int(np.prod(volume.data.shape[:-3]))} channels / time points; the package takes one "
            "z-stack at a time, and its calibration and test input come from the first."), stacklevel=3)
    stack = np.asarray(next(iter(volume.stacks()))[1], np.float32)
    return stack, volume.z_coords()


def _central_window(stack: np.ndarray) -> np.ndarray:
    """The central 512 x 512 window, on which blockwise ``zaug predict`` measures per-stack values."""
    from .blockwise import SAMPLE_SIDE

    ny, nx = stack.shape[1:]
    y0, x0 = max(0, (ny - SAMPLE_SIDE) // 2), max(0, (nx - SAMPLE_SIDE) // 2)
    return stack[:, y0:y0 + SAMPLE_SIDE, x0:x0 + SAMPLE_SIDE]


def _calibration_weights(model, stack: np.ndarray, z_in: np.ndarray, factor: int, pixel_size) -> list:
    """(model, cubic) weights per pass and detail band, measured as blockwise ``zaug predict`` does (central window)."""
    window = _central_window(stack)
    z_out = output_positions(z_in, factor=factor)
    spacing = float(np.mean(np.diff(z_in)))
    spacings = [spacing] if model.plus else [spacing / 2**p for p in range(int(np.log2(factor)))]
    if not model.calibrate:
        return [[1.0, 0.0] for _ in spacings]
    fixed = model.for_stack(window, z_in, z_out, pixel_size=tuple(pixel_size)).fixed_calibration
    return [np.asarray(fixed[min(fixed, key=lambda k: abs(k - s))]).tolist() for s in spacings]


def _wrapper(model, factor: int, weights: list, mode: str = "direct") -> zstack.ZStackInterpolator:
    low, high = model.fixed_normalisation or (model.config.normalisation["low"], model.config.normalisation["high"])
    wrapper = zstack.ZStackInterpolator(model.config.net, low, high, factor, weights,
                                        tta=model.tta, tile=model.tile, overlap=model.overlap, batch=model.batch,
                                        mode=mode, alpha=TRANSFER_ALPHA)
    wrapper.generator.load_state_dict(model.net.state_dict())
    return wrapper.eval()


def _test_input(stack: np.ndarray) -> np.ndarray:
    nz, ny, nx = stack.shape
    z0, y0, x0 = max(0, (nz - TEST_PLANES) // 2), max(0, (ny - TEST_SIDE) // 2), max(0, (nx - TEST_SIDE) // 2)
    crop = stack[z0:z0 + TEST_PLANES, y0:y0 + TEST_SIDE, x0:x0 + TEST_SIDE]
    return np.ascontiguousarray(crop[None], np.float32)


def _zaug_prediction(model, weights, stack, z_in, factor) -> np.ndarray:
    """What ``zaug predict`` gives on ``stack`` with the same (fixed) calibration weights."""
    spacing = float(np.mean(np.diff(z_in)))
    spacings = [spacing] if model.plus else [spacing / 2**p for p in range(len(weights))]
    fixed = copy.copy(model)
    fixed.calibrate = True
    fixed.fixed_calibration = {significant(s, 9): zstack.band_weights(w) for s, w in zip(spacings, weights)}
    with warnings.catch_warnings():  # the spacing advice was given when the weights were measured
        warnings.simplefilter("ignore")
        out = fixed.interpolate(stack, z_in, output_positions(z_in, factor=factor))
    if set(fixed.calibration) != set(fixed.fixed_calibration):  # a pass measured weights of its own
        raise ExportError("the exported passes do not match zaug's (spacings "
                          f"{sorted(fixed.calibration)} vs {sorted(fixed.fixed_calibration)}).")
    return out


def _check_licence(v0_5, license: str) -> None:
    """Refuse a licence the bioimage.io description would refuse, before the model runs."""
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(v0_5.ModelDescr.model_fields["license"].annotation).validate_python(license)
    except ValidationError as exc:
        raise ExportError(f"{license!r} is not an SPDX licence identifier such as CC-BY-4.0, MIT or "
                          "BSD-3-Clause.") from exc


def _warn_about_what_is_shared(model, authors: list[str] | None) -> None:
    """A package is made to be shared: say what its description would otherwise claim or hide."""
    if not authors:
        warnings.warn(ZaugWarning(f"no --author given: the package names its author {NO_AUTHOR!r}; pass "
                                  "--author NAME (repeat for several) before sharing it."), stacklevel=3)
    gain = (model.config.self_check or {}).get("gain_db")
    if gain is not None and gain < 0:
        warnings.warn(ZaugWarning(f"this model's self-check measured {gain:+.2f} dB against interpolation on "
                                  "its training stack: the package may do worse than interpolation (its README "
                                  "says so)."), stacklevel=3)


def _run_test(descr) -> str:
    from bioimageio.core import test_model

    summary = test_model(descr)
    if summary.status != "passed":
        failed = [d for d in summary.details if d.status == "failed"]
        reason = "; ".join(f"{d.name}: {e.msg}" for d in failed for e in d.errors) or "see bioimageio.core"
        raise ExportError(f"the package failed bioimageio.core's test ({reason[:400]}); nothing was written.")
    return summary.status


def _description(v0_5, plan: _Plan, model, volume: Volume, folder: Path, test_input, test_output, name: str,
                 authors: list[str], license: str):
    """The bioimage.io model description, its files written to ``folder``."""
    factor = plan.factor
    files = {"weights": folder / "weights.pt", "arch": folder / "zaug_zstack.py",
             "env": folder / "environment.yaml", "input": folder / "test_input.npy",
             "output": folder / "test_output.npy", "doc": folder / "README.md", "cover": folder / "cover.png",
             "sample_in": folder / "sample_input.tif", "sample_out": folder / "sample_output.tif"}
    # the bioimage.io format for PyTorch weights is torch.save's state dict; consumers load it with
    # weights_only=True, and zaug itself never reads it back (its own models are safetensors)
    torch.save(plan.module.state_dict(), files["weights"])
    files["arch"].write_text(architecture_source(), encoding="utf-8")
    files["env"].write_text(_environment(), encoding="utf-8")
    np.save(files["input"], test_input)
    np.save(files["output"], test_output)
    # the same crop as images a person can open (bioimage.io's sample tensors; the .npy files are for machines)
    tifffile.imwrite(files["sample_in"], test_input[0])
    tifffile.imwrite(files["sample_out"], test_output[0])
    files["doc"].write_text(_documentation(plan, model, volume), encoding="utf-8")
    _cover(files["cover"], test_input[0], test_output[0], factor)

    unit, (vz, vy, vx), out_z = axis_scales(volume.voxel_size, volume.unit, factor)
    space = dict(unit=unit) if unit else {}
    axis = lambda cls, name, size, scale: cls(id=v0_5.AxisId(name), size=size, scale=scale, **space)  # noqa: E731
    raw = v0_5.TensorId("raw")
    ref = lambda name, offset=0: v0_5.SizeReference(tensor_id=raw, axis_id=v0_5.AxisId(name), offset=offset)  # noqa: E731
    least_z = 3 if plan.kwargs.get("mode") == "transfer" else 2
    sizes = {"z": v0_5.ParameterizedSize(min=least_z, step=1), "y": v0_5.ParameterizedSize(min=16, step=1)}
    in_axes = [v0_5.BatchAxis(), axis(v0_5.SpaceInputAxis, "z", sizes["z"], vz),
               axis(v0_5.SpaceInputAxis, "y", sizes["y"], vy), axis(v0_5.SpaceInputAxis, "x", sizes["y"], vx)]
    out_axes = [v0_5.BatchAxis(), axis(v0_5.SpaceOutputAxis, "z", ref("z", 1 - factor), out_z),
                axis(v0_5.SpaceOutputAxis, "y", ref("y"), vy), axis(v0_5.SpaceOutputAxis, "x", ref("x"), vx)]
    inputs = [v0_5.InputTensorDescr(
        id=raw, axes=in_axes, test_tensor=v0_5.FileDescr(source=files["input"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_in"]),
        description="z-stack in its own intensity units (float32); uniform z spacing")]
    outputs = [v0_5.OutputTensorDescr(
        id=v0_5.TensorId("output"), axes=out_axes, test_tensor=v0_5.FileDescr(source=files["output"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_out"]),
        description=f"the stack {_sampling(factor)}, float32")]
    state_dict = v0_5.PytorchStateDictWeightsDescr(
        source=files["weights"], pytorch_version=v0_5.Version(torch.__version__.split("+")[0]),
        architecture=v0_5.ArchitectureFromFileDescr(source=files["arch"], callable=type(plan.module).__name__,
                                                    kwargs=plan.kwargs),
        dependencies=v0_5.FileDescr(source=files["env"]))
    cfg = model.config
    try:
        return v0_5.ModelDescr(
            name=name, description=plan.summary, authors=[v0_5.Author(name=a) for a in authors],
            cite=[v0_5.CiteEntry(**plan.cite)], license=license,
            documentation=v0_5.FileDescr(source=files["doc"]), covers=[v0_5.FileDescr(source=files["cover"])],
            tags=plan.tags, inputs=inputs, outputs=outputs, weights=v0_5.WeightsDescr(pytorch_state_dict=state_dict),
            config={"zaug": {"version": __version__, "method": cfg.method, "preset": cfg.preset, "factor": factor,
                             **_jsonable(plan.fixed), "train_voxel_size": list(cfg.train_voxel_size),
                             "train_unit": cfg.train_unit, "self_check": _jsonable(cfg.self_check),
                             "steps": cfg.summary.get("steps")}})
    except ValueError as exc:  # pydantic's ValidationError: a bad --name, ... (the licence is checked first)
        errors = getattr(exc, "errors", lambda: [])()
        where = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else "description"
        message = errors[0]["msg"] if errors else str(exc)
        raise ExportError(f"the bioimage.io description is not valid ({where}: {message[:200]}).") from exc


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _environment() -> str:
    import scipy

    return ("name: zaug-zstack\nchannels:\n  - conda-forge\n  - nodefaults\ndependencies:\n"
            f"  - pytorch>={torch.__version__.split('+')[0]}\n  - numpy\n  - scipy>={scipy.__version__}\n")


def _documentation(plan: _Plan, model, volume: Volume) -> str:
    cfg, factor = model.config, plan.factor
    sc = cfg.self_check or {}
    interpolation = plan.method.startswith("ZAugNet")
    lines = [f"# {plan.method} (exported by zaug {__version__})", "", plan.summary, "",
             f"Input: a `(batch, z, y, x)` float32 stack in its own intensity units, uniformly sampled in z. "
             f"Output: float32, {_sampling(factor)}, `{factor} (z - 1) + 1` planes"
             + ("; the acquired planes are passed through unchanged." if interpolation else "."), "",
             "## Training", "",
             f"Trained with `zaug train --method {cfg.method} --preset {cfg.preset}` on the user's own stack "
             f"({cfg.summary.get('steps')} steps), self-supervised; training voxel size (z, y, x) "
             f"{tuple(cfg.train_voxel_size)} {cfg.train_unit}.", ""]
    lines += ["## Validation", ""]
    if sc.get("gain_db") is not None:
        worse = " (worse than interpolation: check it on your data first)" if sc["gain_db"] < 0 else ""
        against = "cubic interpolation" if plan.method == "RESIN" else "the better of linear and cubic interpolation"
        lines += [f"Self-check on held-out data of the training stack: {sc['gain_db']:+.2f} dB PSNR over "
                  f"{against}{worse}.", ""]
    else:
        lines += ["No self-check was recorded for this model.", ""]
    lines += ["The test tensors (`test_input.npy`, `test_output.npy`) are a crop of the stack it was exported "
              "with and this package's output on it, compared with zaug's own prediction when it was exported.", ""]
    if plan.kwargs.get("mode") == "transfer":
        lines += ["## Mode", "", f"{plan.fixed_lines[0]}: nothing is measured per stack, so the package does what "
                  "`zaug predict --z-mode transfer` does on any stack; it needs at least 3 planes.", ""]
    else:
        lines += ["## Fixed on the stack it was exported with", "",
                  f"zaug measures these on every stack; this package fixed them on one (voxel size "
                  f"{tuple(volume.voxel_size)} {volume.unit}):", ""]
        lines += [f"- {line}" for line in plan.fixed_lines]
    lines += ["", "Use it on stacks of the same kind and sampling; for others, train and predict with zaug.", "",
              "## Limits", "",
              "- Trained on one stack: measure it on yours with `zaug evaluate` before trusting it.",
              "- The output is float32; cast it back to your stack's data type (zaug predict does).",
              "- Run it on whole stacks: bioimageio.core's tiled (blockwise) prediction fails on the output's z "
              "axis, and tiles would need planes and pixels of context; for stacks larger than memory use "
              "`zaug predict --tile`.", ""]
    return "\n".join(lines)


def _cover(path: Path, stack: np.ndarray, out: np.ndarray, factor: int) -> None:
    """Input and output xz sections side by side (the z axis stretched to the output's sampling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = stack.shape[1] // 2
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    vmin, vmax = np.percentile(stack, [1, 99.5])
    for ax, planes, title in ((axes[0], np.repeat(stack, factor, axis=0)[: out.shape[0]], "input (xz)"),
                              (axes[1], out, f"x{factor} in z (xz)")):
        ax.imshow(planes[:, row], cmap="gray", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
