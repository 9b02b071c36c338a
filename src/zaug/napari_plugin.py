"""napari plugin: read and write stacks with their voxel size, train, upsample z, measure objects.

Declared in ``napari.yaml`` (npe2). Every function here is a thin layer over the
Python API and takes plain layer data, so it works (and is tested) without
napari; napari itself is needed only to show the widgets (``pip install
'zaug[napari]'``). The widgets run :func:`train_layer`, :func:`upsample_z_layer`
and :func:`measure_layer` in a napari worker thread (``train_widget``,
``upsample_z_widget``, ``measure_widget``), so the viewer stays responsive while
a model trains or predicts; napari adds the new layer when they finish (training
and upsampling show their progress in napari's activity panel, training its
self-check as a notification), and their warnings and errors become notifications. Voxel sizes travel as the layers' ``scale``; zaug keeps
the unit, axes and z positions in ``metadata["zaug"]``.

Examples
--------
>>> import numpy as np
>>> data = np.linspace(0, 1, 5 * 8 * 8, dtype=np.float32).reshape(5, 8, 8)
>>> layer = LayerData(data, scale=(2.0, 0.5, 0.5), name="stack")
>>> out, attributes, kind = upsample_z_layer(layer, Method.cubic, factor=2)
>>> out.shape, attributes["scale"], kind
((9, 8, 8), (1.0, 0.5, 0.5), 'image')
"""

import enum
import functools
import inspect
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from .errors import InputError, ZaugError
from .provenance import file_record, from_file_record

READ_SUFFIXES = (".tif", ".tiff", ".lsm", ".czi", ".ims", ".zarr", ".npy", ".npz")
AXES_BY_NDIM = {3: "ZYX", 4: "TZYX", 5: "TCZYX"}


class Method(enum.Enum):
    """What fills the new planes: a classical interpolation or the trained model in ``model_folder``."""

    nearest = "nearest"
    linear = "linear"
    cubic = "cubic"
    trained_model = "trained model"


class ZMode(enum.Enum):
    """How a trained ZAugNet fills the planes (``zaug predict --z-mode``); ``as trained``: the model's own."""

    as_trained = "as trained"
    auto = "auto"
    direct = "direct"
    transfer = "transfer"


class TrainMethod(enum.Enum):
    """What :func:`train_layer` trains: the interpolation models (ZAugNet, ZAugNet+) or a restorer."""

    zaugnet = "zaugnet"
    zaugnet_plus = "zaugnet+"
    selfnet = "selfnet"
    resin = "resin"
    niiv = "niiv"


class Preset(enum.Enum):
    """Network size: ``fast`` trains on a laptop's CPU, ``paper`` is the published size (a GPU helps)."""

    fast = "fast"
    paper = "paper"


class Kind(enum.Enum):
    """What :func:`measure_layer` segments."""

    objects = "objects"
    filaments = "filaments"


@dataclass
class LayerData:
    """The parts of a napari Image layer that zaug uses (a napari layer works the same)."""

    data: Any
    scale: tuple = (1.0, 1.0, 1.0)
    name: str = "image"
    translate: tuple = ()
    metadata: dict = field(default_factory=dict)
    units: tuple | None = None  # napari's (pint units or names); None: pixels


def _volume_of(layer):
    from .io.tiff import checked_acquisition
    from .volume import Volume

    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]  # the full-resolution level
    if getattr(layer, "rgb", False):
        raise InputError(f"the layer {layer.name!r} is an RGB image; zaug works on one channel at a time: "
                         "split it into channels first (right-click the layer: Split RGB).")
    data = np.asarray(data)
    info = dict(getattr(layer, "metadata", {}) or {}).get("zaug", {})
    axes = info.get("axes") or AXES_BY_NDIM.get(data.ndim)
    if axes is None or len(axes) != data.ndim:
        raise InputError(f"the layer {layer.name!r} has {data.ndim} dimensions; zaug needs a 3D stack "
                         "(z, y, x), optionally with time and channel axes before them.")
    scale = [float(s) for s in layer.scale]
    given = getattr(layer, "translate", None)  # napari's: an array
    translate = [float(t) for t in given] if given is not None and len(given) == data.ndim else [0.0] * data.ndim
    names = _unit_names(layer, data.ndim)
    voxel, unit = _spatial_size(scale[-3:], names[-3:], info.get("unit", "um"))
    factor = [v / s for v, s in zip(voxel, scale[-3:])]  # the translate follows a unit conversion
    z0, y0, x0 = (t * f for t, f in zip(translate[-3:], factor))  # napari's translate is the origin
    time = _time_of(axes, scale, translate, names)
    volume = Volume(data, voxel_size=voxel, unit=unit, axes=axes, z_positions=info.get("z_positions"),
                    z_origin=z0, yx_origin=(y0, x0), channel_names=tuple(info.get("channel_names", ())),
                    **time, metadata={"name": layer.name,
                                      **({"display": info["display"]} if info.get("display") else {}),
                                      **({"acquisition": checked_acquisition(info["acquisition"])}
                                         if info.get("acquisition") else {})})
    if info.get("history"):  # how zaug made the layer's stack: its acquired planes by number, as in a file
        record = {"history": info["history"], "acquired_planes": info.get("acquired_planes")}
        volume = volume.replace(metadata=from_file_record(record, volume, f"the layer {layer.name!r}"))
    return volume


def _unit_names(layer, ndim: int) -> list[str | None]:
    """The layer's units (napari >= 0.6: pint units, 'pixel' by default) as names, None where unknown."""
    units = getattr(layer, "units", None)
    if units is None or len(units) != ndim:
        return [None] * ndim
    return [str(u) for u in units]


def _spatial_size(scale: list[float], names: list[str | None], fallback: str) -> tuple[tuple, str]:
    """Voxel size and unit from the layer's scale and units; a layer in pixels (napari's default) keeps
    zaug's unit from its metadata (micrometres when it has none)."""
    from .io._units import in_one_unit, normalize_unit

    units = [normalize_unit(n) for n in names if n is not None]
    if len(units) != 3 or all(u == "pixel" for u in units):
        return tuple(scale), fallback
    converted = in_one_unit({axis: (size, u) for axis, size, u in zip("zyx", scale, units)})
    if converted is None:
        raise InputError(f"the layer's units ({', '.join(names)}) cannot be put in one unit; "
                         "give its z, y and x axes one length unit.")
    sizes, unit = converted
    return (sizes["z"], sizes["y"], sizes["x"]), unit


def _time_of(axes: str, scale: list[float], translate: list[float], names: list[str | None]) -> dict:
    """The time step of a T axis whose unit is a time, or whose scale or translate the user set."""
    from .io._units import time_unit

    if "T" not in axes:
        return {}
    t = axes.index("T")
    unit = time_unit(names[t])
    if unit is None and scale[t] == 1.0 and translate[t] == 0.0:
        return {}
    return {"time_interval": scale[t], "time_unit": unit or "s", "time_origin": translate[t]}


def _provenance(volume) -> dict:
    """The record of how zaug made ``volume`` for the layer's metadata: its acquired planes by number, which
    a change of the layer's scale, translate or units leaves right."""
    return file_record(volume) or {}


def _layer_tuple(volume, name: str, kind: str = "image", like=None) -> tuple:
    """A napari layer tuple: the voxel size as the scale, the origin as the translate, the units; the
    colour map and contrast limits of ``like`` (the input layer), so that the output looks the same."""
    from .io._units import ngff_unit, time_unit_in

    timed = volume.time_interval is not None
    lead_scale = {"T": volume.time_interval if timed else 1.0, "C": 1.0}
    lead_unit = {"T": time_unit_in(volume.time_unit, "ngff") if timed else "pixel", "C": "pixel"}
    lead = volume.axes[:-3]
    attributes = {"name": name, "scale": tuple(lead_scale[a] for a in lead) + tuple(volume.voxel_size),
                  "translate": tuple(volume.time_origin if a == "T" else 0.0 for a in lead)
                  + (float(volume.z_coords()[0]), *volume.yx_origin),
                  "units": tuple(lead_unit[a] for a in lead) + (ngff_unit(volume.unit) or "pixel",) * 3,
                  "metadata": {"zaug": {"unit": volume.unit, "axes": volume.axes,
                                        "channel_names": list(volume.channel_names),
                                        "z_positions": None if volume.is_uniform else
                                        [float(z) for z in volume.z_coords()],
                                        "display": volume.metadata.get("display"),
                                        "acquisition": volume.metadata.get("acquisition"),
                                        **_provenance(volume)}}}
    if kind == "image" and like is None:
        attributes.update(_file_display(volume))
    if kind == "image" and like is not None:
        colormap = getattr(getattr(like, "colormap", None), "name", None)
        if colormap:
            attributes["colormap"] = colormap
        if getattr(like, "contrast_limits", None) is not None:
            attributes["contrast_limits"] = tuple(float(c) for c in like.contrast_limits)
    return np.asarray(volume.data), attributes, kind


#: napari's colour maps for ImageJ's single-colour LUTs
NAPARI_COLORMAPS = {"FF0000": "red", "00FF00": "green", "0000FF": "blue", "FF00FF": "magenta", "00FFFF": "cyan",
                    "FFFF00": "yellow", "FFFFFF": "gray"}


def _file_display(volume) -> dict:
    """The colour map and contrast limits a one-channel file asked for (ImageJ LUT and range, OME-Zarr
    omero), as layer attributes."""
    display = volume.metadata.get("display") or {}
    channels = display.get("channels") or []
    if volume.n_channels != 1 or len(channels) != 1:
        return {}
    found: dict = {}
    if channels[0].get("window") and channels[0]["window"][1] > channels[0]["window"][0]:
        found["contrast_limits"] = tuple(channels[0]["window"])
    if channels[0].get("color") in NAPARI_COLORMAPS:
        found["colormap"] = NAPARI_COLORMAPS[channels[0]["color"]]
    return found


def get_reader(path):
    """npe2 reader hook: a reader for the files zaug understands, else None."""
    if isinstance(path, list):
        return None
    name = str(path).lower().rstrip("/\\")
    return read_layers if name.endswith(READ_SUFFIXES) else None


def read_layers(path) -> list[tuple]:
    """Read a stack with its voxel size (ImageJ/OME TIFF, Zeiss LSM/CZI, Imaris, OME-Zarr, NumPy) as one layer."""
    from .io import read_volume

    volume = read_volume(path)
    return [_layer_tuple(volume, Path(str(path).rstrip("/\\")).name.split(".")[0])]


def write_image(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: one image layer to .ome.tif, .tif, .ome.zarr or .npy, its scale as the voxel size.

    An existing file is never replaced: choose a new name.
    """
    from .errors import OutputError
    from .io import write_volume

    layer = LayerData(data, scale=tuple(attributes.get("scale", (1.0,) * np.ndim(data))),
                      name=attributes.get("name", "image"), translate=tuple(attributes.get("translate", ())),
                      metadata=attributes.get("metadata", {}), units=attributes.get("units"))
    try:
        return [str(write_volume(_volume_of(layer), path))]
    except OutputError as exc:
        if not Path(path).exists():
            raise
        raise OutputError(f"{path} already exists and zaug never replaces a file from napari; "
                          "save under a new name.") from exc


# The napari types are forward references that magicgui resolves inside napari: zaug never imports napari.
# The other annotations are real types (no `from __future__ import annotations`), so magicgui needs no
# lookup in this module to build the widgets.
def upsample_z_layer(image: "napari.layers.Image", method: Method = Method.cubic,  # noqa: F821
                     model_folder: Annotated[Path, {"mode": "d"}] = Path("."),
                     factor: Annotated[int, {"min": 2, "max": 64}] = 2,
                     z_spacing: Annotated[float, {"min": 0.0, "max": 1e6, "step": 0.001}] = 0.0,
                     device: str = "auto",
                     z_mode: ZMode = ZMode.as_trained,
                     one_pass: bool = False,
                     match_noise: bool = False) -> "napari.types.LayerDataTuple":  # noqa: F821
    """Upsample an image layer along z; the new layer carries the new z voxel size.

    Parameters
    ----------
    image : napari Image layer (or :class:`LayerData`)
    method : Method
        ``trained model`` uses the model saved by ``zaug train`` in ``model_folder``.
    model_folder : Path
        The folder of a model trained with ``zaug train`` (or Train a model), for ``trained model``.
    factor : int
        N planes -> (N - 1) * factor + 1; ignored when ``z_spacing`` is above 0.
    z_spacing : float
        Target z spacing in the layer's unit (0: use ``factor``); one coarser
        than the layer's gives fewer planes, with a warning.
    device : str
        auto, cpu or cuda (trained models).
    z_mode : ZMode
        A trained ZAugNet's mode (``direct``, ``transfer`` or ``auto``, as
        ``zaug predict --z-mode``); ``as trained`` keeps the model's.
    one_pass : bool
        A trained ZAugNet runs once per new plane instead of over the 8 flips
        and rotations of the planes (``zaug predict --no-tta``): about 6 times
        faster on a CPU, a little less accurate.
    match_noise : bool
        Give the new planes as much noise as the acquired planes beside them
        carry (``zaug predict --match-noise``), so that both look and threshold
        alike; costs PSNR.
    """
    from .methods import resolve
    from .predict import upsample_z
    from .restore import is_restorer, restore_with, with_training_anisotropy

    volume = _volume_of(image)
    if method is Method.trained_model:
        if not (Path(model_folder) / "config.json").is_file():
            raise InputError("choose the folder of a model trained with zaug train (it holds config.json).")
        chosen = resolve(str(model_folder), device=device)
        label = Path(model_folder).name
    else:
        chosen, label = resolve(method.value), method.value
    if z_mode is not ZMode.as_trained:
        if not hasattr(chosen, "mode"):
            raise InputError(f"the z mode is a ZAugNet option; {label} has no modes (choose 'as trained').")
        chosen.mode = z_mode.value
    if one_pass:
        if not hasattr(chosen, "tta"):
            raise InputError(f"one pass is a ZAugNet option; {label} makes one already (untick it).")
        chosen.tta = False
    if hasattr(chosen, "resolved_mode"):
        label = f"{label}, {chosen.resolved_mode()}"
    # a z spacing coarser than the layer's is warned about by upsample_z / restore_with
    if is_restorer(chosen):  # niiv, Self-Net, RESIN
        volume = with_training_anisotropy(volume, chosen)
        spacing = float(z_spacing) if z_spacing and z_spacing > 0 else volume.voxel_size[0] / float(factor)
        out = restore_with(volume, chosen, z_spacing=spacing)
    else:
        target = {"z_spacing": float(z_spacing)} if z_spacing and z_spacing > 0 else {"factor": float(factor)}
        out = upsample_z(volume, chosen, **target)
    if match_noise:
        from .predict import match_noise as matched

        out, label = matched(out, volume), f"{label}, noise matched"
    return _layer_tuple(out, f"{image.name} z{out.voxel_size[0]:.3g} ({label})", like=image)


def measure_layer(image: "napari.layers.Image", kind: Kind = Kind.objects,  # noqa: F821
                  threshold: Annotated[float, {"min": 0.0, "max": 1e12}] = 0.0) -> "napari.types.LayerDataTuple":  # noqa: F821
    """Segment an image layer as ``zaug measure`` does; a labels layer of objects, or the filament skeleton.

    The measurements (in the layer's unit) go into the new layer's ``metadata["zaug_measure"]``.

    Parameters
    ----------
    image : napari Image layer (or :class:`LayerData`)
        One 3D stack.
    kind : Kind
        objects (volumes, roughness) or filaments (lengths).
    threshold : float
        Foreground above this value; 0 uses Otsu's threshold.
    """
    from .downstream import measure_stack

    volume = _volume_of(image)
    if volume.axes != "ZYX":
        raise InputError("measure one 3D stack (z, y, x): pick a single time point or channel first.")
    kind = Kind(kind).value
    result, segmentation = measure_stack(volume, kind, threshold or None, return_segmentation=True)
    labels = segmentation.astype(np.int32)
    _, attributes, _ = _layer_tuple(volume, f"{image.name} {kind}")
    attributes["metadata"]["zaug_measure"] = result
    return labels, attributes, "labels"


def train_layer(image: "napari.layers.Image", method: TrainMethod = TrainMethod.zaugnet,  # noqa: F821
                preset: Preset = Preset.fast,
                minutes: Annotated[float, {"min": 0.1, "max": 10080.0, "step": 1.0}] = 10.0,
                model_folder: Annotated[Path, {"mode": "d"}] = Path.home() / "zaug-model",
                start_from: str = "", overwrite: bool = False, device: str = "auto", progress=True,
                stop=None) -> str:
    """Train a model on an image layer (self-supervised: the layer alone), as ``zaug train`` does.

    Use it with Upsample z (method: trained model).

    Parameters
    ----------
    image : napari Image layer (or :class:`LayerData`)
    method : TrainMethod
        zaugnet or zaugnet+ add planes between the acquired ones; selfnet,
        resin and niiv restore an isotropic stack.
    preset : Preset
        Network size: fast trains on a laptop's CPU, paper is the published size.
    minutes : float
        Training time; the self-check runs after it.
    model_folder : Path
        Where the model goes; an interrupted run there with the same settings
        resumes.
    start_from : str
        zaugnet, zaugnet+: empty for random weights, prior for the ZAugNet
        prior shipped with zaug, or the folder of an earlier model.
    overwrite : bool
        Replace a finished model in the folder.
    device : str
        auto, cpu or cuda.
    progress : bool or tqdm class
        The progress bar (napari's, in the widget).
    stop : threading.Event, optional
        Set it (Stop training, or closing napari) to end the run at the end of
        a step; it resumes from there when trained again with the same settings.

    Returns
    -------
    str
        The self-check: the model against interpolation on planes held out of
        this layer.
    """
    import json

    from .methods import learned_module

    volume = _volume_of(image)
    module = learned_module(TrainMethod(method).value)
    options = {"method": TrainMethod(method).value, "preset": Preset(preset).value, "minutes": float(minutes),
               "device": device, "overwrite": bool(overwrite), "progress": progress, "stop": stop}
    if str(start_from).strip():
        options["init"] = str(start_from).strip()
    try:
        model_dir = module.fit([volume], Path(model_folder), options)
    except ZaugError as exc:  # the widget has a box, not a flag
        exc.args = (str(exc).replace("pass --overwrite", "tick overwrite"),)
        raise
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    return f"model saved in {model_dir}. {module.format_self_check(config['self_check'])}"


def show_error(exc: BaseException) -> None:
    """A widget's error in napari: zaug's own (bad input) as its one sentence, others with their traceback."""
    from napari.utils import notifications

    from .errors import ZaugError

    if isinstance(exc, ZaugError):
        notifications.show_error(str(exc))
    else:
        notifications.notification_manager.receive_error(type(exc), exc, exc.__traceback__)


def show_warning(showwarning_args: tuple) -> None:
    """A warning raised in a widget's worker (``warnings.showwarning``'s arguments) as a napari notification."""
    from napari.utils import notifications

    notifications.show_warning(str(showwarning_args[0]))


#: What the widgets return: a napari worker whose result napari adds to the viewer as a layer.
WORKER_OF_LAYER = "napari.qt.threading.FunctionWorker[napari.types.LayerDataTuple]"


def in_a_worker_thread(function):
    """The widget form of ``function``: the same parameters, run in a napari worker thread when called.

    magicgui builds the widget from the signature; napari connects the returned
    worker's result to the viewer, on the GUI thread; warnings and exceptions
    become notifications (:func:`show_warning`, :func:`show_error`). Needs
    napari (imported when the widget is used).
    """
    @functools.wraps(function)
    def widget(*args, **kwargs):
        return start_worker(function, *args, **kwargs)

    widget.__annotations__ = dict(function.__annotations__, **{"return": WORKER_OF_LAYER})
    widget.__signature__ = inspect.signature(function).replace(return_annotation=WORKER_OF_LAYER)
    return widget


def start_worker(function, *args, **kwargs):
    """Run ``function`` in a started napari worker whose warnings and errors become notifications."""
    from napari.qt.threading import create_worker

    # errors go to napari's notifications (re-raising them in the GUI thread, the default, can abort Qt)
    worker = create_worker(function, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.errored.connect(show_error)
    worker.warned.connect(show_warning)  # e.g. a model trained at another anisotropy
    worker.start()
    return worker


def start_stoppable_worker(function, *args, **kwargs):
    """:func:`start_worker` for a ``function`` that takes ``stop`` (an event); Stop, or napari's closing, sets it."""
    stop = threading.Event()
    worker = start_worker(function, *args, stop=stop, **kwargs)
    RUNNING_JOBS[stop] = function.__name__
    worker.finished.connect(lambda: RUNNING_JOBS.pop(stop, None))
    quit_worker = worker.quit

    def quit() -> None:  # napari asks its workers to quit when the viewer closes: end at the next report
        stop.set()
        quit_worker()

    worker.quit = quit
    return worker


def train_widget(*args, **kwargs):
    """Train in a napari worker: the bar in napari's activity panel, the self-check as a notification.

    Returns the started worker; its signature says None, so napari adds no
    layer (the model goes to a folder).
    """
    from napari.utils import notifications
    from napari.utils import progress as napari_progress

    worker = start_stoppable_worker(train_layer, *args, progress=napari_progress, **kwargs)
    worker.returned.connect(notifications.show_info)
    return worker


def upsample_with_progress(*args, stop=None, **kwargs):
    """:func:`upsample_z_layer` with its bar in napari's activity panel; ``stop`` set ends it, with no layer."""
    from napari.utils import progress as napari_progress

    from .progress import reporting

    with reporting(napari_progress, desc="Upsample z", stop=stop):
        return upsample_z_layer(*args, **kwargs)


def upsample_z_widget(*args, **kwargs):
    return start_stoppable_worker(upsample_with_progress, *args, **kwargs)


functools.update_wrapper(upsample_z_widget, upsample_z_layer)
upsample_z_widget.__annotations__ = dict(upsample_z_layer.__annotations__, **{"return": WORKER_OF_LAYER})
upsample_z_widget.__signature__ = inspect.signature(upsample_z_layer).replace(return_annotation=WORKER_OF_LAYER)

#: The stop events of the trainings and upsamplings the widgets run now (Stop sets them), and which is which.
RUNNING_JOBS: dict = {}


def stop_training_widget() -> None:
    """Stop what Train a model and Upsample z are running: a training saves the step under way and ends
    (training the same layer into the same folder again resumes it); an upsampling ends with no new layer."""
    from napari.utils import notifications

    running = list(RUNNING_JOBS.items())
    for stop, _ in running:
        stop.set()
    trainings = sum(name == "train_layer" for _, name in running)
    said = []
    if trainings:
        said.append(f"asked {trainings} training(s) to stop at the end of their step; training again with the "
                    "same settings resumes them")
    if len(running) > trainings:
        said.append(f"asked {len(running) - trainings} upsampling(s) to stop; they add no layer")
    notifications.show_info("; ".join(said) + "." if said else "nothing is running.")


# the widget's form: train_layer's parameters but the bar's class; nothing for napari to add as a layer
_HIDDEN = ("progress", "stop")
train_widget.__signature__ = inspect.signature(train_layer).replace(
    parameters=[p for name, p in inspect.signature(train_layer).parameters.items() if name not in _HIDDEN],
    return_annotation=None)
train_widget.__annotations__ = {k: v for k, v in train_layer.__annotations__.items() if k not in _HIDDEN}
train_widget.__annotations__["return"] = None
measure_widget = in_a_worker_thread(measure_layer)
