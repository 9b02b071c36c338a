"""The ``zaug`` command: a thin layer over the Python API.

Every user mistake ends in one sentence on stderr and a non-zero exit code;
set ``ZAUG_DEBUG=1`` to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import InputError, OutputError, ZaugError, ZaugWarning

EXAMPLES = {
    "info": "examples:\n  zaug info stack.tif\n  zaug info stack.ome.zarr --json\n  zaug info model/",
    "predict": ("examples:\n  zaug predict cubic stack.tif -o stack_x2.tif --factor 2\n"
                "  zaug predict linear stack.tif -o iso.ome.zarr --z-spacing 0.26\n"
                "  zaug predict runs/my_model stack.tif -o stack_x4.tif --factor 4\n"
                "  zaug predict runs/my_model big.ome.zarr -o big_x2.ome.zarr --factor 2 --tile 512\n"
                "  zaug predict runs/my_model big.ome.zarr -o big_x2.ome.zarr --factor 2 --scheduler tcp://head:8786"),
    "evaluate": ("examples:\n  zaug evaluate stack.tif --factor 2 --methods linear,cubic\n"
                 "  zaug evaluate stack.tif --factor 4 --methods linear,cubic,zaugnet --minutes 10 --report report/\n"
                 "  zaug evaluate nuclei.tif --factor 4 --methods nearest,linear,cubic --downstream objects\n"
                 "  zaug evaluate stack.tif --factor 2 --methods linear,cubic --fid-weights pt_inception.safetensors\n"
                 "  zaug evaluate stack.tif --restore --degradation avgpool --factor 4 --methods linear,cubic,niiv\n"
                 "  zaug evaluate iso.tif --restore --axial-angle 45 --factor 4 --methods input,richardson-lucy,resin"),
    "train": ("examples:\n  zaug train stack.tif --method zaugnet --preset fast --minutes 10 -o runs/model\n"
              "  zaug train stack.tif --method zaugnet --init prior --minutes 4 -o runs/model_prior\n"
              "  zaug train a.tif b.tif --method zaugnet+ --steps 5000 -o runs/model_plus\n"
              "  zaug train aniso.tif --method niiv --degradation gaussian --minutes 10 -o runs/niiv"),
    "measure": ("examples:\n  zaug measure stack_x4.tif --objects\n"
                "  zaug measure stack_x4.tif --objects --csv nuclei.csv\n"
                "  zaug measure vessels_x4.tif --filaments --threshold 800 --json"),
    "demo": "examples:\n  zaug demo\n  zaug demo --output demo_output --minutes 4",
    "export": ("examples:\n  zaug export runs/my_model stack.tif -o my_model.zip\n"
               "  zaug export runs/model_plus stack.tif -o plus_x3.zip --factor 3 --author 'A. Researcher'\n"
               "  zaug export runs/selfnet aniso.tif -o selfnet.zip\n  zaug export runs/resin aniso.tif -o resin.zip"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zaug", description=(
        "Self-supervised axial (z) resolution enhancement for 3D microscopy stacks."))
    parser.add_argument("--version", action="version", version=f"zaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("info", "Show shape, dtype, axes and voxel size of a stack, or what a model folder holds.")
    p.add_argument("path")
    _input_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("predict", "Upsample a stack along z with a classical method or a trained model.")
    p.add_argument("method", help="nearest, linear, cubic, or a trained model folder")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="output .tif, .ome.tif, .zarr, .npy or .npz")
    _target_options(p, required=False)
    p.add_argument("--fuse", choices=["mean", "geometric", "xz", "yz"],
                   help="niiv and Self-Net models: how to fuse the xz and yz results (default mean)")
    p.add_argument("--report", metavar="DIR",
                   help="write isotropy ratios, spectra and xz sections of input and output to DIR")
    _input_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--device", help="learned models: auto, cpu or cuda (default auto)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="process the stack in lateral tiles of N x N pixels, so memory holds a few tiles, not the "
                        "stack (default: whole planes; for an OME-Zarr input, which is then read lazily, 448 for "
                        "ZAugNet and 512 otherwise; write to .zarr to stream the output too)")
    p.add_argument("--tile-planes", type=int, metavar="P",
                   help="tiles: P input planes along z each, with context planes each side (default: every plane, "
                        "unless a tile would then take more than about 256 MiB)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tiles on the dask.distributed scheduler at ADDRESS (e.g. tcp://host:8786; "
                        "needs pip install 'zaug[cluster]' and input and output on a file system the workers see)")
    _calibrate_option(p)
    _tta_option(p)
    p.add_argument("--z-mode", choices=["auto", "direct", "transfer"],
                   help="ZAugNet: 'direct' interpolates between neighbouring planes with the model; 'transfer' "
                        "uses it only at its training gap and carries its estimates to the new planes; 'auto' "
                        "picks one from the model's self-check (default direct, see the README; "
                        "'zaug evaluate' scores both)")
    p.add_argument("--match-noise", action="store_true",
                   help="add noise to the new planes, as much as the acquired planes beside them carry, so that "
                        "the two kinds of plane look and threshold alike (costs PSNR; in-memory stacks only)")

    p = add("evaluate", "Drop-slice evaluation (remove planes, reconstruct, score) or, with --restore, "
                        "restoration of simulated anisotropy.")
    p.add_argument("input")
    _pick_options(p)
    p.add_argument("--factor", type=_number, required=True,
                   help="keep every K-th plane (drop-slice) or the anisotropy to simulate (--restore)")
    p.add_argument("--restore", action="store_true", help="restoration mode: simulate anisotropy along z")
    p.add_argument("--methods", default="linear,cubic", help="comma-separated (default linear,cubic)")
    p.add_argument("--json", action="store_true", help="print JSON results")
    p.add_argument("--report", metavar="DIR", help="write a Markdown report with figures to DIR")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier report in DIR")
    p.add_argument("--downstream", choices=["objects", "filaments"],
                   help="also segment the truth and every result with one pipeline and compare objects (volumes, "
                        "surface roughness) or filaments (lengths), as the ZAugNet paper does")
    p.add_argument("--fid-weights", metavar="FILE",
                   help="Inception-v3 weights (.safetensors) for the paper's FID and the unbiased KID; default "
                        "$ZAUG_FID_WEIGHTS; zaug ships none and downloads none (see the README)")
    p.add_argument("--simulate-sigma", type=_number, metavar="S",
                   help="--restore, gaussian: sigma in planes of the simulated blur (default factor/2); the "
                        "methods are not told it (their model of the blur is --sigma)")
    _calibrate_option(p)
    _tta_option(p)
    _input_options(p)
    _training_options(p)

    p = add("train", "Train a model on your own stacks (self-supervised).")
    p.add_argument("stacks", nargs="+")
    p.add_argument("--method", required=True, help="zaugnet, zaugnet+, niiv, selfnet or resin")
    p.add_argument("--factor", type=_number, help="niiv, selfnet, resin: anisotropy (default: from the voxel size)")
    p.add_argument("-o", "--output", required=True, help="model folder")
    p.add_argument("--overwrite", action="store_true", help="start again in an existing model folder")
    p.add_argument("--checkpoint-every", type=_number, default=60.0, metavar="SECONDS",
                   help="save the state a killed run resumes from every SECONDS (default 60; a run stopped "
                        "with Ctrl-C or SIGTERM saves on its way out whatever this is)")
    _input_options(p)
    _training_options(p)

    p = add("measure", "Segment a stack and measure its objects (volumes, surface roughness) or filaments "
                       "(lengths), in physical units.")
    p.add_argument("input")
    _pick_options(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--objects", dest="kind", action="store_const", const="objects",
                      help="blob-like objects such as nuclei or cells")
    kind.add_argument("--filaments", dest="kind", action="store_const", const="filaments",
                      help="tubes and fibres such as microtubules, vessels or mitochondria")
    p.add_argument("--threshold", type=_number, help="foreground threshold in the stack's intensities "
                                                     "(default Otsu's, after smoothing by one pixel)")
    p.add_argument("--csv", metavar="FILE", help="write one row per object or filament to FILE")
    p.add_argument("--labels", metavar="FILE", help="write the object labels (or the filament skeleton) as a stack "
                                                   "with the input's voxel size (.tif, .ome.tif, .zarr, .npy)")
    p.add_argument("--json", action="store_true", help="print JSON (summary and rows)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --csv and --labels files")
    _input_options(p)

    p = add("export", "Write a trained ZAugNet, ZAugNet+, Self-Net, niiv or RESIN model as a bioimage.io model package (.zip), "
                      "tested with bioimageio.core (needs pip install 'zaug[bioimageio]').")
    p.add_argument("model", help="model folder from zaug train (zaugnet, zaugnet+, selfnet, niiv or resin)")
    p.add_argument("stack", help="a stack of the kind the package is for: what zaug measures per stack (ZAugNet's "
                                 "calibration, the restoration models' intensity range) is measured on it and fixed, a crop of "
                                 "it is the package's test input, its voxel size the axes' scale")
    p.add_argument("-o", "--output", required=True, help="package to write (.zip)")
    p.add_argument("--factor", type=int,
                   help="times finer z sampling (ZAugNet: 2, 4, 8, default 2; ZAugNet+: any integer, default 2; "
                        "Self-Net, niiv, RESIN: any integer from 1, default the trained anisotropy rounded)")
    p.add_argument("--name", help="model name in the description (default: from the model folder)")
    p.add_argument("--author", action="append", help="author's name (repeat for several)")
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence of the package (default CC-BY-4.0)")
    p.add_argument("--no-test", action="store_true", help="skip bioimageio.core's test run of the package")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package")
    _calibrate_option(p)
    p.add_argument("--z-mode", choices=["auto", "direct", "transfer"],
                   help="ZAugNet: the packaged mode, as zaug predict --z-mode (default: the model's; 'transfer' "
                        "fixes no calibration and takes any integer --factor)")
    _input_options(p)

    p = add("demo", "Run zaug on the sample stack shipped with the package and write a report.")
    p.add_argument("--output", default="demo_output", help="folder for the results (default demo_output)")
    p.add_argument("--minutes", type=_number, default=4.0, help="training time of the demo model")
    p.add_argument("--no-train", action="store_true", help="only classical methods")
    p.add_argument("--device", default="auto")
    return parser


def _calibrate_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-calibrate", action="store_true",
                   help="ZAugNet: keep the model's whole departure from linear interpolation (see the README)")


def _tta_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-tta", action="store_true",
                   help="ZAugNet: one pass of the network per plane instead of the mean over 8 flips and rotations "
                        "(about 6 times faster on a CPU; 0.07 dB lower on cells3d x2, see the README)")


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--axes", help="axes of the stored array, e.g. ZYX or ZCYX (overrides the file)")
    p.add_argument("--series", type=int, metavar="N",
                   help="TIFF with several image series, CZI with several scenes, BigDataViewer with several view "
                        "setups: read series N (0 is the first; default the first stack)")
    p.add_argument("--voxel-size", nargs=3, type=_number, metavar=("Z", "Y", "X"),
                   help="voxel size in --unit (overrides the file)")
    p.add_argument("--unit", help="unit of --voxel-size (default um, whatever the file's unit); without "
                                  "--voxel-size, the file's voxel size is converted to this unit (e.g. nm)")
    p.add_argument("--crop", type=_crop, metavar="Z0:Z1,Y0:Y1,X0:X1",
                   help="only the voxels in this box (plane, row and column indices from 0, end excluded, negative "
                        "from the end; ':' for all; e.g. :,1000:1512,2000:2512, or -10:,:,: for the last 10 "
                        "planes): train or evaluate on a region of a large stack (read from disk, OME-Zarr, .npy "
                        "and TIFF, without reading the rest); the output keeps the region's physical position")


def _pick_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", type=int, metavar="C", help="of a multi-channel stack, channel C (0 is the first)")
    p.add_argument("--time", type=int, metavar="T", help="of a time series, time point T (0 is the first)")


def _picked(args, vol):
    """The channel and time point asked for with --channel / --time (all of the stack without them)."""
    return vol.select(channel=args.channel, time=args.time)


def _target_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--factor", type=_number,
                       help="N planes -> (N-1)*K+1 (ZAugNet doubles the planes per pass: planes of other factors "
                            "are linearly interpolated between those of the finest pass; ZAugNet+ and --z-mode "
                            "transfer predict any position)")
    group.add_argument("--z-spacing", type=_number, help="target z spacing in the volume's unit (as --factor for "
                                                       "ZAugNet)")


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="learned methods: fast (CPU, the default) or paper")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=_number,
                        help="learned methods: training time budget (how far it gets depends on the machine's speed "
                        "at the time, so two runs differ; --steps repeats)")
    budget.add_argument("--steps", type=int, help="learned methods: number of training steps (repeatable: the same "
                        "seed, machine and thread count give the same weights)")
    p.add_argument("--seed", type=int, help="learned methods: random seed (default 0)")
    p.add_argument("--device", help="learned methods (and FID): auto, cpu or cuda (default auto)")
    p.add_argument("--no-adversarial", action="store_true",
                   help="zaugnet, zaugnet+: generator only (smoother, better for segmentation)")
    p.add_argument("--degradation", choices=["avgpool", "gaussian"], default=None,
                   help="niiv, selfnet, resin: how lateral planes are degraded to look axial (default: the "
                        "method's; evaluate --restore: also the simulated anisotropy, default avgpool)")
    p.add_argument("--sigma", type=_sigma, default=None, metavar="S|auto",
                   help="niiv, selfnet, resin, gaussian degradation: axial blur sigma of the model in lateral pixels, "
                        "or 'auto' to measure it from the stack (thin structures' widths, else power spectra; "
                        "default factor/2; evaluate --restore simulates with --simulate-sigma)")
    p.add_argument("--renoise", action=argparse.BooleanOptionalAction, default=None,
                   help="niiv, selfnet, gaussian degradation: add back to the degraded lateral planes the noise the "
                        "blur averaged away, as real axial planes still carry it (default: with --sigma auto)")
    p.add_argument("--init", metavar="MODEL|prior",
                   help="zaugnet, zaugnet+: start from the generator of a model folder of the same method and "
                        "preset, or 'prior' for the one shipped with zaug (fast zaugnet, pretrained on other "
                        "public stacks; not on cells3d)")
    p.add_argument("--axial-angle", type=_number,
                   help="resin: angle in degrees of the axial (blurred) direction from z in the y-z plane "
                        "(default 0; evaluate --restore: simulates an oblique blur)")


def _number(text: str) -> float:
    """A finite number: nan and inf reached the methods' arithmetic as Python errors."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _sigma(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', got {text!r}") from None


# -- which options a method uses ------------------------------------------------------------------------

CLASSICAL = ("nearest", "linear", "cubic")
ZAUGNETS = ("zaugnet", "zaugnet+")
RESTORERS = ("niiv", "selfnet", "resin")
LEARNED = ZAUGNETS + RESTORERS
#: option (argparse dest) -> (flag, the methods that use it, what it is, for the message)
METHOD_OPTIONS = {
    "fuse": ("--fuse", ("niiv", "selfnet"), "it fuses the xz and yz planes of niiv and Self-Net"),
    "z_mode": ("--z-mode", ZAUGNETS, "it is a ZAugNet option"),
    "no_calibrate": ("--no-calibrate", ZAUGNETS, "it is a ZAugNet option"),
    "no_tta": ("--no-tta", ZAUGNETS, "it is a ZAugNet option"),
    "init": ("--init", ZAUGNETS, "it is a ZAugNet option"),
    "no_adversarial": ("--no-adversarial", ZAUGNETS, "it is a ZAugNet option"),
    "device": ("--device", LEARNED, "it places learned models"),
    "preset": ("--preset", LEARNED, "it sets the training of learned methods"),
    "minutes": ("--minutes", LEARNED, "it sets the training of learned methods"),
    "steps": ("--steps", LEARNED, "it sets the training of learned methods"),
    "seed": ("--seed", LEARNED, "it sets the training of learned methods"),
    "factor": ("--factor", RESTORERS, "it is the anisotropy that niiv, selfnet and resin restore"),
    "degradation": ("--degradation", RESTORERS, "it is the blur model of niiv, selfnet and resin"),
    "sigma": ("--sigma", RESTORERS, "it is the blur model of niiv, selfnet and resin"),
    "renoise": ("--renoise", ("niiv", "selfnet"), "it adds noise to the degraded lateral planes of niiv and selfnet"),
    "axial_angle": ("--axial-angle", ("resin",), "it is a RESIN option"),
}
#: the options of METHOD_OPTIONS each command has and checks
CHECKED_OPTIONS = {
    "predict": ("fuse", "z_mode", "no_calibrate", "no_tta", "device"),
    "train": ("factor", "no_adversarial", "degradation", "sigma", "renoise", "init", "axial_angle"),
    "evaluate": ("preset", "minutes", "steps", "seed", "device", "no_adversarial", "no_calibrate", "no_tta", "init",
                 "degradation", "sigma", "renoise", "axial_angle"),
}
#: flags whose default is False (given when True); every other checked option defaults to None
FLAGS = ("no_calibrate", "no_tta", "no_adversarial")


def given(args, dest: str) -> bool:
    """Whether the user gave option ``dest`` (defaults are None, or False for flags; ``--no-renoise`` counts)."""
    value = getattr(args, dest, None)
    return value is not (False if dest in FLAGS else None)


def check_method_options(args, command: str, methods, protocol: dict | None = None) -> None:
    """Refuse, in one sentence, an option that none of ``methods`` uses (rather than ignore it).

    ``protocol`` maps options to what the command itself does with them
    (``None``: it uses the option whatever the methods; a text: no method
    does, and why), e.g. ``evaluate --restore`` simulates with --degradation.
    """
    protocol = protocol or {}
    names = list(dict.fromkeys(methods))
    for dest in CHECKED_OPTIONS[command]:
        if not given(args, dest):
            continue
        flag, users, what = METHOD_OPTIONS[dest]
        if dest in protocol:
            if protocol[dest] is None:
                continue
            users, what = (), protocol[dest]
        if not any(name in users for name in names):
            raise InputError(f"{flag} does not apply to {_names(names)} ({what}); leave it out.")


def _names(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _method_kind(spec: str) -> str | None:
    """What `zaug predict SPEC` runs (cubic, zaugnet, niiv, ...), read without loading a model; None: unknown."""
    if spec in CLASSICAL:
        return spec
    from .checkpoint import read_json

    try:
        method = read_json(Path(spec) / "config.json").get("method")
    except (OSError, ValueError, AttributeError):
        return None
    return method if method in LEARNED else None


# -- outputs ---------------------------------------------------------------------------------------------

def _check_parent(path) -> None:
    from .io._atomic import check_parent_folder

    check_parent_folder(path)


def _check_output(path, overwrite: bool, inputs=()) -> Path:
    from .io import check_output_path

    return check_output_path(path, overwrite=overwrite, inputs=inputs)


def _check_distinct(**paths) -> None:
    """Refuse two outputs of one run at the same path (one would replace the other)."""
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        key = Path(path).absolute().resolve()
        if key in seen:
            raise OutputError(f"{seen[key]} and {flag} both name {path}; give them different paths.")
        seen[key] = flag


# -- input -----------------------------------------------------------------------------------------------

def _read(args, path, lazy: bool = False):
    """The input with --axes and --voxel-size / --unit applied, and cut to --crop.

    --voxel-size is in --unit (default um), whatever the file's unit; --unit
    alone converts the file's voxel size (and z positions, origin) to that unit.
    """
    from .io import read_volume

    unit = args.unit if args.unit is not None or args.voxel_size is None else "um"
    crop = getattr(args, "crop", None)
    vol = read_volume(path, axes=args.axes, voxel_size=args.voxel_size, unit=unit, lazy=lazy or crop is not None,
                      series=getattr(args, "series", None))
    from .volume import MIN_PLANES

    vol.metadata["read_with"] = _reading_flags(args)  # how the stack was read: a resume needs the same
    if crop is None:
        return vol
    vol = vol.crop(*crop)
    if vol.nz < MIN_PLANES:
        raise InputError(f"the --crop box holds {vol.nz} plane along z; zaug needs at least {MIN_PLANES}.")
    if lazy:
        return vol
    import numpy as np

    data = np.array(vol.data)  # off the disk (a memory map or dask array), in memory
    return vol.replace(data=data)


def _reading_flags(args) -> str:
    """The options a stack was read with (--axes, --series, --voxel-size, --unit, --crop), as typed again."""
    import shlex

    flags = []
    for name in ("axes", "series", "voxel_size", "unit", "crop"):
        value = getattr(args, name, None)
        if value is None:
            continue
        if name == "crop":
            values = [",".join(f"{c.start or ''}:{'' if c.stop is None else c.stop}" for c in value)]
        else:
            values = [repr(v) for v in value] if name == "voxel_size" else [str(value)]
        flags += [f"--{name.replace('_', '-')}", *map(shlex.quote, values)]
    return " ".join(flags)


def _crop(text: str) -> tuple[slice, slice, slice]:
    """``'Z0:Z1,Y0:Y1,X0:X1'`` (``':'`` or an omitted end for all) as three slices."""
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        cuts = []
        for part in parts:
            start, stop = part.split(":")
            cuts.append(slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None))
        return tuple(cuts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a box of three index ranges Z0:Z1,Y0:Y1,X0:X1 (e.g. "
                                         ":,1000:1512,2000:2512)") from None


def _crop_joined(argv: list[str]) -> list[str]:
    """``--crop -5:,:,:`` as ``--crop=-5:,:,:``: argparse takes a value that starts with '-' for an option."""
    joined, args = [], iter(argv)
    for arg in args:
        if arg == "--":  # what follows is not an option
            joined += [arg, *args]
            break
        if len(arg) >= 4 and "--crop".startswith(arg):  # argparse takes "--cro" for "--crop" too
            value = next(args, None)
            joined.append(arg if value is None else f"--crop={value}" if value.startswith("-") else arg)
            if value is not None and not value.startswith("-"):
                joined.append(value)
            continue
        joined.append(arg)
    return joined


def _training(args) -> dict:
    return {"preset": args.preset or "fast", "minutes": args.minutes, "steps": args.steps,
            "seed": 0 if args.seed is None else args.seed, "device": args.device or "auto",
            "adversarial": not args.no_adversarial, "degradation": args.degradation,
            "sigma": args.sigma, "renoise": args.renoise, "axial_angle": args.axial_angle or 0.0,
            "init": args.init,
            "calibrate": not getattr(args, "no_calibrate", False), "tta": not getattr(args, "no_tta", False)}


def cmd_info(args) -> int:
    from .methods import describe_model, describe_package, format_model_info, format_package_info, is_model_folder

    if is_model_folder(args.path):
        info = describe_model(args.path)
        print(json.dumps(info, indent=2) if args.json else format_model_info(info))
        return 0
    package = describe_package(args.path)
    if package is not None:
        print(json.dumps(package, indent=2) if args.json else format_package_info(package))
        return 0
    vol = _read(args, args.path, lazy=True)  # what the file says, without reading every voxel of a large stack
    info = dict(vol.describe(), path=str(args.path))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        vz, vy, vx = vol.voxel_size
        print(f"{args.path}: {' x '.join(map(str, vol.data.shape))} ({vol.axes}), {vol.dtype}, "
              f"voxel size z {vz:g}, y {vy:g}, x {vx:g} {vol.unit} (anisotropy {vol.anisotropy:.2f}"
              f"{', non-uniform z' if not vol.is_uniform else ''})")
        if any(vol.origin):
            print("origin (first voxel) z {:g}, y {:g}, x {:g} {}".format(*vol.origin, vol.unit))
        shown = [" ".join(filter(None, (f"channel {c}:" if len(info["display"]) > 1 else None, ch["color"],
                                        "{:g}-{:g}".format(*ch["window"]) if ch["window"] else None)))
                 for c, ch in enumerate(info.get("display", [])) if ch["color"] or ch["window"]]
        if shown:
            print(f"display: {'; '.join(shown)}")
        from .provenance import summary

        if made := summary(vol):
            print(made)
    return 0


def cmd_predict(args) -> int:
    from .io import check_storable, format_of, stored_dtype, write_volume
    from .methods import below_interpolation, resolve

    # everything that can be refused is refused before any work or output
    _check_output(args.output, args.overwrite, inputs=[args.input])
    if args.report:
        from .report import check_report_folder, report_files

        _check_distinct(**{"-o": args.output, "--report": args.report})
        check_report_folder(args.report, report_files("prediction"), args.overwrite)
    kind = _method_kind(args.method)
    if kind is not None:
        check_method_options(args, "predict", [kind])
        if args.z_mode == "transfer" and args.no_calibrate:
            raise InputError("--no-calibrate does not apply to --z-mode transfer (it measures no calibration); "
                             "leave it out.")
        if kind not in RESTORERS:
            _interpolation_factor(args)
    method = resolve(args.method, device=args.device or "auto")
    if below := below_interpolation(getattr(getattr(method, "config", None), "self_check", None)):
        warnings.warn(ZaugWarning(below))
    from .restore import is_restorer

    restoring = is_restorer(method)
    if not restoring:
        factor = _interpolation_factor(args)
    elif args.factor is not None and args.factor < 1:
        raise ZaugError(f"--factor must be 1 or more, got {args.factor:g}.")
    blockwise = (args.tile is not None or args.tile_planes is not None or bool(args.scheduler)
                 or format_of(args.input, reading=True) == "ome-zarr")
    if args.match_noise and blockwise:
        raise InputError("--match-noise needs the stack in memory: leave out --tile, --tile-planes and --scheduler "
                         "(an OME-Zarr input is always read in tiles; convert it to TIFF first).")
    vol = _read(args, args.input, lazy=blockwise)
    if not blockwise:  # a prediction keeps the input's range: refused now, not after the work
        check_storable(vol.data, args.output)
    if restoring:
        vol, spacing = _restoration_target(args, vol, method)
    classical = kind in CLASSICAL
    from .progress import reporting

    # a bar for the learned methods (classical ones take seconds); tiles: dask's own bar when they run here
    shown = not (classical or blockwise)
    device = getattr(getattr(method, "device", None), "type", None)  # what --device auto chose
    desc = ("restoring" if restoring else "predicting") + (f" ({device})" if device else "")
    with reporting(desc=desc) if shown else contextlib.nullcontext():
        if restoring:
            out = _restore(args, vol, method, spacing, blockwise)
        else:
            out = _interpolate(args, vol, method, factor, blockwise)
    if args.match_noise:
        from .predict import match_noise

        out = match_noise(out, vol)
    with _scheduler(args.scheduler, threads=classical) if blockwise else contextlib.nullcontext():
        with _tile_bar() if blockwise and not (classical or args.scheduler) else contextlib.nullcontext():
            write_volume(out, args.output, overwrite=args.overwrite, inputs=[args.input])
        scales = getattr(method, "calibration_scale", {})
        if getattr(method, "calibration", None):
            from .methods.zaugnet import describe_weights

            for spacing, weights in method.calibration.items():
                capped = (f" (model weights already scaled by {scales[spacing]:.2f} so that the new planes vary no "
                          "more than the acquired ones)" if scales.get(spacing, 1.0) < 1.0 else "")
                source = ("the model alone: no lateral triplet of the input is that finely spaced"
                          if spacing in method.calibration_unfitted else "as fitted on lateral triplets of the input")
                print(f"calibration: between planes {spacing:g} {vol.unit} apart, {describe_weights(weights)}, "
                      f"{source}{capped}")
        vz = out.voxel_size[0]
        print(f"wrote {args.output}: {out.nz} planes ({vol.nz} in), z voxel size {vz:g} {out.unit}, "
              f"{stored_dtype(out.dtype, args.output)}"
              + (f", in {out.data.npartitions} tile{'s' * (out.data.npartitions != 1)}" if blockwise else "")
              + (f" ({len(out.data.chunks[-3])} along z)" if blockwise and len(out.data.chunks[-3]) > 1 else "")
              + (f", {levels} resolution levels" if (levels := _levels_written(out, args.output)) > 1 else ""))
        if (vol.metadata.get("ngff") or {}).get("labels"):
            print(f"note: the input's labels are not carried over to {args.output} (they belong to its planes).")
        if args.report:
            from .report import write_prediction_report

            if blockwise:  # a report on the central tiles and planes: the whole stack may not fit in memory
                from .blockwise import central_crop, central_planes

                z_range = central_planes(vol)
                vol, out = central_crop(vol, z_range=z_range), central_crop(out, z_range=z_range)
            print(f"report: {write_prediction_report(vol, out, args.report, overwrite=args.overwrite, model=method)}")
    return 0


def _levels_written(volume, path) -> int:
    """How many resolution levels ``write_volume`` gave ``path`` (an OME-Zarr's pyramid; 1 for other files)."""
    from .io import format_of
    from .io.omezarr import pyramid_levels

    return pyramid_levels(volume.spatial_shape[1:]) if format_of(path) == "ome-zarr" else 1


def _interpolation_factor(args) -> int | None:
    """The whole-number --factor of a z-interpolator (or None with --z-spacing), refused in one sentence."""
    if args.factor is None and args.z_spacing is None:
        raise ZaugError("give --factor K or --z-spacing S.")
    if args.factor is None:
        return None
    if float(args.factor) != int(args.factor):
        raise ZaugError(f"--factor must be a whole number, got {args.factor:g}.")
    return int(args.factor)


def _restoration_target(args, vol, method):
    """The stack as the restorer reads it (a file without voxel size: the training anisotropy) and the output z
    spacing asked for (None: the method's default), checked before any work."""
    from .predict import output_positions
    from .restore import with_training_anisotropy

    vol = with_training_anisotropy(vol, method)
    spacing = vol.voxel_size[0] / args.factor if args.factor is not None else args.z_spacing
    if spacing is not None:
        output_positions(vol.z_coords(), z_spacing=spacing)  # a spacing beyond the stack's extent: refused now
    return vol, spacing


def _restore(args, vol, method, spacing, blockwise: bool):
    from .restore import RestorationTiles, check_anisotropy, default_z_spacing, restore_with, warn_if_coarser

    fuse = args.fuse or "mean"
    if blockwise:
        from .blockwise import upsample_z_blockwise

        check_anisotropy(vol, method)
        warn_if_coarser(vol, spacing)
        if spacing is None:
            spacing = getattr(method, "default_z_spacing", default_z_spacing)(vol)
        return upsample_z_blockwise(vol, RestorationTiles(method, fuse), z_spacing=spacing,
                                    tile=args.tile, tile_planes=args.tile_planes)
    return restore_with(vol, method, z_spacing=spacing, fuse=fuse)


def _interpolate(args, vol, method, factor: int | None, blockwise: bool):
    from .predict import upsample_z

    if hasattr(method, "calibrate"):
        method.calibrate = not args.no_calibrate
    if hasattr(method, "tta"):
        method.tta = not args.no_tta
    if args.z_mode and not hasattr(method, "mode"):
        raise ZaugError("--z-mode is a ZAugNet option; this method has no modes.")
    if args.z_mode:
        method.mode = args.z_mode
    if hasattr(method, "resolved_mode"):
        mode = method.resolved_mode()
        reason = method.mode_reason() if args.z_mode or method.mode == "auto" else "the default"
        print(f"mode: {mode} ({reason})")
    if not blockwise:
        return upsample_z(vol, method, factor=factor, z_spacing=args.z_spacing)
    from .blockwise import upsample_z_blockwise

    return upsample_z_blockwise(vol, method, factor=factor, z_spacing=args.z_spacing, tile=args.tile,
                                tile_planes=args.tile_planes)


@contextlib.contextmanager
def _tile_bar():
    """A bar over the tiles computed on this machine, on stderr (a cluster has its dashboard)."""
    from .progress import dask_tasks_bar

    with dask_tasks_bar():
        yield


@contextlib.contextmanager
def _scheduler(address: str | None, threads: bool):
    """Where the tiles run: a dask.distributed cluster, else this machine.

    Here, a learned model runs one tile at a time (torch uses every core for
    it); classical methods run a tile per core.
    """
    import dask

    if not address:
        with dask.config.set(scheduler="threads" if threads else "synchronous"):
            yield
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise ZaugError("--scheduler needs dask.distributed: pip install 'zaug[cluster]'.") from None
    # a Client that fails to start has already made itself dask's default scheduler: that is undone
    saved = {"scheduler": dask.config.get("scheduler", None)}
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        dask.config.set(saved)
        raise ZaugError(f"cannot reach the dask scheduler at {address} ({exc}).") from None
    except (ValueError, TypeError) as exc:  # distributed's parser of the address
        dask.config.set(saved)
        raise InputError(f"--scheduler {address} is not a dask scheduler address ({exc}); give one like "
                         "tcp://host:8786.") from None
    with client:
        print(f"running on the dask cluster at {address} ({len(client.scheduler_info()['workers'])} workers)")
        yield


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_drop_slice, format_table

    # every option is checked before any method runs
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise InputError("--methods names no method; give some, e.g. --methods linear,cubic.")
    protocol = "oblique" if args.restore and args.axial_angle else "restoration" if args.restore else "drop-slice"
    _check_evaluation_methods(methods, protocol)
    uses = {}  # what the protocol itself does with an option, whatever the methods
    if args.fid_weights or os.environ.get("ZAUG_FID_WEIGHTS"):
        uses["device"] = None  # the Inception network runs there
    if protocol == "restoration":
        uses["degradation"] = None  # the simulated anisotropy
    if protocol == "oblique":
        uses["axial_angle"] = None
        uses["sigma"] = "the oblique evaluation blurs with sigma factor/2 and tells resin so"
        uses["degradation"] = "the oblique evaluation blurs with a Gaussian along the axial direction"
    check_method_options(args, "evaluate", methods, uses)
    if args.simulate_sigma is not None and protocol != "restoration":
        raise ZaugError("--simulate-sigma needs --restore (without --axial-angle).")
    if args.downstream and protocol == "oblique":
        raise ZaugError("--downstream is not available with --axial-angle yet; leave one of them out.")
    if protocol == "drop-slice" and float(args.factor) != int(args.factor):
        raise ZaugError(f"--factor must be a whole number for drop-slice evaluation, got {args.factor:g}.")
    degradation = args.degradation or "avgpool"
    if protocol == "restoration":  # the methods' blur model, as they will check it when their turn comes
        from .data.lateral import degradation_model, renoise_option

        _, sigma = degradation_model({"degradation": degradation, "sigma": args.sigma}, degradation)
        if any(m in ("niiv", "selfnet") for m in methods):
            renoise_option({"renoise": args.renoise}, degradation, sigma)
    if args.report:
        from .report import check_report_folder, report_files

        check_report_folder(args.report, report_files(protocol, methods), args.overwrite)
    vol = _picked(args, _read(args, args.input))
    log = (lambda msg: print(msg, file=sys.stderr)) if not args.json else None
    if protocol == "oblique":
        from .evaluate_oblique import evaluate_oblique, format_oblique_table
        from .report import write_oblique_report

        result = evaluate_oblique(vol, args.axial_angle, args.factor, methods, train_options=_training(args),
                                  keep_predictions=bool(args.report), log=log, fid_weights=args.fid_weights)
        writer, table = write_oblique_report, format_oblique_table
    elif protocol == "restoration":
        from .evaluate_restore import evaluate_restoration, format_restoration_table
        from .report import write_restoration_report

        result = evaluate_restoration(vol, args.factor, degradation, methods,
                                      train_options=_training(args), keep_predictions=bool(args.report), log=log,
                                      simulate_sigma=args.simulate_sigma, downstream=args.downstream,
                                      fid_weights=args.fid_weights)
        writer, table = write_restoration_report, format_restoration_table
    else:
        from .report import write_drop_slice_report

        result = evaluate_drop_slice(vol, int(args.factor), methods, train_options=_training(args),
                                     keep_predictions=bool(args.report), log=log, downstream=args.downstream,
                                     fid_weights=args.fid_weights)
        writer, table = write_drop_slice_report, format_table
    if args.report:
        report = writer(result, args.report, overwrite=args.overwrite)
        if not args.json:
            print(f"report: {report}")
    from .report import json_text

    plain = {k: v for k, v in result.items() if k != "arrays"}
    print(json_text(plain) if args.json else table(result))
    return 0


def _check_evaluation_methods(methods: list[str], protocol: str) -> None:
    """Refuse, before any method runs, a method the evaluation protocol cannot score."""
    for name in methods:
        if protocol == "oblique":
            if name not in ("input", "richardson-lucy", "resin"):
                raise InputError(f"method {name!r} cannot restore an oblique blur; use resin, input or "
                                 "richardson-lucy.")
        elif protocol == "restoration":
            if name in ZAUGNETS:
                raise InputError(f"{name} interpolates missing planes and does not restore a blur: evaluate it "
                                 "without --restore (drop-slice).")
            if name not in CLASSICAL + RESTORERS:
                raise InputError(f"unknown method {name!r} for --restore; use {_names(CLASSICAL + RESTORERS)}.")
        else:
            if name in RESTORERS:
                raise InputError(f"{name} restores isotropic volumes: evaluate it with --restore.")
            if name not in CLASSICAL + ZAUGNETS + ("linear+smooth",):
                raise InputError(f"unknown method {name!r} for evaluation; use "
                                 f"{_names(CLASSICAL + ZAUGNETS + ('linear+smooth',))}.")


def cmd_train(args) -> int:
    from .methods import below_interpolation, learned_module

    module = learned_module(args.method)
    check_method_options(args, "train", [args.method])
    if args.checkpoint_every <= 0:
        raise ZaugError(f"--checkpoint-every must be a positive number of seconds, got {args.checkpoint_every:g}.")
    _check_parent(args.output)
    vols = [_read(args, p) for p in args.stacks]
    options = dict(_training(args), method=args.method, overwrite=args.overwrite, progress=True,
                   factor=args.factor, checkpoint_every_s=args.checkpoint_every)
    model_dir = module.fit(vols, args.output, options)
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    if config.get("sigma_estimate", {}).get("sigma") is not None:
        from .data.lateral import format_sigma_estimate

        print(format_sigma_estimate(config["sigma_estimate"]))
    print(module.format_self_check(config["self_check"]))
    if below := below_interpolation(config["self_check"]):
        print(below)
    print(f"model saved in {model_dir}")
    return 0


def cmd_measure(args) -> int:
    import numpy as np

    from .downstream import format_measurement, measure_stack
    from .io import atomic_path, write_volume

    _check_distinct(**{"--csv": args.csv, "--labels": args.labels})
    csv_path = _check_output(args.csv, args.overwrite, inputs=[args.input]) if args.csv else None
    if args.labels:
        from .io import format_of

        format_of(args.labels)  # a name zaug can write, before the segmentation runs
        _check_output(args.labels, args.overwrite, inputs=[args.input])
    volume = _picked(args, _read(args, args.input))
    result, segmentation = measure_stack(volume, args.kind, args.threshold, return_segmentation=True)
    # the table is renamed into place after the labels are written: a failure of either leaves neither
    with atomic_path(csv_path, overwrite=args.overwrite) if csv_path else contextlib.nullcontext() as tmp:
        if csv_path is not None:
            import csv

            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                columns = list(result["items"][0]) if result["items"] else ["label"]
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(result["items"])
        if args.labels:
            labels = segmentation.astype(np.uint16 if segmentation.max() < 65536 else np.uint32)
            write_volume(volume.replace(data=labels), args.labels, overwrite=args.overwrite, inputs=[args.input])
    from .report import json_text

    print(json_text(result) if args.json else format_measurement(result))
    if csv_path is not None and not args.json:
        print(f"{len(result['items'])} rows written to {csv_path}")
    return 0


def cmd_export(args) -> int:
    from .export import export_bioimageio

    _check_parent(args.output)
    result = export_bioimageio(args.model, _read(args, args.stack), args.output, factor=args.factor,
                               name=args.name, authors=args.author, license=args.license,
                               calibrate=not args.no_calibrate, overwrite=args.overwrite, test=not args.no_test,
                               mode=args.z_mode)
    measured = "" if result["fixed"].get("mode") == "transfer" else f" (measured on {args.stack})"
    for line in result["fixed_lines"]:
        print(f"{line}: fixed in the package{measured}")
    test = "passed bioimageio.core's test" if result["test"] else "not tested (--no-test)"
    print(f"wrote {result['path']}: {test}; it differs from zaug predict by at most "
          f"{result['max_difference']:.3g} on its test input")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.output, minutes=args.minutes, train=not args.no_train, device=args.device)
    return 0


COMMANDS = {"info": cmd_info, "predict": cmd_predict, "evaluate": cmd_evaluate, "train": cmd_train,
            "measure": cmd_measure, "demo": cmd_demo, "export": cmd_export}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from tqdm import tqdm

    tqdm.write(f"zaug: warning: {message}", file=sys.stderr)  # on a line of its own, above a progress bar


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cluster's time limit, ``kill``, ``timeout``), raised where the program is.

    A KeyboardInterrupt, so that it unwinds as Ctrl-C does: partial outputs
    are removed by the atomic writers and training saves its checkpoint.
    """


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only), then restore the handler."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _memory_advice(args) -> str:
    if args.command != "predict":
        return "try a region of the stack (--crop Z0:Z1,Y0:Y1,X0:X1), or one --channel or --time."
    if getattr(args, "tile", None) is None:
        return "try --tile 512, which holds a few lateral tiles at a time rather than the whole stack."
    return "try a smaller --tile, or --tile-planes to cut the tiles along z too."


def _out_of_memory(exc: Exception) -> bool:
    """torch's out-of-memory errors: ``torch.OutOfMemoryError`` (a GPU's) and its CPU allocator's."""
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _tolerant_console() -> None:
    """Print what the console cannot encode as escapes (a path "pile \\u0142.tif" on a Windows console), and
    each line as it comes: a job's log (``> log 2>&1``) kept stdout's lines back until the end, after stderr's."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):  # a replaced or closed stream
            stream.reconfigure(errors="backslashreplace", line_buffering=True)


def main(argv: list[str] | None = None) -> int:
    _tolerant_console()
    args = build_parser().parse_args(_crop_joined(sys.argv[1:] if argv is None else list(argv)))
    warnings.showwarning = _show_warning
    try:
        with _sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except ZaugError as exc:
        print(f"zaug: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if args.command == "train" and Path(args.output, "checkpoint").is_dir():  # saved on the loop's way out
            print(f"zaug: interrupted; the run in {args.output} resumes from its last checkpoint when the same "
                  "'zaug train' command is run again.", file=sys.stderr)
        elif args.command == "train":
            print("zaug: interrupted before training began; there is nothing to resume, and the same 'zaug "
                  "train' command starts afresh.", file=sys.stderr)
        elif args.command == "info":  # it writes nothing
            print("zaug: interrupted.", file=sys.stderr)
        else:
            print("zaug: interrupted; no unfinished output was left under the final name.", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    except MemoryError:
        print(f"zaug: error: out of memory; {_memory_advice(args)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of the output stopped early (zaug info --json | head): not an error
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the user gets one sentence, developers the traceback
        if os.environ.get("ZAUG_DEBUG"):
            raise
        if _out_of_memory(exc):
            print("zaug: error: out of memory (" + str(exc).splitlines()[0][:120] + f"); {_memory_advice(args)} "
                  "Or --device cpu where a GPU's memory is the limit.", file=sys.stderr)
            return 1
        print(f"zaug: unexpected error ({type(exc).__name__}: {exc}); rerun with ZAUG_DEBUG=1 "
              "and report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
