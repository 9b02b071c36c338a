import numpy as np
import pytest
from scipy import ndimage

from zaug.metrics import (fourier_clipped_psnr, fourier_clipped_psnr_sweep, gradient_magnitude, normalize_percentile,
                          psnr, rmse, sharpness_ratio, ssim)


def test_psnr_rmse_known_values():
    gt = np.zeros((3, 8, 8))
    pred = gt + 0.1
    assert rmse(pred, gt) == pytest.approx(0.1)
    assert psnr(pred, gt) == pytest.approx(20.0)
    assert psnr(pred, gt, data_range=2.0) == pytest.approx(20 + 20 * np.log10(2))
    assert psnr(gt, gt) == float("inf")


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    gt = ndimage.gaussian_filter(rng.random((3, 32, 32)), 2)
    assert ssim(gt, gt) == pytest.approx(1.0)
    assert ssim(gt + rng.normal(0, 0.05, gt.shape), gt) < 0.9


def test_fourier_clipped_psnr_full_radius_equals_psnr_and_low_radius_ignores_noise():
    rng = np.random.default_rng(0)
    gt = ndimage.gaussian_filter(rng.random((4, 64, 64)), 3)
    noisy = gt + rng.normal(0, 0.05, gt.shape)
    assert fourier_clipped_psnr(noisy, gt, np.sqrt(2)) == pytest.approx(psnr(noisy, gt), abs=1e-6)
    sweep = fourier_clipped_psnr_sweep(noisy, gt, (0.1, 0.5, np.sqrt(2)))
    values = list(sweep.values())
    assert values[0] > values[1] > values[2]  # white noise: less of it inside smaller radii
    # an intensity offset is all at frequency 0: visible at any radius
    assert fourier_clipped_psnr(gt + 0.1, gt, 0.01) == pytest.approx(20.0, abs=1e-6)


def test_sharpness_ratio():
    rng = np.random.default_rng(0)
    gt = rng.random((3, 32, 32))
    assert sharpness_ratio(gt, gt) == pytest.approx(1.0)
    assert sharpness_ratio(ndimage.gaussian_filter(gt, (0, 1, 1)), gt) < 0.6
    # in-plane only: the same plane repeated is as sharp as independent planes of the same kind
    repeated = np.repeat(gt[:1], 3, axis=0)
    assert sharpness_ratio(repeated, gt) == pytest.approx(1.0, abs=0.02)
    planes = np.mean([np.hypot(ndimage.sobel(p, 0), ndimage.sobel(p, 1)).mean() for p in gt])
    assert gradient_magnitude(gt) == pytest.approx(planes, rel=1e-5)
    assert gradient_magnitude(gt[0]) == pytest.approx(gradient_magnitude(gt[:1]), rel=1e-6)


def test_normalize_percentile_range():
    data = np.arange(1000, dtype=np.float32)
    out = normalize_percentile(data)
    assert out.min() == 0 and out.max() == 1
    assert out[500] == pytest.approx(0.5, abs=0.01)


def test_mismatched_shapes_are_refused_rather_than_broadcast_or_cut_short():
    from zaug import InputError, ZaugWarning
    from zaug.metrics import fourier_clipped_psnr, rmse, ssim

    rng = np.random.default_rng(0)
    gt = rng.random((4, 32, 32))
    pred = gt.copy()
    pred[1:] = rng.random((3, 32, 32))
    assert ssim(pred, gt) < 0.5  # three of four planes are noise
    for metric in (ssim, psnr, rmse, lambda p, g: fourier_clipped_psnr(p, g, 0.5)):
        with pytest.raises(InputError, match=r"must have the same shape"):
            metric(pred[:1], gt)  # was: SSIM 1.0 over the first plane only
        with pytest.raises(InputError, match=r"must have the same shape"):
            metric(gt[0], gt)  # was: a plane broadcast against the stack
    with pytest.raises(InputError, match="at least 7 x 7"):
        ssim(gt[:, :4, :4], gt[:, :4, :4])
    for metric in (psnr, lambda p, g: fourier_clipped_psnr(p, g, 0.5)):
        with pytest.warns(ZaugWarning, match="the truth spans 65535, far more than data_range 1"):
            metric(np.full((8, 8), 65535.0), np.linspace(0, 65535, 64).reshape(8, 8))
