"""bioimage.io export: the packaged stack interpolator is zaug's prediction, and consumers can run it."""

import subprocess
import warnings
import sys
import zipfile

import numpy as np
import pytest
import torch

from zaug import InputError, OutputError, ZaugWarning
from zaug.cli import main
from zaug.export import (ExportError, _calibration_weights, _wrapper, architecture_source, axis_scales,
                         check_export_factor, export_bioimageio)
from zaug.nets.zstack import ZVolumeRestorer
from zaug.methods import niiv, resin, resolve, selfnet, zaugnet
from zaug.predict import output_positions
from zaug.restore import RestorationTiles
from zaug.sample import load_sample, sample_path

TINY = {"steps": 3, "progress": False, "patch": 32, "batch": 2}


@pytest.fixture(scope="module")
def small():
    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[:16, 32:80, 40:96]))


@pytest.fixture(scope="module")
def models(small, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: str(zaugnet.fit([small], root / name.replace("+", "_plus"), dict(TINY, method=name)))
            for name in ("zaugnet", "zaugnet+")}


def _zaug(model, weights, stack, z, factor):
    """zaug's own prediction with the package's fixed calibration weights."""
    spacing = float(np.mean(np.diff(z)))
    spacings = [spacing] if model.plus else [spacing / 2**p for p in range(len(weights))]
    model.fixed_calibration = {round(s, 9): tuple(w) for s, w in zip(spacings, weights)}
    return model.interpolate(stack, z, output_positions(z, factor=factor))


SLOW = pytest.mark.slow  # the default suite keeps two passes (x4) and tiles (32 px) with the transfer mode


@pytest.mark.parametrize("name,factor,tile,mode", [("zaugnet", 4, 512, "direct"),
                                                    pytest.param("zaugnet+", 3, 512, "direct", marks=SLOW),
                                                    pytest.param("zaugnet", 2, 32, "direct", marks=SLOW),
                                                    pytest.param("zaugnet", 3, 512, "transfer", marks=SLOW),
                                                    ("zaugnet+", 2, 32, "transfer")])
def test_stack_module_equals_zaug_prediction(models, small, name, factor, tile, mode):
    model = resolve(models[name], device="cpu")
    model.tile, model.overlap = tile, 8  # tile 32 < the 48 x 56 planes: the blended-tile path
    stack, z = np.asarray(small.data, np.float32), small.z_coords()
    if mode == "transfer":  # nothing measured on the stack: any factor, even for plain ZAugNet
        packaged = _wrapper(model, factor, [], mode="transfer")(torch.from_numpy(stack[None])).numpy()[0]
        model.mode = "transfer"
        expected = model.interpolate(stack, z, output_positions(z, factor=factor))
        model.mode = "direct"
        direct = _zaug(model, [[1.0, 0.0]], stack, z, 2) if factor == 2 else None
        assert direct is None or np.abs(packaged - direct).max() > 1  # not the direct mode
    else:
        weights = _calibration_weights(model, stack, z, factor, small.voxel_size[1:])
        assert len(weights) == (1 if model.plus else int(np.log2(factor)))
        assert all(0 <= w <= 1 for one_pass in weights for w in np.ravel(one_pass))  # a pair per detail band
        packaged = _wrapper(model, factor, weights)(torch.from_numpy(stack[None])).numpy()[0]
        expected = _zaug(model, weights, stack, z, factor)
    assert packaged.shape == expected.shape == (factor * (len(z) - 1) + 1,) + stack.shape[1:]
    np.testing.assert_array_equal(packaged[::factor], stack)  # acquired planes as measured
    assert np.abs(packaged - expected).max() < 1e-4 * (stack.max() - stack.min())
    assert np.abs(packaged[1::factor] - stack[:-1]).max() > 1  # new planes are not copies


def test_architecture_file_runs_without_zaug(tmp_path):
    (tmp_path / "arch.py").write_text(architecture_source())
    script = (
        "import sys, importlib.abc, importlib.util\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'zaug': raise ImportError('zaug is not installed here')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"spec = importlib.util.spec_from_file_location('arch', {str(tmp_path / 'arch.py')!r})\n"
        "arch = importlib.util.module_from_spec(spec); sys.modules['arch'] = arch; spec.loader.exec_module(arch)\n"
        "import torch\n"
        "net = dict(widths=(16, 16, 16), teacher_width=8, context_ch=4, refine=True, position_input=True)\n"
        "m = arch.ZStackInterpolator(net, 0.0, 1.0, 3, [[0.5, 0.5]], tta=False).eval()\n"
        "print(tuple(m(torch.rand(1, 4, 20, 17)).shape))\n"
        "m = arch.ZStackInterpolator(net, 0.0, 1.0, 3, [], tta=False, mode='transfer').eval()\n"
        "print(tuple(m(torch.rand(1, 4, 20, 17)).shape))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(1,", "10,", "20,", "17)"] * 2


def test_axis_scales_give_whole_plane_counts():
    for voxel, unit, factor in [((0.29, 0.26, 0.26), "um", 2), ((0.58, 0.1, 0.1), "um", 3),
                                ((2.0, 1.0, 1.0), "pixel", 4), ((1.17, 0.2, 0.2), "micron", 8)]:
        name, (vz, vy, vx), out = axis_scales(voxel, unit, factor)
        assert vz == factor * out and out == round(out)
        sizes = np.arange(2, 5000)
        assert np.all(sizes * vz / out + (1 - factor) == factor * (sizes - 1) + 1)
        assert name == (None if unit == "pixel" else {"nanometer": "nanometer", "picometer": "picometer"}[name])
        assert abs(vz / vy - voxel[0] / voxel[1]) < 1e-5 * voxel[0] / voxel[1]


def test_export_package_passes_bioimageio_and_runs_like_zaug(models, small, tmp_path, capsys):
    core = pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    out = tmp_path / "za.zip"
    result = export_bioimageio(models["zaugnet"], small, out, factor=2, authors=["A. Tester"])
    assert result["test"] == "passed" and out.exists()
    assert result["max_difference"] < 1e-4 * float(small.data.max())
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        rdf = package.read("rdf.yaml").decode()
    assert {"rdf.yaml", "weights.pt", "zaug_zstack.py", "test_input.npy", "test_output.npy", "sample_input.tif",
            "sample_output.tif"} <= names
    assert "zaug" in rdf and "A. Tester" in rdf and "calibration_weights" in rdf
    with zipfile.ZipFile(out) as package:
        readme = package.read("README.md").decode()
    assert "## Validation" in readme and "Run it on whole stacks" in readme
    # zaug info reads the package (was: "cannot tell the format"); zaug predict says what it is
    from zaug.cli import main

    assert main(["info", str(out)]) == 0
    said = capsys.readouterr().out
    assert "a bioimage.io model package" in said and "exported by zaug" in said and "zaugnet (fast preset)" in said
    assert main(["predict", str(out), str(tmp_path / "in.tif"), "-o", str(tmp_path / "o.tif"), "--factor", "2"]) == 2
    assert "is a bioimage.io package: it runs in bioimage.io tools" in capsys.readouterr().err

    # a consumer runs it on a stack of another size: zaug's prediction with the same weights
    descr = core.load_description(out)
    stack = np.asarray(small.data[2:11, :40, :52], np.float32)
    axes = descr.inputs[0].axes
    assert axes[1].scale == 2 * descr.outputs[0].axes[1].scale
    sample = core.predict(model=descr, inputs={"raw": core.Tensor.from_numpy(stack[None], dims=("batch", "z", "y", "x"))})
    got = sample.members["output"].data.values[0]
    model = resolve(models["zaugnet"], device="cpu")
    expected = _zaug(model, result["fixed"]["calibration_weights"], stack, small.z_coords()[:9], 2)
    assert got.shape == (17, 40, 52)
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())

    with pytest.raises(OutputError, match="--overwrite"):
        export_bioimageio(models["zaugnet"], small, out)
    two = small.replace(data=np.stack([small.data, small.data[:, ::-1]]), axes="CZYX")
    with pytest.warns(UserWarning, match="the first"):
        export_bioimageio(models["zaugnet"], two, tmp_path / "two.zip", test=False)
    assert main(["export", models["zaugnet+"], str(tmp_path / "missing.tif"), "-o", str(tmp_path / "p.zip")]) == 2
    assert "zaug: error:" in capsys.readouterr().err and not (tmp_path / "p.zip").exists()


def test_transfer_mode_package_passes_bioimageio(models, small, tmp_path, capsys):
    pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    out = tmp_path / "transfer.zip"
    assert main(["export", models["zaugnet"], str(sample_path()), "-o", str(out), "--factor", "3",
                 "--z-mode", "transfer"]) == 0
    printed = capsys.readouterr().out
    assert "mode: transfer" in printed and "measured on" not in printed and "passed bioimageio" in printed
    with zipfile.ZipFile(out) as package:
        rdf, readme = package.read("rdf.yaml").decode(), package.read("README.md").decode()
    assert "mode: transfer" in rdf and "calibration_weights" not in rdf and "--z-mode transfer" in readme

    # on a stack of another size, a consumer gets what zaug predict --z-mode transfer gives
    import bioimageio.core as core

    stack = np.asarray(small.data[3:10, :40, :52], np.float32)
    sample = core.predict(model=core.load_description(out),
                          inputs={"raw": core.Tensor.from_numpy(stack[None], dims=("batch", "z", "y", "x"))})
    got = sample.members["output"].data.values[0]
    model = resolve(models["zaugnet"], device="cpu")
    model.mode = "transfer"
    z = small.z_coords()[:7]
    expected = model.interpolate(stack, z, output_positions(z, factor=3))
    assert got.shape == expected.shape == (19, 40, 52)
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())
    with pytest.raises(InputError, match="ZAugNet option"):
        export_bioimageio("cubic", small, tmp_path / "x.zip", mode="transfer", test=False)


def test_export_refuses_what_it_cannot_package(models, small, tmp_path):
    with pytest.raises(InputError, match=r"\.zip"):
        export_bioimageio(models["zaugnet"], small, tmp_path / "model.tar")
    with pytest.raises(InputError, match="2, 4, 8"):
        export_bioimageio(models["zaugnet"], small, tmp_path / "m.zip", factor=3)
    with pytest.raises(InputError, match="at least 2"):
        export_bioimageio(models["zaugnet+"], small, tmp_path / "m.zip", factor=1)
    uneven = small.replace(z_positions=np.cumsum(np.r_[0.0, np.linspace(0.2, 0.4, small.nz - 1)]))
    with pytest.raises(InputError, match="not uniform"):
        export_bioimageio(models["zaugnet"], uneven, tmp_path / "m.zip")
    with pytest.raises(ExportError, match="not an SPDX licence"):  # before the model is even looked for
        export_bioimageio(tmp_path / "no_model", small, tmp_path / "m.zip", license="MY-OWN", test=False)
    with pytest.raises(InputError, match="no_model does not exist; give the folder of a model"):
        export_bioimageio(tmp_path / "no_model", small, tmp_path / "m.zip", test=False)
    assert not list(tmp_path.glob("*.zip"))


def test_export_warns_about_what_a_shared_package_would_claim():
    from types import SimpleNamespace

    from zaug.export import NO_AUTHOR, _warn_about_what_is_shared

    losing = SimpleNamespace(config=SimpleNamespace(self_check={"gain_db": -0.23}))
    with pytest.warns(ZaugWarning) as caught:
        _warn_about_what_is_shared(losing, None)
    messages = [str(w.message) for w in caught]
    assert any(NO_AUTHOR in m and "--author NAME" in m for m in messages)
    assert any("-0.23 dB" in m and "worse than interpolation" in m for m in messages)
    winning = SimpleNamespace(config=SimpleNamespace(self_check={"gain_db": 0.5}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_about_what_is_shared(winning, ["A. Tester"])


def _consumer_and_zaug(package, model_dir, stack, spacing, fixed):
    """bioimageio.core's run of ``package`` on ``stack`` (z step 1.16), and zaug's restoration with its range."""
    import bioimageio.core as core

    descr = core.load_description(package)
    sample = core.predict(model=descr, inputs={"raw": core.Tensor.from_numpy(stack[None], dims=("batch", "z", "y", "x"))})
    z = np.arange(len(stack)) * 1.16
    tiles = RestorationTiles(resolve(str(model_dir), device="cpu"), "mean")
    tiles.range = tuple(fixed["intensity_range"])
    return sample.members["output"].data.values[0], tiles.interpolate(stack, z, output_positions(z, z_spacing=spacing))


def test_selfnet_package_restores_like_zaug(tmp_path):
    core = pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    full = load_sample()
    coarse = full.replace(data=full.data[::4, 40:88, 40:96], voxel_size=(1.16, 0.26, 0.26))
    model_dir = selfnet.fit([coarse], tmp_path / "sn", {"steps": 2, "progress": False})
    with pytest.warns(UserWarning, match="resamples its axial planes"):  # 4.46-fold anisotropy, sampled x3
        export_bioimageio(model_dir, coarse, tmp_path / "x3.zip", factor=3, test=False)
    result = export_bioimageio(model_dir, coarse, tmp_path / "sn.zip")  # x4: the anisotropy rounded
    assert result["test"] == "passed" and set(result["fixed"]) == {"intensity_range"}
    descr = core.load_description(tmp_path / "sn.zip")
    assert descr.outputs[0].axes[1].scale * 4 == descr.inputs[0].axes[1].scale
    stack = np.asarray(coarse.data[3:11, :40, :44], np.float32)  # another size than the test tensor
    got, expected = _consumer_and_zaug(tmp_path / "sn.zip", model_dir, stack, 0.29, result["fixed"])
    assert got.shape == expected.shape == (29, 40, 44)
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())


@pytest.fixture(scope="module")
def coarse():
    full = load_sample()
    return full.replace(data=np.ascontiguousarray(full.data[::4, 40:88, 40:96]), voxel_size=(1.16, 0.26, 0.26))


@pytest.fixture(scope="module")
def resin_dir(coarse, tmp_path_factory):
    return resin.fit([coarse], tmp_path_factory.mktemp("resin") / "m", {"steps": 2, "progress": False, "cube": 16})


def test_resin_volume_module_equals_zaug_restoration(coarse, resin_dir):
    model = resolve(str(resin_dir), device="cpu")
    model.tile, model.overlap = 16, 6  # cubes smaller than the 29 x 48 x 56 output: the blended path
    stack = np.asarray(coarse.data, np.float32)
    z = coarse.z_coords()
    tiles = RestorationTiles(model, "mean").for_stack(stack, z, None)
    low, high = tiles.range
    module = ZVolumeRestorer(model.config.net["net"], low, high, 0.25, tile=16, overlap=6).eval()
    module.restore.load_state_dict(model.net.state_dict())
    packaged = module(torch.from_numpy(stack[None])).numpy()[0]
    expected = tiles.interpolate(stack, z, output_positions(z, z_spacing=0.29))
    assert packaged.shape == expected.shape == (4 * (coarse.nz - 1) + 1,) + stack.shape[1:]
    assert np.abs(packaged - expected).max() < 1e-4 * float(high - low)
    assert np.abs(packaged[::4] - stack).max() > 1e-3 * float(high - low)  # restored, not copied


def test_resin_package_restores_like_zaug(coarse, resin_dir, tmp_path):
    pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    result = export_bioimageio(resin_dir, coarse, tmp_path / "resin.zip")  # x4: the anisotropy rounded
    assert result["test"] == "passed" and set(result["fixed"]) == {"intensity_range"}
    with zipfile.ZipFile(tmp_path / "resin.zip") as package:
        rdf = package.read("rdf.yaml").decode()
    assert "ZVolumeRestorer" in rdf and "sr_3dunet" in rdf
    stack = np.asarray(coarse.data[2:9, :36, :40], np.float32)
    got, expected = _consumer_and_zaug(tmp_path / "resin.zip", resin_dir, stack, 0.29, result["fixed"])
    assert got.shape == expected.shape == (25, 36, 40)
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())


def test_oblique_resin_package_restores_at_the_stack_sampling(tmp_path):
    """RESIN of a 45 degree blur on a near-isotropic stack: the default package keeps the z sampling (factor 1)."""
    pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    full = load_sample()
    near = full.replace(data=np.ascontiguousarray(full.data[10:34, 40:72, 40:76]))  # (0.29, 0.26, 0.26) um
    model_dir = resin.fit([near], tmp_path / "oblique", {"steps": 2, "progress": False, "cube": 16,
                                                         "axial_angle": 45})
    result = export_bioimageio(model_dir, near, tmp_path / "oblique.zip")
    assert result["test"] == "passed" and result["max_difference"] < 1e-4 * float(near.data.max())
    stack = np.asarray(near.data[:12], np.float32)
    got, expected = _consumer_and_zaug(tmp_path / "oblique.zip", model_dir, stack, 1.16, result["fixed"])
    assert got.shape == expected.shape == stack.shape  # z step 1.16 in, 1.16 out
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())
    with pytest.raises(InputError, match="at least 2"):  # interpolation models still need 2
        check_export_factor(1, plus=True)


def test_niiv_package_restores_like_zaug(coarse, tmp_path):
    core = pytest.importorskip("bioimageio.core", reason="pip install 'zaug[bioimageio]' to test the export")
    model_dir = niiv.fit([coarse], tmp_path / "niiv", {"steps": 2, "progress": False})
    result = export_bioimageio(model_dir, coarse, tmp_path / "niiv.zip", factor=2)
    assert result["test"] == "passed" and result["max_difference"] < 1e-4 * float(coarse.data.max())
    descr = core.load_description(tmp_path / "niiv.zip")
    assert descr.outputs[0].axes[1].scale * 2 == descr.inputs[0].axes[1].scale
    stack = np.asarray(coarse.data[1:10, :30, :42], np.float32)
    got, expected = _consumer_and_zaug(tmp_path / "niiv.zip", model_dir, stack, 0.58, result["fixed"])
    assert got.shape == expected.shape == (17, 30, 42)
    assert np.abs(got - expected).max() < 1e-4 * float(stack.max())
    assert np.abs(got[1::2] - 0.5 * (stack[:-1] + stack[1:])).max() > 1  # decoded, not averaged


def test_export_without_bioimageio_says_how_to_install(models, small, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r"pip install 'zaug\[bioimageio\]'"):
        export_bioimageio(models["zaugnet"], small, tmp_path / "m.zip")
    assert main(["export", models["zaugnet"], str(sample_path()), "-o", str(tmp_path / "m.zip")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zaug[bioimageio]" in err
