import warnings

import numpy as np
import pytest
from scipy import ndimage

from zaug import InputError, Volume
from zaug.data.lateral import (
    anisotropy_factor,
    degradation_model,
    degrade_avgpool,
    degrade_gaussian,
    estimate_axial_sigma,
    gaussian_weights,
    lateral_pairs,
    renoise_option,
    resolve_sigma,
    sample_positions,
    simulate_anisotropy,
    target_rows,
)


def _stripes(period_axis: int, shape=(40, 36)) -> np.ndarray:
    """+1/-1 stripes at the Nyquist frequency along ``period_axis``."""
    idx = np.indices(shape)[period_axis]
    return np.where(idx % 2 == 0, 1.0, -1.0).astype(np.float32)


def test_anisotropy_factor_is_a_float_never_rounded():
    vol = Volume(np.zeros((3, 8, 8)), (0.15, 0.0338542, 0.0338542), "um")
    assert anisotropy_factor(vol) == pytest.approx(0.15 / 0.0338542)
    assert anisotropy_factor(vol, 2.5) == 2.5
    with pytest.raises(InputError):
        anisotropy_factor(Volume(np.zeros((3, 8, 8))))  # no voxel size in the file
    with pytest.raises(InputError):
        anisotropy_factor(vol, 0.5)


@pytest.mark.parametrize("factor", [2, 3, 2.5, 4.4])
@pytest.mark.parametrize("axis", [0, 1])
def test_output_shapes_for_integer_and_non_integer_factors(factor, axis):
    plane = np.random.default_rng(0).random((40, 36)).astype(np.float32)
    n = plane.shape[axis]
    pooled = degrade_avgpool(plane, factor, axis)
    gauss = degrade_gaussian(plane, factor, axis)
    assert pooled.shape[axis] == int(np.floor(n / factor)) == len(sample_positions(n, factor, "avgpool"))
    assert gauss.shape[axis] == int(np.floor((n - 1) / factor)) + 1 == len(sample_positions(n, factor, "gaussian"))
    assert pooled.shape[1 - axis] == gauss.shape[1 - axis] == plane.shape[1 - axis]
    assert pooled.dtype == gauss.dtype == np.float32


def test_avgpool_preserves_the_mean_intensity():
    plane = np.random.default_rng(1).random((48, 30)) * 100
    assert degrade_avgpool(plane, 4, 0).mean() == pytest.approx(plane.mean(), rel=1e-6)
    assert degrade_avgpool(plane, 3, 1).mean() == pytest.approx(plane.mean(), rel=1e-6)
    # non-integer: the covered part [0, 20 * 2.4) = 48 pixels is the whole axis
    assert degrade_avgpool(plane, 2.4, 0).mean() == pytest.approx(plane.mean(), rel=1e-6)
    # area weights: a constant stays constant, whatever the factor
    np.testing.assert_allclose(degrade_avgpool(np.full((23, 5), 7.0), 2.7, 0), 7.0, rtol=1e-6)


def test_low_res_samples_sit_where_sample_positions_says():
    ramp = np.repeat(np.arange(60, dtype=np.float64)[:, None], 3, axis=1)
    # pooling a ramp gives the ramp at the bin centres (i + 0.5) f - 0.5 (exact for integer f)
    np.testing.assert_allclose(degrade_avgpool(ramp, 4, 0)[:, 0], sample_positions(60, 4, "avgpool"), atol=1e-5)
    np.testing.assert_allclose(degrade_avgpool(ramp, 2.5, 0)[:, 0], sample_positions(60, 2.5, "avgpool"), atol=0.1)
    # a blurred ramp is the ramp away from the borders: samples at i * f
    got = degrade_gaussian(ramp, 2.5, 0)[:, 0]
    want = sample_positions(60, 2.5, "gaussian")
    inner = (want > 8) & (want < 51)
    np.testing.assert_allclose(got[inner], want[inner], atol=1e-3)
    # target rows map the sample positions back to 0, 1, 2, ...
    for degradation in ("avgpool", "gaussian"):
        pos = sample_positions(60, 3, degradation)
        rows = target_rows(60, 3, degradation)
        np.testing.assert_allclose(rows[pos.astype(int)], np.arange(len(pos)), atol=1e-12)


@pytest.mark.parametrize("degradation", ["avgpool", "gaussian"])
def test_degradation_removes_high_frequencies_along_one_axis_only(degradation):
    deg = degrade_avgpool if degradation == "avgpool" else degrade_gaussian
    across = deg(_stripes(0), 2, 0)[2:-2]  # stripes varying along the degraded axis: gone (borders aside)
    along = deg(_stripes(1), 2, 0)  # stripes varying along the other axis: kept
    assert np.abs(across).max() < 0.02
    assert np.abs(along).min() > 0.99
    noise = np.random.default_rng(2).standard_normal((64, 64))
    assert deg(noise, 4, 1).std() < 0.55 * noise.std()


def test_lateral_pairs_shapes_orientation_and_coordinates():
    rng = np.random.default_rng(0)
    vol = Volume(rng.random((6, 40, 48)).astype(np.float32) * 1000, (2.0, 0.5, 0.5), "um")  # factor 4
    lr, hr, rows = lateral_pairs(vol, None, "avgpool", patch=(16, 12), rng=1, n=10)
    assert lr.shape == (10, 4, 12) and hr.shape == (10, 16, 12) and rows.shape == (16,)
    assert lr.dtype == hr.dtype == rows.dtype == np.float32
    # the degraded axis is axis 0 of every pair, and flips keep pairs consistent
    for lo, hi in zip(lr, hr):
        np.testing.assert_allclose(lo, degrade_avgpool(hi, 4, 0), atol=1e-5)
    np.testing.assert_allclose(rows, target_rows(16, 4, "avgpool"))
    # normalised with percentiles to about [0, 1]
    assert -0.05 < hr.min() and hr.max() < 1.05
    lr, hr, rows = lateral_pairs(vol, 2.5, "gaussian", patch=20, rng=rng, n=3)
    assert lr.shape == (3, 8, 20) and hr.shape == (3, 20, 20)


def test_lateral_pairs_favour_the_foreground():
    data = np.zeros((4, 64, 64), np.float32)
    data[:, 48:, 48:] = 1.0  # bright corner, 1/16 of the plane
    vol = Volume(data + 0.01 * np.random.default_rng(0).random(data.shape), (2.0, 1.0, 1.0))
    _, hr_plain, _ = lateral_pairs(vol, None, patch=16, rng=3, n=40, candidates=1)
    _, hr_fg, _ = lateral_pairs(vol, None, patch=16, rng=3, n=40, candidates=6)
    assert hr_fg.mean() > 2 * hr_plain.mean()


def test_lateral_pairs_refuse_patches_that_do_not_fit():
    vol = Volume(np.random.default_rng(0).random((3, 20, 20)), (2.0, 1.0, 1.0))
    with pytest.raises(InputError):
        lateral_pairs(vol, None, patch=32, rng=0, n=1)
    with pytest.raises(InputError):
        lateral_pairs(vol, 8, patch=12, rng=0, n=1)  # 1 low-res sample only
    with pytest.raises(InputError):
        lateral_pairs(vol, 2, "bicubic", patch=12, rng=0, n=1)


def test_simulate_anisotropy_shapes_voxel_size_and_positions():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, (2, 24, 10, 12)).astype(np.uint16)
    vol = Volume(data, (0.5, 0.25, 0.25), "um", axes="CZYX", z_origin=1.0)
    sim = simulate_anisotropy(vol, 3, "avgpool")
    assert sim.data.shape == (2, 8, 10, 12) and sim.data.dtype == np.uint16 and sim.axes == "CZYX"
    assert sim.voxel_size == (1.5, 0.25, 0.25)
    assert sim.metadata["z_sample_positions"] == [1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0, 22.0]
    assert sim.z_coords()[0] == pytest.approx(1.0 + 1.0 * 0.5)  # first sample centre, physical
    want = data[1, 3:6].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(sim.data[1, 1], want, atol=0.5)  # rounded back to uint16
    gauss = simulate_anisotropy(vol, 2.5, "gaussian")
    assert gauss.data.shape == (2, 10, 10, 12) and gauss.voxel_size[0] == pytest.approx(1.25)
    assert gauss.metadata["z_sample_positions"][:3] == [0.0, 2.5, 5.0]
    assert gauss.metadata["degradation"] == "gaussian" and gauss.metadata["simulated_factor"] == 2.5
    with pytest.raises(InputError):
        simulate_anisotropy(vol, 13)


def _spots(axial_sigma: float, lateral_sigma: float = 1.0, factor: int = 4, n: int = 64, seed: int = 0) -> Volume:
    """Point sources blurred by a Gaussian PSF, then every ``factor``-th plane kept."""
    rng = np.random.default_rng(seed)
    spots = np.zeros((n, n, n), np.float32)
    spots[tuple(rng.integers(6, n - 6, (3, 40)))] = 1.0
    blurred = ndimage.gaussian_filter(spots, (axial_sigma, lateral_sigma, lateral_sigma))[::factor]
    return Volume(blurred, (float(factor), 1.0, 1.0))


@pytest.mark.parametrize("axial_sigma", [2.0, 4.0])
def test_axial_sigma_estimate_recovers_the_blur_beyond_the_lateral_psf(axial_sigma):
    est = estimate_axial_sigma(_spots(axial_sigma), 4.0)
    # the degradation is applied to lateral planes that already carry the lateral PSF (sigma 1)
    assert est["sigma"] == pytest.approx(np.sqrt(axial_sigma**2 - 1.0), abs=0.25), est
    assert est["profiles"] >= 20 and est["axial_fwhm"] > est["lateral_fwhm_sampled"]


def test_axial_sigma_estimate_declines_when_structures_are_wider_across():
    flat = _spots(1.0, lateral_sigma=3.0)  # flat discs: wider laterally than along z
    est = estimate_axial_sigma(flat, 4.0)
    assert est["sigma"] is None and "at least as wide across" in est["reason"]
    with pytest.warns(UserWarning, match="default sigma 2.00 pixels"):
        sigma, measured = resolve_sigma("auto", flat, 4.0)
    # the power spectrum declines as well (a few sparse spots stand above no noise floor)
    assert sigma is None and measured["reason"].startswith(est["reason"])
    assert measured["spectrum_reason"] and measured["spectrum_reason"] in measured["reason"]
    assert resolve_sigma(1.5, flat, 4.0) == (1.5, {})


def test_sigma_auto_is_a_gaussian_option():
    assert degradation_model({"sigma": "AUTO"}, "gaussian") == ("gaussian", "auto")
    with pytest.raises(InputError, match="gaussian degradation only"):
        degradation_model({"sigma": "auto"}, "avgpool")
    with pytest.raises(InputError, match="a number of pixels or 'auto'"):
        degradation_model({"sigma": "wide"}, "gaussian")


def test_renoise_gives_degraded_planes_the_noise_of_real_axial_samples():
    rng = np.random.default_rng(0)
    noisy = Volume(0.5 + 0.05 * rng.standard_normal((8, 96, 96)).astype(np.float32), (4.0, 1.0, 1.0))
    smooth, _, _ = lateral_pairs(noisy, 4.0, "gaussian", patch=48, rng=1, n=24, percentiles=(0, 100))
    renoised, _, _ = lateral_pairs(noisy, 4.0, "gaussian", patch=48, rng=1, n=24, percentiles=(0, 100),
                                   renoise=True)
    voxel = np.std(np.asarray(noisy.data)) / np.ptp(np.asarray(noisy.data))  # normalised voxel noise
    assert np.std(smooth) == pytest.approx(voxel * np.sqrt(np.sum(gaussian_weights(2.0) ** 2)), rel=0.15)
    assert np.std(renoised) == pytest.approx(voxel, rel=0.1)  # the blur took 62% of the noise's std away
    assert renoise_option({}, "gaussian", None) is False
    with pytest.raises(InputError, match="gaussian degradation only"):
        renoise_option({"renoise": True}, "avgpool", None)


def test_default_sigma_far_from_the_measured_blur_is_pointed_out():
    wide = _spots(4.0)  # measured 3.87 pixels; factor / 2 assumes 2
    with pytest.warns(UserWarning, match=r"measure an axial blur of sigma 3\.[6-9]\d"):
        assert resolve_sigma(None, wide, 4.0, advise=True) == (None, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_sigma(None, _spots(2.2), 4.0, advise=True) == (None, {})  # 1.96: close to 2
        assert resolve_sigma(None, wide, 4.0) == (None, {})  # no advice asked


def test_sigma_auto_measures_the_clearest_channel_whatever_the_order():
    from zaug.data.lateral import measure_axial_sigma

    spots = np.zeros((64, 64, 64), np.float32)
    spots[tuple(np.random.default_rng(0).integers(6, 58, (3, 40)))] = 1.0
    blurred = ndimage.gaussian_filter(spots, (4.0, 1.0, 1.0))[::4]
    dim = 0.01 * blurred + np.random.default_rng(1).normal(0, 0.01, blurred.shape).astype(np.float32)
    blank = np.zeros_like(blurred)
    for channels, clearest in (([blank, dim, blurred], 2), ([blurred, dim, blank], 0)):
        estimate = measure_axial_sigma(Volume(np.stack(channels), (4.0, 1.0, 1.0), axes="CZYX"), 4.0)
        assert estimate["measured_on"] == f"channel {clearest}"
        assert estimate["sigma"] == pytest.approx(3.87, abs=0.1)


def test_the_clearest_stack_of_a_long_series_is_chosen_from_a_few_reads(monkeypatch):
    import zaug.data.lateral as lateral

    rng = np.random.default_rng(0)
    series = rng.normal(0, 0.01, (40, 2, 4, 16, 16)).astype(np.float32)
    series[39, 1, :, 4:8, 4:8] += 1.0  # the last time point of the second channel: the only structure
    reads = []
    measured = lateral.noise_level
    monkeypatch.setattr(lateral, "noise_level", lambda stack: reads.append(1) or measured(stack))
    assert lateral.clearest_stack_index(Volume(series, axes="TCZYX")) == (39, 1)
    assert len(reads) <= 16  # 8 time points evenly spread, both channels; not all 80 stacks


def test_a_stack_finer_along_z_than_laterally_is_refused_for_what_it_is():
    from zaug import InputError
    from zaug.data.lateral import anisotropy_factor

    with pytest.raises(InputError, match=r"the z step \(0.1 um\) is finer than the lateral pixel size \(0.26 um\)"):
        anisotropy_factor(Volume(np.zeros((3, 8, 8)), (0.1, 0.26, 0.26), "um"))
    assert anisotropy_factor(Volume(np.zeros((3, 8, 8)), (0.1, 0.26, 0.26), "um"), 4.0) == 4.0  # given: taken


def test_sigma_auto_on_several_stacks_takes_the_median_of_their_measurements():
    from zaug.data.lateral import format_sigma_estimate, measure_axial_sigma

    narrow, wide, flat = _spots(2.0), _spots(4.0), _spots(1.0, lateral_sigma=3.0)
    alone = [measure_axial_sigma(v, 4.0)["sigma"] for v in (narrow, wide)]  # about 1.7 and 3.9
    with pytest.warns(UserWarning, match=r"different axial blurs .*stack 1: 1\.\d\d, stack 2: 3\.\d\d.*median"):
        sigma, estimate = resolve_sigma("auto", [narrow, wide], 4.0)
    assert sigma == pytest.approx(np.median(alone)) and estimate["stacks"] == pytest.approx(alone)
    assert format_sigma_estimate(estimate).startswith("axial blur measured on each of 2 training stacks")
    assert f"stack {estimate['nearest_stack']}, the nearest to it:" in format_sigma_estimate(estimate)
    from zaug.methods import format_model_info  # zaug info shows what --sigma auto measured

    info = {"path": "m", "finished": True, "method": "selfnet", "preset": "fast",
            "sizes_mb": {"weights": 1.0, "checkpoint": 0.0}, "sigma_estimate": estimate}
    assert "\n--sigma auto: axial blur measured on each of 2 training stacks" in format_model_info(info)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stacks that agree: no warning, and their median
        sigma, estimate = resolve_sigma("auto", [wide, _spots(4.2)], 4.0)
    assert alone[1] < sigma < measure_axial_sigma(_spots(4.2), 4.0)["sigma"]
    with pytest.warns(UserWarning, match=r"on 1 of 2 training stacks \(stack 1: none, stack 2: 1\.\d\d\)"):
        sigma, estimate = resolve_sigma("auto", [flat, narrow], 4.0)  # the first declines: not the default
    assert sigma == pytest.approx(alone[0])
