"""The napari plugin: its manifest, reader, writer and widgets' functions (napari itself is not needed)."""

import json
from importlib import resources

import numpy as np
import pytest
import tifffile

from zaug.errors import InputError, OutputError
from zaug import Volume
from zaug.io import read_volume, write_volume
from zaug.napari_plugin import (WORKER_OF_LAYER, Kind, LayerData, Method, TrainMethod, ZMode, get_reader,
                                in_a_worker_thread, measure_layer, measure_widget, train_layer, train_widget,
                                upsample_z_layer, upsample_z_widget, write_image)


def _imagej(path, data, z=0.5, xy=0.2):
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / xy, 1 / xy), metadata={"spacing": z, "unit": "um", "axes": "ZYX"})
    return path


def test_manifest_is_valid_and_names_existing_functions():
    npe2 = pytest.importorskip("npe2", reason="npe2 (in the dev extra) validates napari manifests")
    manifest = npe2.PluginManifest.from_file(str(resources.files("zaug") / "napari.yaml"))
    assert manifest.name == "zaug"
    import importlib

    for command in manifest.contributions.commands:
        module, _, name = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command.python_name
    widgets = {w.command for w in manifest.contributions.widgets}
    assert widgets == {"zaug.train", "zaug.stop_training", "zaug.upsample_z", "zaug.measure"}


def test_manifest_is_registered_as_an_entry_point():
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="napari.manifest") if ep.name == "zaug"]
    assert found and found[0].value == "zaug:napari.yaml"


def test_reader_keeps_the_voxel_size(tmp_path):
    path = _imagej(tmp_path / "stack.tif", np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8))
    assert get_reader(str(tmp_path / "notes.txt")) is None
    [(data, attributes, kind)] = get_reader(str(path))(str(path))
    assert kind == "image" and data.shape == (5, 8, 8) and data.dtype == np.uint16
    assert attributes["scale"] == pytest.approx((0.5, 0.2, 0.2))
    assert attributes["metadata"]["zaug"]["unit"] == "um"


def test_reader_shows_the_files_colour_and_display_range_and_the_writer_keeps_them(tmp_path):
    green = np.round(np.outer((0, 255, 0), np.arange(256) / 255)).astype(np.uint8)
    path = tmp_path / "gfp.tif"
    tifffile.imwrite(path, np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8), imagej=True,
                     metadata={"axes": "ZYX", "Ranges": (20.0, 250.0), "LUTs": [green]})
    [(data, attributes, _)] = get_reader(str(path))(str(path))
    assert attributes["colormap"] == "green" and attributes["contrast_limits"] == (20.0, 250.0)
    written = write_image(str(tmp_path / "saved.tif"), data, attributes)
    assert read_volume(written[0]).metadata["display"]["channels"][0]["color"] == "00FF00"


def test_upsample_layer_carries_the_new_voxel_size_and_dtype(tmp_path):
    path = _imagej(tmp_path / "stack.tif", (np.random.default_rng(0).random((5, 16, 16)) * 4000).astype(np.uint16))
    [(data, attributes, _)] = get_reader(str(path))(str(path))
    layer = LayerData(data, scale=attributes["scale"], name="stack", metadata=attributes["metadata"])
    out, new, kind = upsample_z_layer(layer, Method.linear, z_spacing=0.25)
    assert kind == "image" and out.shape == (9, 16, 16) and out.dtype == np.uint16
    assert new["scale"] == pytest.approx((0.25, 0.2, 0.2))
    np.testing.assert_array_equal(out[::2], data)
    # the writer stores the scale as the voxel size, and never replaces a file
    written = write_image(str(tmp_path / "up.ome.tif"), out, new)
    assert read_volume(written[0]).voxel_size == pytest.approx((0.25, 0.2, 0.2))
    with pytest.raises(Exception, match="already exists"):
        write_image(str(tmp_path / "up.ome.tif"), out, new)


def test_the_origin_is_the_layer_translate_through_reader_method_and_writer(tmp_path):
    src = tmp_path / "stack.ome.zarr"
    data = (np.random.default_rng(0).random((5, 16, 16)) * 4000).astype(np.uint16)
    write_volume(Volume(data, (0.5, 0.2, 0.2), "um", z_origin=3.0, yx_origin=(1.0, -2.0)), src)
    [(data, attributes, _)] = get_reader(str(src))(str(src))
    assert attributes["translate"] == pytest.approx((3.0, 1.0, -2.0))
    layer = LayerData(data, scale=attributes["scale"], name="stack", translate=attributes["translate"],
                      metadata=attributes["metadata"])
    out, new, _ = upsample_z_layer(layer, Method.linear, z_spacing=0.25)
    assert new["translate"] == pytest.approx((3.0, 1.0, -2.0))
    written = read_volume(write_image(str(tmp_path / "up.ome.tif"), out, new)[0])
    assert (written.z_origin, *written.yx_origin) == pytest.approx((3.0, 1.0, -2.0))


def test_trained_model_needs_a_model_folder(tmp_path):
    layer = LayerData(np.zeros((5, 8, 8), np.float32), scale=(1, 1, 1))
    with pytest.raises(InputError, match="zaug train"):
        upsample_z_layer(layer, Method.trained_model, model_folder=tmp_path)


def test_2d_layer_gets_one_sentence():
    with pytest.raises(InputError, match="3D stack"):
        upsample_z_layer(LayerData(np.zeros((8, 8), np.float32), scale=(1, 1)), Method.cubic)


def test_measure_layer_returns_labels_and_measurements():
    z, y, x = np.mgrid[0:20, 0:40, 0:40]
    two = ((z - 10)**2 + (y - 12)**2 + (x - 12)**2 < 36) | ((z - 10)**2 + (y - 28)**2 + (x - 28)**2 < 36)
    layer = LayerData((two * 1000).astype(np.uint16), scale=(0.5, 0.2, 0.2), name="cells")
    labels, attributes, kind = measure_layer(layer, Kind.objects)
    assert kind == "labels" and labels.max() == 2 and attributes["scale"] == (0.5, 0.2, 0.2)
    assert attributes["metadata"]["zaug_measure"]["summary"]["count"] == 2


def test_the_layers_units_are_the_voxel_size_unit_and_measurements_follow_them():
    z, y, x = np.mgrid[0:20, 0:40, 0:40]
    ball = (((z - 10)**2 + (y - 20)**2 + (x - 20)**2 < 36) * 1000).astype(np.uint16)
    in_um = measure_layer(LayerData(ball, scale=(0.5, 0.2, 0.2)), Kind.objects)[1]["metadata"]["zaug_measure"]
    in_nm = LayerData(ball, scale=(500.0, 200.0, 200.0), units=("nanometer",) * 3)
    labels, attributes, _ = measure_layer(in_nm, Kind.objects)
    assert attributes["units"] == ("nanometer",) * 3 and attributes["metadata"]["zaug"]["unit"] == "nm"
    measured = attributes["metadata"]["zaug_measure"]
    assert measured["summary"]["count"] == 1
    assert measured["unit"] == "nm"  # nm^3, not um^3
    assert measured["items"][0]["volume_nm3"] == pytest.approx(in_um["items"][0]["volume_um3"] * 1e9, rel=1e-6)
    out, attributes, _ = upsample_z_layer(in_nm, Method.linear, factor=2)
    assert attributes["scale"] == (250.0, 200.0, 200.0) and attributes["units"][-1] == "nanometer"
    with pytest.raises(InputError, match="one unit"):
        upsample_z_layer(LayerData(ball, units=("pixel", "nanometer", "nanometer")), Method.linear)


def test_time_axis_scale_translate_and_display_are_kept():
    data = np.random.default_rng(0).integers(0, 4000, (3, 5, 8, 8)).astype(np.uint16)
    layer = LayerData(data, scale=(30.0, 2.0, 0.5, 0.5), translate=(60.0, 1.0, 0.0, 0.0), name="movie",
                      units=("second", "micrometer", "micrometer", "micrometer"))
    layer.colormap, layer.contrast_limits = type("Colormap", (), {"name": "green"})(), (100.0, 3000.0)
    out, attributes, _ = upsample_z_layer(layer, Method.linear, factor=2)
    assert out.shape == (3, 9, 8, 8)
    assert attributes["scale"] == (30.0, 1.0, 0.5, 0.5) and attributes["translate"] == (60.0, 1.0, 0.0, 0.0)
    assert attributes["units"][0] == "second"
    assert attributes["colormap"] == "green" and attributes["contrast_limits"] == (100.0, 3000.0)


def test_rgb_layer_and_an_existing_file_get_one_sentence_in_the_guis_words(tmp_path):
    rgb = LayerData(np.zeros((4, 16, 16, 3), np.uint8), scale=(1, 1, 1, 1))
    rgb.rgb = True
    with pytest.raises(InputError, match="RGB image"):
        upsample_z_layer(rgb, Method.cubic)
    path = write_image(str(tmp_path / "a.tif"), np.zeros((3, 8, 8), np.uint8), {"scale": (1, 1, 1)})[0]
    with pytest.raises(OutputError, match="save under a new name"):
        write_image(path, np.zeros((3, 8, 8), np.uint8), {"scale": (1, 1, 1)})


def test_train_layer_trains_a_model_that_upsample_z_uses(tmp_path):
    from zaug.sample import load_sample

    sample = load_sample()
    layer = LayerData(sample.data[:30, :64, :64], scale=sample.voxel_size, name="nuclei")
    message = train_layer(layer, TrainMethod.zaugnet, minutes=0.1, model_folder=tmp_path / "model",
                          device="cpu", progress=False)
    assert message.startswith(f"model saved in {tmp_path / 'model'}.") and "linear" in message
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["method"] == "zaugnet" and config["summary"]["steps"] > 0
    out, attributes, _ = upsample_z_layer(layer, Method.trained_model, model_folder=tmp_path / "model")
    assert out.shape == (2 * 30 - 1, 64, 64) and out.dtype == sample.data.dtype
    assert attributes["scale"] == pytest.approx((0.145, 0.26, 0.26)) and attributes["name"].endswith(", direct)")
    # the transfer mode: the same grid and acquired planes, other new planes
    moved, attributes, _ = upsample_z_layer(layer, Method.trained_model, model_folder=tmp_path / "model",
                                            z_mode=ZMode.transfer)
    assert moved.shape == out.shape and attributes["name"].endswith(", transfer)")
    np.testing.assert_array_equal(moved[::2], out[::2])
    assert not np.array_equal(moved[1::2], out[1::2])
    with pytest.raises(InputError, match="ZAugNet option"):
        upsample_z_layer(layer, Method.cubic, z_mode=ZMode.transfer)
    # one pass of the network per new plane (zaug predict --no-tta): the same grid and acquired planes
    quick, _, _ = upsample_z_layer(layer, Method.trained_model, model_folder=tmp_path / "model", one_pass=True)
    np.testing.assert_array_equal(quick[::2], out[::2])
    assert not np.array_equal(quick[1::2], out[1::2])
    with pytest.raises(InputError, match="one pass is a ZAugNet option"):
        upsample_z_layer(layer, Method.cubic, one_pass=True)
    with pytest.raises(OutputError, match="tick overwrite to replace it"):  # a finished model is not replaced silently
        train_layer(layer, TrainMethod.zaugnet, minutes=0.1, model_folder=tmp_path / "model", progress=False)
    # start_from, as zaug train --init: the shipped prior, or refused in one sentence where it does not apply
    train_layer(layer, TrainMethod.zaugnet, minutes=0.05, model_folder=tmp_path / "prior", start_from="prior",
                device="cpu", progress=False)
    assert json.loads((tmp_path / "prior" / "run.json").read_text())["init"] == "prior"
    with pytest.raises(InputError, match="--init does not apply"):
        train_layer(layer, TrainMethod.niiv, minutes=0.05, model_folder=tmp_path / "niiv", start_from="prior",
                    progress=False)
    assert not (tmp_path / "niiv").exists()


def test_a_stopped_training_saves_its_step_and_resumes(tmp_path):
    import threading

    from zaug.sample import load_sample
    from zaug.train import TrainingStopped

    sample = load_sample()
    layer = LayerData(sample.data[:, :64, :64], scale=sample.voxel_size, name="nuclei")
    stop = threading.Event()
    threading.Timer(4.0, stop.set).start()  # Stop training (or closing napari) during the run
    with pytest.raises(TrainingStopped, match="resumes from there"):
        train_layer(layer, TrainMethod.zaugnet, minutes=5.0, model_folder=tmp_path / "m", device="cpu",
                    progress=False, stop=stop)
    saved = json.loads((tmp_path / "m" / "checkpoint" / "state.json").read_text())["loop"]["step"]
    assert saved > 0 and not (tmp_path / "m" / "config.json").exists()
    again = threading.Event()
    threading.Timer(4.0, again.set).start()
    with pytest.raises(TrainingStopped):  # resumed from the saved step, then stopped again
        train_layer(layer, TrainMethod.zaugnet, minutes=5.0, model_folder=tmp_path / "m", device="cpu",
                    progress=False, stop=again)
    state = json.loads((tmp_path / "m" / "checkpoint" / "state.json").read_text())["loop"]
    assert state["step"] > saved and state["elapsed"] > 4.0


def test_in_a_headless_napari_viewer(tmp_path):
    """With napari installed (the dev extra has it), the plugin works through napari itself."""
    pytest.importorskip("napari", reason="napari is not installed (pip install 'zaug[napari]')")
    from magicgui import type_map
    from magicgui.signature import magic_signature
    from napari.components import ViewerModel

    from zaug.sample import sample_path

    import npe2

    npe2.PluginManager.instance().discover()  # what napari's application does at start-up
    viewer = ViewerModel()
    [layer] = viewer.open(str(sample_path()), plugin="zaug")
    assert tuple(layer.scale) == pytest.approx((0.29, 0.26, 0.26))
    viewer._add_layer_from_data(*upsample_z_layer(layer, Method.cubic, factor=2))
    assert tuple(viewer.layers[-1].scale) == pytest.approx((0.145, 0.26, 0.26))
    saved = viewer.layers[-1].save(str(tmp_path / "up.ome.tif"), plugin="zaug")
    assert read_volume(saved[0]).voxel_size == pytest.approx((0.145, 0.26, 0.26))
    for function in (train_widget, upsample_z_layer, measure_layer):  # every parameter gets a widget
        for parameter in magic_signature(function).parameters.values():
            default = None if parameter.default is parameter.empty else parameter.default
            type_map.get_widget_class(value=default, annotation=parameter.annotation)


def test_widgets_take_the_functions_parameters_and_return_a_worker():
    import inspect

    for widget, function in ((upsample_z_widget, upsample_z_layer), (measure_widget, measure_layer)):
        ours, theirs = inspect.signature(widget), inspect.signature(function)
        assert ours.parameters == theirs.parameters
        assert ours.return_annotation == WORKER_OF_LAYER != theirs.return_annotation
        assert widget.__doc__ == function.__doc__
    ours, theirs = inspect.signature(train_widget), inspect.signature(train_layer)
    assert list(ours.parameters) == [name for name in theirs.parameters if name not in ("progress", "stop")]
    assert ours.return_annotation is None  # the model goes to a folder, not to a layer


def _skip_unless_qt_loads():
    """Skip, naming the missing piece, where the Qt wheel's libraries cannot load (no libGL, say)."""
    try:
        import qtpy.QtWidgets  # noqa: F401  (loads the Qt binding's shared libraries)
    except ImportError as error:  # qtpy's own error, or the loader's for a missing system library
        pytest.skip(f"Qt cannot start on this machine ({error}); napari's worker threads need it")


def test_widgets_run_in_a_napari_worker_thread(monkeypatch, tmp_path):
    """With napari, a widget returns at once; its worker gives the function's result, or its error, later."""
    pytest.importorskip("napari", reason="napari is not installed (pip install 'zaug[napari]')")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    _skip_unless_qt_loads()
    from magicgui import magicgui
    from magicgui.type_map import type2callback
    from napari.qt import get_qapp
    from napari.qt.threading import FunctionWorker
    from qtpy.QtCore import QEventLoop, QTimer

    get_qapp()  # registers napari's worker return types with magicgui
    gui = magicgui(upsample_z_widget)
    assert type2callback(gui.return_annotation), "napari does not add this widget's result to the viewer"
    data = np.linspace(0, 1, 6 * 16 * 16, dtype=np.float32).reshape(6, 16, 16)
    layer = LayerData(data, scale=(2.0, 0.5, 0.5), name="stack")

    def results(make_worker):
        """Run the widget inside an event loop, as napari does: the worker starts once the loop runs on."""
        got, loop = {}, QEventLoop()

        def call():
            worker = make_worker()
            got["worker"] = worker
            worker.returned.connect(lambda value: got.setdefault("value", value))
            worker.errored.connect(lambda exc: got.setdefault("error", exc))
            worker.finished.connect(loop.quit)

        QTimer.singleShot(0, call)
        QTimer.singleShot(60_000, loop.quit)
        loop.exec_()
        return got

    got = results(lambda: upsample_z_widget(layer, Method.cubic, factor=2))
    assert isinstance(got["worker"], FunctionWorker)
    expected = upsample_z_layer(layer, Method.cubic, factor=2)
    np.testing.assert_array_equal(got["value"][0], expected[0])
    assert got["value"][1]["scale"] == (1.0, 0.5, 0.5)
    from napari.utils import notifications

    shown = []  # what napari shows the user
    monkeypatch.setattr(notifications, "show_error", shown.append)
    flat = LayerData(data[0], scale=(0.5, 0.5), name="plane")
    got = results(lambda: measure_widget(flat))
    assert isinstance(got.get("error"), InputError)
    assert shown == [str(got["error"])] and "needs a 3D stack" in shown[0]

    def warns():
        import warnings

        from zaug.errors import ZaugWarning

        warnings.warn(ZaugWarning("consider training on this stack."))
        return "done"

    warned = []
    monkeypatch.setattr(notifications, "show_warning", warned.append)
    got = results(in_a_worker_thread(warns))
    assert got["value"] == "done" and warned == ["consider training on this stack."]

    from napari.utils import progress

    bars, infos = [], []
    monkeypatch.setattr(notifications, "show_info", infos.append)
    napari_init = progress.__init__
    monkeypatch.setattr(progress, "__init__", lambda self, *a, **k: bars.append(k) or napari_init(self, *a, **k))
    assert magicgui(train_widget).return_annotation is None  # no layer to add
    stack = LayerData(np.random.default_rng(0).random((12, 32, 32), np.float32), scale=(1.0, 0.5, 0.5))
    got = results(lambda: train_widget(stack, TrainMethod.zaugnet, minutes=0.1, model_folder=tmp_path / "m",
                                       device="cpu"))
    assert "error" not in got and (tmp_path / "m" / "config.json").is_file()
    assert len(bars) == 1 and bars[0]["desc"].startswith("zaugnet")  # the bar is napari's own
    assert infos == [got["value"]] and got["value"].startswith(f"model saved in {tmp_path / 'm'}.")

    # Upsample z: napari's bar, and Stop ends it with no layer
    bars.clear()
    got = results(lambda: upsample_z_widget(layer, Method.cubic, factor=2))
    assert "value" in got and [bar["desc"] for bar in bars] == ["Upsample z"]
    import time

    import zaug.napari_plugin as plugin
    from zaug.progress import Cancelled, advance, part

    def slow(*args, **kwargs):  # a long upsampling: 400 reports over about 4 s
        with part(400):
            for _ in range(400):
                time.sleep(0.01)
                advance()

    monkeypatch.setattr(plugin, "upsample_z_layer", slow)
    infos.clear()

    def started_then_stopped():
        worker = upsample_z_widget(layer, Method.cubic, factor=2)
        QTimer.singleShot(300, plugin.stop_training_widget)
        return worker

    began = time.perf_counter()
    got = results(started_then_stopped)
    assert isinstance(got.get("error"), Cancelled) and "value" not in got
    assert time.perf_counter() - began < 3.0 and plugin.RUNNING_JOBS == {}
    assert infos == ["asked 1 upsampling(s) to stop; they add no layer."]


def test_upsample_z_layer_matches_the_noise_of_the_acquired_planes_on_request():
    rng = np.random.default_rng(5)
    layer = LayerData(rng.normal(1000, 30, (6, 48, 48)).astype(np.uint16), scale=(2.0, 0.5, 0.5), name="noisy")
    plain, _, _ = upsample_z_layer(layer, Method.linear)
    matched, attributes, _ = upsample_z_layer(layer, Method.linear, match_noise=True)
    np.testing.assert_array_equal(matched[::2], plain[::2])
    assert plain[1::2].std() < 25 and matched[1::2].std() == pytest.approx(30, rel=0.15)
    assert attributes["name"].endswith("(linear, noise matched)")


def test_an_ome_inputs_acquisition_settings_go_through_a_layer_to_the_file(tmp_path):
    channels = [{"Name": "dapi", "EmissionWavelength": 461.0, "Fluor": "DAPI"}]
    tifffile.imwrite(tmp_path / "in.ome.tif", (np.random.default_rng(0).random((5, 16, 16)) * 4000).astype(np.uint16),
                     ome=True, metadata={"axes": "ZYX", "PhysicalSizeZ": 1.0, "PhysicalSizeY": 0.2,
                                         "PhysicalSizeX": 0.2, "AcquisitionDate": "2026-01-02T03:04:05",
                                         "Channel": channels})
    [(data, attributes, _)] = get_reader(str(tmp_path / "in.ome.tif"))(str(tmp_path / "in.ome.tif"))
    layer = LayerData(data, scale=attributes["scale"], name="in", metadata=attributes["metadata"])
    out, new, _ = upsample_z_layer(layer, Method.linear, z_spacing=0.5)
    back = read_volume(write_image(str(tmp_path / "up.ome.tif"), out, new)[0])
    assert back.metadata["acquisition"] == {"date": "2026-01-02T03:04:05",
                                            "channels": [{"EmissionWavelength": "461.0", "Fluor": "DAPI"}]}


def test_a_layers_foreign_acquisition_settings_are_checked():
    layer = LayerData((np.random.default_rng(0).random((5, 16, 16)) * 4000).astype(np.uint16), scale=(1, 0.2, 0.2),
                      name="odd", metadata={"zaug": {"acquisition": {"description": 5, "date": ["x"],
                                                                     "channels": [{"Fluor": "GFP", "Evil": 1}]}}})
    _, new, _ = upsample_z_layer(layer, Method.linear, z_spacing=0.5)  # was a TypeError
    assert new["metadata"]["zaug"]["acquisition"] == {"channels": [{"Fluor": "GFP"}]}
