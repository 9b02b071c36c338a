import json
import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from zaug import Volume
from zaug.io import read_volume
from zaug.isotropy import axial_lateral_spectra, isotropy_ratio, plot_spectra, spectrum_extent
from zaug.report import write_prediction_report

from .conftest import shared


def _spots(shape, sigma, n=12, seed=0, noise=0.0) -> np.ndarray:
    """``n`` separated Gaussian spots of per-axis ``sigma`` (voxels), peak 1, optional noise."""
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, np.float32)
    pad = [int(3 * s) + 2 for s in sigma]
    for _ in range(n):
        vol[tuple(int(rng.uniform(p, s - p)) for p, s in zip(pad, shape))] = 1.0
    vol = ndimage.gaussian_filter(vol, sigma)
    vol /= vol.max()
    return vol + noise * rng.standard_normal(shape).astype(np.float32)


def test_isotropic_spots_give_a_ratio_of_one():
    r = isotropy_ratio(_spots((40, 64, 64), (1.2, 1.2, 1.2)), (1.0, 1.0, 1.0))
    assert r["count"] >= 8
    assert r["ratio"] == pytest.approx(1.0, abs=0.05)
    assert r["lateral_fwhm"] == pytest.approx(2.355 * 1.2, rel=0.06)


def test_the_width_of_an_elongated_structure_is_taken_across_it():
    # spots 3 times longer along x than along y and z: isotropic in the z-y plane
    # (the mean of the y and x widths would read 0.51, and at 30 degrees 0.68 instead of 0.86)
    r = isotropy_ratio(_spots((40, 64, 96), (1.2, 1.2, 3.6)), (1.0, 1.0, 1.0))
    assert r["count"] >= 8 and r["ratio"] == pytest.approx(1.0, abs=0.05)
    turned = ndimage.rotate(_spots((40, 96, 96), (1.2, 1.2, 3.6)), 30, axes=(1, 2), reshape=False, order=1)
    assert isotropy_ratio(turned, (1.0, 1.0, 1.0))["ratio"] > 0.8


@pytest.mark.parametrize("k", [2, 3])
def test_spots_elongated_k_fold_along_z_give_a_ratio_of_k(k):
    r = isotropy_ratio(_spots((48, 64, 64), (1.2 * k, 1.2, 1.2), noise=0.02), (1.0, 1.0, 1.0))
    assert r["count"] >= 8
    assert r["ratio"] == pytest.approx(k, rel=0.08)


def test_ratio_is_in_physical_units():
    # spots round in physical space, sampled at 2 um in z and 1 um laterally
    vol = Volume(_spots((24, 64, 64), (1.0, 2.0, 2.0)), (2.0, 1.0, 1.0), "um")
    r = isotropy_ratio(vol)
    assert r["unit"] == "um" and r["count"] >= 8
    assert r["ratio"] == pytest.approx(1.0, abs=0.1)
    assert isotropy_ratio(vol.data, (1.0, 1.0, 1.0))["ratio"] == pytest.approx(0.5, abs=0.05)


def test_nothing_to_measure_gives_nan_and_count_zero():
    for data in (np.zeros((10, 20, 20)), np.full((10, 20, 20), 3.0)):
        r = isotropy_ratio(data, (1.0, 1.0, 1.0))
        assert r["count"] == 0 and math.isnan(r["ratio"]) and math.isnan(r["axial_fwhm"])


def test_spectra_extents_match_for_isotropic_data_and_not_for_z_blurred_data(tmp_path):
    noise = np.random.default_rng(0).random((32, 64, 64))
    iso = axial_lateral_spectra(ndimage.gaussian_filter(noise, 2), (1.0, 1.0, 1.0))
    blurred = axial_lateral_spectra(ndimage.gaussian_filter(noise, (6, 2, 2)), (1.0, 1.0, 1.0))
    assert iso["extent_ratio"] == pytest.approx(1.0, abs=0.1)
    assert blurred["extent_ratio"] > 2.0
    assert iso["xy"]["log_power"].shape == (64, 64) and iso["xz"]["log_power"].shape == (32, 64)
    assert iso["axial"]["freq"].max() == pytest.approx(0.5)  # cycles per unit, z Nyquist
    # physical units: the same isotropic object sampled every 3 units in z
    fine = ndimage.gaussian_filter(np.random.default_rng(1).random((96, 48, 48)), 2)
    coarse = axial_lateral_spectra(fine[::3], (3.0, 1.0, 1.0))
    assert coarse["axial"]["freq"].max() == pytest.approx(1 / 6, rel=0.05)
    assert coarse["extent_ratio"] == pytest.approx(1.0, abs=0.15)
    path = plot_spectra(blurred, tmp_path / "spectra.png", title="blurred")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_spectrum_extent():
    f = np.linspace(0, 1, 11)
    p = np.where(f < 0.35, 1.0, 0.1)
    assert spectrum_extent(f, p, floor=0.1, fraction=1.0) == pytest.approx(0.3)
    assert math.isnan(spectrum_extent(f, np.zeros(11)))


def test_real_anisotropic_stack_is_measured_anisotropic():
    vol = read_volume(shared("neubias_xyz_8bit__chromosomes.tif"))
    r = isotropy_ratio(vol)
    assert r["count"] > 0 and math.isfinite(r["ratio"]) and r["ratio"] > 1.5
    assert axial_lateral_spectra(vol)["extent_ratio"] > 1.5


def _blobs(lateral_sigma: float, n: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = np.zeros((n, n, n), np.float32)
    points[tuple(rng.integers(4, n - 4, (3, 30)))] = 1.0
    return ndimage.gaussian_filter(points, (3.0, lateral_sigma, lateral_sigma))


def test_prediction_report_warns_when_the_output_is_narrower_across_than_the_input(tmp_path):
    before = Volume(_blobs(2.0)[::4], (4.0, 1.0, 1.0), "um", metadata={"source": "in.tif"})
    kept = Volume(_blobs(2.0), (1.0, 1.0, 1.0), "um")  # restored along z only: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_prediction_report(before, kept, tmp_path / "kept")
    assert json.loads((tmp_path / "kept" / "results.json").read_text())["warnings"] == []
    grains = Volume(_blobs(0.7), (1.0, 1.0, 1.0), "um")  # narrower across than the input could hold
    with pytest.warns(UserWarning, match="noise sharpened into grains"):
        report = write_prediction_report(before, grains, tmp_path / "grains")
    assert "**Warning:** the output's thin structures are" in report.read_text()
    assert json.loads((tmp_path / "grains" / "results.json").read_text())["warnings"]


def test_plain_interpolation_of_the_chromosomes_is_not_taken_for_noise_grains(tmp_path):
    """A finer grid finds more, narrower structures: the output is read against the input interpolated onto it."""
    from zaug.restore import ClassicalRestorer, restore_volume

    vol = read_volume(shared("neubias_xyz_8bit__chromosomes.tif"))
    crop = vol.replace(data=np.ascontiguousarray(vol.data[:, 28:124, 15:111]))
    cubic = restore_volume(crop, ClassicalRestorer("cubic"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = write_prediction_report(crop, cubic, tmp_path / "cubic")
    rows = json.loads((tmp_path / "cubic" / "results.json").read_text())
    assert rows["warnings"] == [] and rows["interpolated"]["shape"] == rows["output"]["shape"]
    assert rows["output"]["lateral_fwhm"] < 0.75 * rows["input"]["lateral_fwhm"]  # what used to warn
    assert "| interpolated |" in report.read_text()


def _z_blurred_noise_field(noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """An isotropic smooth random field (unit variance) and the same blurred along z (sigma 4), both noisy."""
    rng = np.random.default_rng(0)
    truth = ndimage.gaussian_filter(rng.random((96, 64, 64)), 1.5).astype(np.float32)
    truth = (truth - truth.mean()) / truth.std()
    blurred = ndimage.gaussian_filter1d(truth, 4.0, axis=0)
    return (truth + noise * rng.standard_normal(truth.shape).astype(np.float32),
            blurred + noise * rng.standard_normal(truth.shape).astype(np.float32))


def test_interpolation_along_z_leaves_the_spectral_extent_ratio_where_it_was():
    from zaug.restore import ClassicalRestorer, restore_volume

    truth, blurred = _z_blurred_noise_field()
    acquired = Volume(blurred[::4], (4.0, 1.0, 1.0), "um")  # blurred along z, every 4th plane: anisotropic
    before = axial_lateral_spectra(acquired)["extent_ratio"]
    assert before > 2.5
    for method in ("linear", "cubic"):  # no axial detail added: the ratio stays (it read 2.1 and 1.7)
        after = axial_lateral_spectra(restore_volume(acquired, ClassicalRestorer(method), z_spacing=1.0))
        assert after["extent_ratio"] == pytest.approx(before, rel=0.1), method
    # structure gained along z still reads nearer 1: the truth, and the blur undone by its known inverse
    assert axial_lateral_spectra(truth)["extent_ratio"] == pytest.approx(1.0, abs=0.1)
    spectrum = np.fft.rfft(blurred, axis=0)
    gain = np.exp(-2 * (np.pi * 4.0 * np.fft.rfftfreq(len(blurred))) ** 2)[:, None, None]
    deblurred = np.fft.irfft(spectrum * gain / (gain**2 + 1e-2), n=len(blurred), axis=0)
    ratio_blurred = axial_lateral_spectra(blurred)["extent_ratio"]
    assert axial_lateral_spectra(deblurred)["extent_ratio"] < ratio_blurred - 0.5


def test_cubic_interpolation_of_the_chromosomes_stack_keeps_its_spectral_extent_ratio():
    from zaug.restore import ClassicalRestorer, restore_volume

    vol = read_volume(shared("neubias_xyz_8bit__chromosomes.tif"))
    crop = vol.replace(data=np.ascontiguousarray(vol.data[:, 40:104, 30:94]))  # 4.4-fold anisotropic
    before = axial_lateral_spectra(crop)
    after = axial_lateral_spectra(restore_volume(crop, ClassicalRestorer("cubic")))  # isotropic voxels
    assert before["extent_ratio"] > 1.5
    assert after["extent_ratio"] == pytest.approx(before["extent_ratio"], rel=0.15)  # read 0.60 against 2.28
    assert after["axial"]["floor"].shape == after["axial"]["freq"].shape


def test_isotropy_ratio_says_why_it_measured_nothing():
    spots = _spots((40, 64, 64), (1.2, 1.2, 1.2))
    assert isotropy_ratio(spots)["reason"] is None
    too_few = "its 4 planes are too few for an axial profile (at least 5 are needed)"
    assert isotropy_ratio(spots[18:22])["reason"] == too_few
    assert isotropy_ratio(np.zeros((10, 20, 20)))["reason"] == "no bright local maximum stands out in it"
    long = _spots((60, 64, 64), (6.0, 1.2, 1.2))[24:36]  # spots longer along z than the stack is deep
    assert "falls to half its height along z within its 12 planes" in isotropy_ratio(long)["reason"]


def test_prediction_report_measures_uneven_planes_at_their_positions(tmp_path):
    fine = _spots((64, 64, 64), (2.0, 2.0, 2.0), n=20)
    idx = np.cumsum(np.r_[0, np.tile([1, 3], 16)])[:32]  # planes 1 and 3 apart in turn, 2 on average
    even = Volume(fine[::2], (2.0, 1.0, 1.0), "um")
    uneven = Volume(fine[idx], (2.0, 1.0, 1.0), "um", z_positions=idx.astype(float))
    write_prediction_report(even, even, tmp_path / "even")
    report = write_prediction_report(uneven, uneven, tmp_path / "uneven").read_text()
    ratio = {k: json.loads((tmp_path / k / "results.json").read_text())["input"]["isotropy_ratio"]
             for k in ("even", "uneven")}
    assert ratio["uneven"] == pytest.approx(ratio["even"], rel=0.1)  # at the mean spacing it read 0.65 of it
    assert "unevenly spaced" in report and "| input | [32, 64, 64] |" in report


def test_prediction_report_says_what_it_measured_and_with_which_model(tmp_path):
    spots = _spots((16, 48, 48), (1.5, 1.5, 1.5))
    two = Volume(np.stack([np.zeros_like(spots), spots]), (1.0, 1.0, 1.0), "pixel", axes="CZYX",
                 metadata={"crop": [8, 16, 32, 2, 12]})
    text = write_prediction_report(two, two, tmp_path / "r").read_text()
    # a blank first channel measured nothing (NaN): the clearest channel is measured instead
    assert "Measured on channel 1 only, the clearest" in text and "the input has 2 channels" in text
    measured = json.loads((tmp_path / "r" / "results.json").read_text())["input"]
    assert np.isfinite(measured["isotropy_ratio"]) and measured["profiles"] > 0
    assert "central 32 x 32 pixel window (rows from 8, columns from 16) and planes 2 to 11" in text
    assert "The voxel size is unknown (pixels)" in text
    assert "Model:" not in text

    class Model:  # what a loaded learned model offers
        config = type("Config", (), {"method": "niiv", "preset": "fast", "self_check": {
            "planes": 1, "gain_db": 0.4, "gain_over_smoothing_db": -0.12, "model": {"sharpness": 0.45}}})()
        training_summary = {"steps": 120, "seconds": 61.0, "self_check_gain_db": 0.4}

    one = Volume(spots, (2.0, 1.0, 1.0), "um")
    text = write_prediction_report(one, one, tmp_path / "m", model=Model()).read_text()
    assert "Model: niiv, `fast` preset, trained 120 steps (61 s); self-check on planes held out" in text
    assert "+0.40 dB over the best interpolation, -0.12 dB over interpolation followed by the best in-plane" in text
    assert "sharpness 0.45" in text and "on 1 plane only: too few to go by" in text
    assert "channel" not in text and "pixels" not in text


def test_prediction_report_warns_when_new_planes_are_smoother_than_the_acquired_ones(tmp_path):
    from zaug.predict import upsample_z

    before = Volume(_spots((12, 64, 64), (0.8, 1.5, 1.5), n=30, noise=0.05), (2.0, 1.0, 1.0), "um")
    linear = upsample_z(before, "linear", factor=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_prediction_report(before, linear, tmp_path / "linear")
    rows = json.loads((tmp_path / "linear" / "results.json").read_text())
    assert 0.5 < rows["output"]["new_plane_detail"] == pytest.approx(rows["interpolated"]["new_plane_detail"])
    smooth = linear.data.copy()
    smooth[1::2] = ndimage.gaussian_filter(smooth[1::2], (0, 3, 3))  # a denoiser's new planes
    with pytest.warns(UserWarning) as said:
        report = write_prediction_report(before, linear.replace(data=smooth), tmp_path / "smooth").read_text()
    assert "the new planes carry much less fine detail than the acquired planes" in str(said[0].message)
    assert report.count("**Warning:**") == 1 and "Fine detail of the new planes" in report


def test_structures_wider_across_than_interpolation_gives_are_called_in_plane_smoothing():
    from zaug.report import widened_across

    rows = {"input": {"lateral_fwhm": 0.378}, "interpolated": {"lateral_fwhm": 0.357},
            "output": {"lateral_fwhm": 0.428}}  # a 3-minute ZAugNet of the yeast stack, x2
    assert "smoothed in-plane" in widened_across(rows, "um")
    rows["output"]["lateral_fwhm"] = 0.37
    assert widened_across(rows, "um") is None
    del rows["interpolated"]
    assert widened_across(rows, "um") is None  # the output's own planes: nothing to compare on the same grid


def test_an_interrupted_report_leaves_the_earlier_one_whole_and_no_new_folder(tmp_path, monkeypatch):
    import zaug.report

    spots = Volume(_spots((16, 48, 48), (1.5, 1.5, 1.5)), (1.0, 1.0, 1.0), "um")
    write_prediction_report(spots, spots, tmp_path / "r")
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}

    def interrupted(*args, **kwargs):  # Ctrl-C after the spectra figures were drawn
        raise KeyboardInterrupt

    monkeypatch.setattr(zaug.report, "_before_after_xz", interrupted)
    brighter = spots.replace(data=spots.data * 2)
    for folder, overwrite in (("r", True), ("new", False)):
        with pytest.raises(KeyboardInterrupt):
            write_prediction_report(brighter, brighter, tmp_path / folder, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before  # spectra_input.png was new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no "new", no hidden folder left
