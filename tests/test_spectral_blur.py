import warnings

import numpy as np
import pytest
from scipy import ndimage

from zaug import Volume
from zaug.data.lateral import measure_axial_sigma, resolve_sigma, simulate_anisotropy
from zaug.data.spectral_blur import estimate_axial_sigma_spectral, segment_power
from zaug.io import read_volume
from zaug.sample import sample_path

from .conftest import shared


def _texture(axial_sigma: float, noise: float = 0.0, factor: int = 4, n: int = 160, seed: int = 0) -> Volume:
    """An isotropic random texture blurred along z, every ``factor``-th plane kept, then fresh camera noise."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), 1.5)
    texture /= texture.std()
    stack = ndimage.gaussian_filter1d(texture, axial_sigma, axis=0)[::factor] if axial_sigma else texture[::factor]
    stack = stack + noise * rng.standard_normal(stack.shape)
    return Volume(stack.astype(np.float32), (float(factor), 1.0, 1.0))


def test_segment_power_is_scaled_to_the_variance_of_white_noise():
    noise = 3.0 * np.random.default_rng(1).standard_normal((20000, 24))
    power = segment_power(noise, 1, 24)
    assert power[2:].mean() == pytest.approx(9.0, rel=0.03)
    assert power.shape == (13,)
    wave = np.sin(2 * np.pi * 5 * np.arange(24) / 24)[None].repeat(10, 0)  # five periods per segment
    assert int(np.argmax(segment_power(wave, 1, 24))) == 5


@pytest.mark.parametrize("axial_sigma", [2.0, 3.0])
def test_spectrum_recovers_an_axial_blur_under_fresh_noise(axial_sigma):
    # the noise comes after the blur, as in a microscope: the estimate must not take its flat floor for sharpness
    est = estimate_axial_sigma_spectral(_texture(axial_sigma, noise=0.3), 4.0)
    assert est["sigma"] == pytest.approx(axial_sigma, abs=0.3), est
    assert est["method"] == "spectrum" and est["signal_bins"] >= 3 and est["misfit"] < 0.3


def test_spectrum_declines_on_noise_and_on_an_unblurred_z():
    noise = Volume(np.random.default_rng(2).standard_normal((40, 128, 128)).astype(np.float32), (4.0, 1.0, 1.0))
    est = estimate_axial_sigma_spectral(noise, 4.0)
    assert est["sigma"] is None and "above the noise at only" in est["reason"]
    sharp = estimate_axial_sigma_spectral(_texture(0.0), 4.0)  # z exactly as sharp as the rows
    assert sharp["sigma"] is None and "no more blurred" in sharp["reason"]
    short = Volume(np.zeros((5, 64, 64), np.float32), (4.0, 1.0, 1.0))
    assert "at least 8 samples" in estimate_axial_sigma_spectral(short, 4.0)["reason"]


def test_auto_sigma_reads_the_spectrum_of_the_shipped_sample_where_widths_decline():
    # real confocal nuclei: flat, so their widths say nothing about the blur; the spectrum still orders the blurs
    sample = read_volume(sample_path())
    estimates = [measure_axial_sigma(simulate_anisotropy(sample, 4, "gaussian", sigma=s), 4.0) for s in (2, 3, 4)]
    assert all(e["method"] == "spectrum" and "wide across" in e["widths_reason"] for e in estimates)
    sigmas = [e["sigma"] for e in estimates]
    assert sigmas[0] < sigmas[1] < sigmas[2], sigmas
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a measured blur: no warning about falling back to the default
        sigma, estimate = resolve_sigma("auto", simulate_anisotropy(sample, 4, "gaussian", sigma=3), 4.0)
    assert sigma == pytest.approx(sigmas[1]) and estimate["method"] == "spectrum"


def test_both_estimates_declining_falls_back_to_the_default_with_both_reasons():
    noise = Volume(np.random.default_rng(3).standard_normal((40, 96, 96)).astype(np.float32), (4.0, 1.0, 1.0))
    with pytest.warns(UserWarning, match=r"default sigma 2\.00 pixels") as caught:
        sigma, estimate = resolve_sigma("auto", noise, 4.0)
    assert sigma is None and estimate["sigma"] is None
    message = str(caught[0].message)
    assert estimate["reason"] in message and ", and the z spectrum stands above the noise at only" in message


@pytest.mark.parametrize("simulated", [2.0, 3.0])
def test_spectrum_recovers_a_simulated_blur_on_real_vessels(simulated):
    vessels = read_volume(shared("vesselexpress_lsfm_vessels_000.tif"))
    est = estimate_axial_sigma_spectral(simulate_anisotropy(vessels, 4, "gaussian", sigma=simulated), 4.0)
    assert est["sigma"] == pytest.approx(simulated, abs=0.3), est  # light-sheet: a little blur of its own
