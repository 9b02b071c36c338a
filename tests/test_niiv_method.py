"""niiv training, model files, restoration through the CLI and the restoration evaluation."""

import json

import numpy as np
import pytest
from scipy import ndimage

from zaug import InputError, Volume
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
from zaug.io import read_volume, write_volume
from zaug.methods import niiv, resolve
from zaug.report import write_restoration_report
from zaug.restore import restore_volume
from zaug.sample import load_sample

TINY = {"steps": 3, "progress": False}


@pytest.fixture(scope="module")
def aniso():
    """The sample made 4x anisotropic (every 4th plane kept)."""
    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[::4, :64, :64]), voxel_size=(1.16, 0.26, 0.26))


def test_fit_uses_the_voxel_size_factor_unrounded(aniso, tmp_path):
    out = niiv.fit([aniso], tmp_path / "m", TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "niiv" and config["factor"] == pytest.approx(1.16 / 0.26)
    assert config["summary"]["steps"] == 3 and {"model", "linear", "cubic"} <= set(config["self_check"])
    assert (out / "model.safetensors").exists()


def test_factor_override_and_nearly_isotropic_refused(aniso, tmp_path):
    config = json.loads((niiv.fit([aniso], tmp_path / "m", dict(TINY, factor=3.0)) / "config.json").read_text())
    assert config["factor"] == 3.0
    with pytest.raises(InputError, match="isotropic"):
        niiv.fit([aniso.replace(voxel_size=(0.3, 0.26, 0.26))], tmp_path / "n", TINY)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_restore_keeps_dtype_and_writes_isotropic_voxel_size(aniso, tmp_path, dtype):
    data = (aniso.data.astype(np.float32) / aniso.data.max() * (200 if dtype == np.uint8 else 50000)).astype(dtype)
    vol = aniso.replace(data=data)
    model = niiv.load(niiv.fit([vol], tmp_path / "m", TINY))
    out = restore_volume(vol, model)
    assert out.dtype == dtype and out.voxel_size == pytest.approx((0.26, 0.26, 0.26))
    assert out.nz == int(round((vol.nz - 1) * 1.16 / 0.26)) + 1 and out.spatial_shape[1:] == (64, 64)


def test_untrained_niiv_is_bilinear_so_training_must_change_it(aniso, tmp_path):
    """The decoder starts as bilinear interpolation: after training, outputs differ from linear."""
    model = niiv.load(niiv.fit([aniso], tmp_path / "m", dict(TINY, steps=5)))  # differs by 6e-3 already
    lin = resolve("linear")
    planes = np.asarray(aniso.data, np.float32)[:, 10, :][None] / 40000
    rows = np.linspace(0, aniso.nz - 1, 20)
    from zaug.restore import ClassicalRestorer

    assert np.abs(model.restore_planes(planes, rows) - ClassicalRestorer("linear").restore_planes(planes, rows)).max() > 1e-4
    assert lin.name == "linear"


def test_cli_train_predict_restoration(run_cli, aniso, tmp_path):
    src = tmp_path / "a.tif"
    write_volume(aniso, src)
    proc = run_cli("train", src, "--method", "niiv", "--steps", "2", "-o", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert "self-check" in proc.stdout
    proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "iso.zarr")
    assert proc.returncode == 0, proc.stderr
    out = read_volume(tmp_path / "iso.zarr")
    assert out.voxel_size == pytest.approx((0.26, 0.26, 0.26)) and out.unit == "um"
    proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "half.tif", "--z-spacing", "0.58")
    assert proc.returncode == 0, proc.stderr
    assert read_volume(tmp_path / "half.tif").voxel_size[0] == pytest.approx(0.58)


def test_restoration_evaluation_classical_on_sample_and_report(tmp_path):
    vol = load_sample()
    vol = vol.replace(data=vol.data[:, :96, :96])
    result = evaluate_restoration(vol, 4, "avgpool", ["linear", "cubic"], keep_predictions=True)
    m = result["methods"]
    assert set(m) == {"linear", "cubic"}
    assert 20 < m["linear"]["psnr"] < 40 and set(m["cubic"]["cf_psnr"]) == {"low", "mid", "high"}
    # the degraded input is more anisotropic than the original
    assert result["reference"]["input"]["isotropy_ratio"] > result["reference"]["original"]["isotropy_ratio"]
    report = write_restoration_report(result, tmp_path / "rep")
    assert "isotropy ratio" in report.read_text()
    assert (tmp_path / "rep" / "xz_views.png").stat().st_size > 5000
    assert (tmp_path / "rep" / "spectra_original.png").exists()


def test_restoration_evaluation_with_niiv_tiny(tmp_path):
    vol = load_sample()
    vol = vol.replace(data=vol.data[:, :64, :64])
    result = evaluate_restoration(vol, 4, "gaussian", ["cubic", "niiv"], train_options=TINY)
    assert set(result["methods"]) == {"cubic", "niiv"}
    assert np.isfinite(result["methods"]["niiv"]["psnr"])
    # the blur the model assumed is reported next to the simulated one (both factor / 2 here)
    assert result["methods"]["niiv"]["training"]["sigma"] is None
    assert "niiv: " in (table := format_restoration_table(result)) and "blur model sigma 2.00 (factor / 2)" in table
    assert "simulated 2.00" in table and "cubic: " not in table
    # a verdict in words, whichever way it goes
    from zaug.evaluate_restore import restoration_verdicts

    gain = result["methods"]["niiv"]["psnr"] - result["methods"]["cubic"]["psnr"]
    (line,) = restoration_verdicts(result)
    assert line.startswith(f"niiv: {gain:+.2f} dB PSNR and ") and "against cubic interpolation" in line
    assert line in table
    assert ("prefer cubic" in line) == (gain <= 0.05)
    fake = {"methods": {"linear": {"psnr": 30.0, "ssim": 0.8}, "cubic": {"psnr": 29.0, "ssim": 0.8},
                        "selfnet": {"psnr": 29.5, "ssim": 0.7}}}
    assert restoration_verdicts(fake) == ["selfnet: -0.50 dB PSNR and -0.1000 SSIM against linear interpolation, the "
                                          "better classical method here. It is worse than linear interpolation on "
                                          "this simulated anisotropy: prefer linear (or train longer, or on this "
                                          "stack's own blur)."]


def test_drop_slice_evaluation_refuses_restoration_methods(run_cli):
    from zaug.sample import sample_path

    proc = run_cli("evaluate", sample_path(), "--factor", "2", "--methods", "linear,niiv")
    assert proc.returncode != 0 and "--restore" in proc.stderr


def test_cli_sigma_reaches_the_model_and_is_refused_where_it_means_nothing(run_cli, aniso, tmp_path):
    src = tmp_path / "a.tif"
    write_volume(aniso, src)
    for extra, phrase in ((["--sigma", "1.5"], "gaussian degradation only"),  # niiv's default is avgpool
                          (["--degradation", "gaussian", "--sigma", "-1"], "zero or positive")):
        proc = run_cli("train", src, "--method", "niiv", "--steps", "1", "-o", tmp_path / "bad", *extra)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert phrase in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "bad" / "config.json").exists()
    proc = run_cli("train", src, "--method", "niiv", "--steps", "1", "--degradation", "gaussian",
                   "--sigma", "1.5", "-o", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["degradation"], config["sigma"]) == ("gaussian", 1.5)


@pytest.mark.slow  # (suite time) the measurement itself: tests/test_spectral_blur.py, in the default suite
def test_cli_sigma_auto_measures_the_blur_or_says_why_not(run_cli, aniso, tmp_path):
    rng = np.random.default_rng(1)
    spots = np.zeros((64, 64, 64), np.float32)
    spots[tuple(rng.integers(6, 58, (3, 40)))] = 1.0
    points = Volume((ndimage.gaussian_filter(spots, (3.0, 1.0, 1.0))[::4] * 60000).astype(np.uint16), (4.0, 1.0, 1.0))
    for vol, name in ((points, "points"), (aniso, "nuclei")):
        write_volume(vol, tmp_path / f"{name}.tif")
        proc = run_cli("train", tmp_path / f"{name}.tif", "--method", "niiv", "--steps", "1", "--degradation",
                       "gaussian", "--sigma", "auto", "-o", tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["renoise"] is True
        if name == "points":  # sqrt(3^2 - 1^2) = 2.83 beyond the lateral PSF
            assert config["sigma"] == pytest.approx(2.83, abs=0.3) and "axial blur measured" in proc.stdout
        else:  # the sample's nuclei are wider across than along z: their widths say nothing, the spectrum does
            estimate = config["sigma_estimate"]
            assert estimate["method"] == "spectrum" and "at least as wide across" in estimate["widths_reason"]
            assert 0 < config["sigma"] < 2 and "measured from the power spectra" in proc.stdout
            assert "default sigma" not in proc.stderr and "Traceback" not in proc.stderr


def test_cli_options_a_method_does_not_use_are_refused(run_cli, aniso, tmp_path):
    src = tmp_path / "a.tif"
    write_volume(aniso, src)
    for method, extra, flag in (("zaugnet", ["--sigma", "2"], "--sigma"), ("niiv", ["--axial-angle", "30"], "--axial-angle"),
                                ("selfnet", ["--axial-angle", "45"], "--axial-angle")):
        proc = run_cli("train", src, "--method", method, "--steps", "1", "-o", tmp_path / method, *extra)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert f"{flag} does not apply to {method}" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / method).exists()
    proc = run_cli("evaluate", src, "--factor", "2", "--simulate-sigma", "3")
    assert proc.returncode != 0 and "--simulate-sigma needs --restore" in proc.stderr
    proc = run_cli("evaluate", src, "--factor", "4", "--restore", "--simulate-sigma", "3")  # avgpool by default
    assert proc.returncode != 0 and "needs the gaussian degradation" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("method", ["niiv", "selfnet", "resin"])
def test_training_stacks_of_different_anisotropy_are_said_to_be_degraded_as_the_first(method, tmp_path):
    from zaug import ZaugWarning
    from zaug.methods import learned_module

    data = load_sample().data[::4, :64, :64]
    first, coarser = Volume(data, (1.16, 0.26, 0.26), "um"), Volume(data, (2.0, 0.26, 0.26), "um")
    with pytest.warns(ZaugWarning, match=r"differ in anisotropy \(stack 2: 7.69-fold\); all are degraded as the "
                                         r"first stack's 4.46-fold"):  # was: silently
        learned_module(method).fit([first, coarser], tmp_path / "m", {"steps": 2, "check_only": True})
    assert not (tmp_path / "m").exists()
