"""napari plugin: read and write stacks with their voxel size, train, upsample z, measure objects.

Declared in ``napari.yaml`` (npe2). Every function here is a thin layer over the
Python API and takes plain layer data, so it works (and is tested) without
napari; napari itself is needed only to show the widgets (``pip install
'zaug[napari]'``). The widgets run :func:`train_layer`, :func:`upsample_z_layer`
and :func:`measure_layer` in a napari worker thread (``train_widget``,
``upsample_z_widget``, ``measure_widget``), so the viewer stays responsive while
a model trains or predicts; napari adds the new layer when they finish (training
shows its progress in napari's activity panel and its self-check as a
notification), and their warnings and errors become notifications. Voxel sizes travel as the layers' ``scale``; zaug keeps
the unit, axes and z positions in ``metadata["zaug"]``.

Examples
--------
>>> import numpy as np
>>> data = np.linspace(0, 1, 5 * 8 * 8, dtype=np.float32).reshape(5, 8, 8)
>>> layer = LayerData(data, scale=(2.0, 0.5, 0.5), name="stack")
>>> out, attributes, kind = upsample_z_layer(layer, Method.cubic, factor=2.0)
>>> out.shape, attributes["scale"], kind
((9, 8, 8), (1.0, 0.5, 0.5), 'image')
"""

import enum
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from .errors import InputError

READ_SUFFIXES = (".tif", ".tiff", ".zarr", ".npy", ".npz")
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


def _volume_of(layer):
    from .volume import Volume

    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]  # the full-resolution level
    data = np.asarray(data)
    info = dict(getattr(layer, "metadata", {}) or {}).get("zaug", {})
    axes = info.get("axes") or AXES_BY_NDIM.get(data.ndim)
    if axes is None or len(axes) != data.ndim:
        raise InputError(f"the layer {layer.name!r} has {data.ndim} dimensions; zaug needs a 3D stack "
                         "(z, y, x), optionally with time and channel axes before them.")
    scale = tuple(float(s) for s in layer.scale)[-3:]
    given = getattr(layer, "translate", None)  # napari's: an array
    translate = [] if given is None else [float(t) for t in given]
    z0, y0, x0 = translate[-3:] if len(translate) >= 3 else (0.0, 0.0, 0.0)  # napari's translate is the origin
    return Volume(data, voxel_size=scale, unit=info.get("unit", "um"), axes=axes,
                  z_positions=info.get("z_positions"), z_origin=z0, yx_origin=(y0, x0), metadata={"name": layer.name})


def _layer_tuple(volume, name: str, kind: str = "image") -> tuple:
    """A napari layer tuple: the voxel size as the scale, the origin as the translate."""
    lead = tuple(1.0 for _ in volume.axes[:-3])
    attributes = {"name": name, "scale": lead + tuple(volume.voxel_size),
                  "translate": tuple(0.0 for _ in lead) + (float(volume.z_coords()[0]), *volume.yx_origin),
                  "metadata": {"zaug": {"unit": volume.unit, "axes": volume.axes,
                                        "z_positions": None if volume.is_uniform else
                                        [float(z) for z in volume.z_coords()]}}}
    return np.asarray(volume.data), attributes, kind


def get_reader(path):
    """npe2 reader hook: a reader for the files zaug understands, else None."""
    if isinstance(path, list):
        return None
    name = str(path).lower().rstrip("/")
    return read_layers if name.endswith(READ_SUFFIXES) else None


def read_layers(path) -> list[tuple]:
    """Read a stack with its voxel size (ImageJ/OME TIFF, OME-Zarr, NumPy) as one image layer."""
    from .io import read_volume

    volume = read_volume(path)
    return [_layer_tuple(volume, Path(str(path).rstrip("/")).name.split(".")[0])]


def write_image(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: one image layer to .ome.tif, .tif, .ome.zarr or .npy, its scale as the voxel size.

    An existing file is never replaced: choose a new name.
    """
    from .io import write_volume

    layer = LayerData(data, scale=tuple(attributes.get("scale", (1.0,) * np.ndim(data))),
                      name=attributes.get("name", "image"), translate=tuple(attributes.get("translate", ())),
                      metadata=attributes.get("metadata", {}))
    return [str(write_volume(_volume_of(layer), path))]


# The napari types are forward references that magicgui resolves inside napari: zaug never imports napari.
# The other annotations are real types (no `from __future__ import annotations`), so magicgui needs no
# lookup in this module to build the widgets.
def upsample_z_layer(image: "napari.layers.Image", method: Method = Method.cubic,  # noqa: F821
                     model_folder: Annotated[Path, {"mode": "d"}] = Path("."),
                     factor: Annotated[float, {"min": 1.0, "max": 64.0, "step": 1.0}] = 2.0,
                     z_spacing: Annotated[float, {"min": 0.0, "max": 1e6, "step": 0.01}] = 0.0,
                     device: str = "auto",
                     z_mode: ZMode = ZMode.as_trained) -> "napari.types.LayerDataTuple":  # noqa: F821
    """Upsample an image layer along z; the new layer carries the new z voxel size.

    Parameters
    ----------
    image : napari Image layer (or :class:`LayerData`)
    method : Method
        ``trained model`` uses the model saved by ``zaug train`` in ``model_folder``.
    factor : float
        N planes -> (N - 1) * factor + 1; ignored when ``z_spacing`` is above 0.
    z_spacing : float
        Target z spacing in the layer's unit (0: use ``factor``).
    device : str
        auto, cpu or cuda (trained models).
    z_mode : ZMode
        A trained ZAugNet's mode (``direct``, ``transfer`` or ``auto``, as
        ``zaug predict --z-mode``); ``as trained`` keeps the model's.
    """
    from .methods import resolve
    from .predict import upsample_z
    from .restore import is_restorer, restore_with

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
    if hasattr(chosen, "resolved_mode"):
        label = f"{label}, {chosen.resolved_mode()}"
    if is_restorer(chosen):  # niiv, Self-Net, RESIN
        spacing = float(z_spacing) if z_spacing and z_spacing > 0 else volume.voxel_size[0] / float(factor)
        out = restore_with(volume, chosen, z_spacing=spacing)
    else:
        target = {"z_spacing": float(z_spacing)} if z_spacing and z_spacing > 0 else {"factor": float(factor)}
        out = upsample_z(volume, chosen, **target)
    return _layer_tuple(out, f"{image.name} z{out.voxel_size[0]:.3g} ({label})")


def measure_layer(image: "napari.layers.Image", kind: Kind = Kind.objects,  # noqa: F821
                  threshold: Annotated[float, {"min": 0.0, "max": 1e12}] = 0.0) -> "napari.types.LayerDataTuple":  # noqa: F821
    """Segment an image layer as ``zaug measure`` does; a labels layer of objects, or the filament skeleton.

    ``threshold`` 0 uses Otsu's. The measurements go into the new layer's ``metadata["zaug_measure"]``.
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
                start_from: str = "", overwrite: bool = False, device: str = "auto", progress=True) -> str:
    """Train a model on an image layer (self-supervised: the layer alone), as ``zaug train`` does.

    The model goes to ``model_folder``; an interrupted run there with the same
    settings resumes, a finished model is replaced only with ``overwrite``.
    ``start_from`` (ZAugNet, ZAugNet+), as ``zaug train --init``: empty to
    start from random weights, ``prior`` for the ZAugNet prior shipped with
    zaug, or the folder of an earlier model of the same method and preset.
    Use it with Upsample z (method: trained model). Returns the self-check:
    the model against interpolation on planes held out of this layer.
    ``progress``: a tqdm class for the bar (napari's, in the widget).
    """
    import json

    from .methods import learned_module

    volume = _volume_of(image)
    module = learned_module(TrainMethod(method).value)
    options = {"method": TrainMethod(method).value, "preset": Preset(preset).value, "minutes": float(minutes),
               "device": device, "overwrite": bool(overwrite), "progress": progress}
    if str(start_from).strip():
        options["init"] = str(start_from).strip()
    model_dir = module.fit([volume], Path(model_folder), options)
    config = json.loads((Path(model_dir) / "config.json").read_text())
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


def train_widget(*args, **kwargs):
    """Train in a napari worker: the bar in napari's activity panel, the self-check as a notification.

    Returns the started worker; its signature says None, so napari adds no
    layer (the model goes to a folder).
    """
    from napari.utils import notifications
    from napari.utils import progress as napari_progress

    worker = start_worker(train_layer, *args, progress=napari_progress, **kwargs)
    worker.returned.connect(notifications.show_info)
    return worker


# the widget's form: train_layer's parameters but the bar's class; nothing for napari to add as a layer
train_widget.__signature__ = inspect.signature(train_layer).replace(
    parameters=[p for name, p in inspect.signature(train_layer).parameters.items() if name != "progress"],
    return_annotation=None)
train_widget.__annotations__ = {k: v for k, v in train_layer.__annotations__.items() if k != "progress"}
train_widget.__annotations__["return"] = None
upsample_z_widget = in_a_worker_thread(upsample_z_layer)
measure_widget = in_a_worker_thread(measure_layer)
