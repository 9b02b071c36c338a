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
