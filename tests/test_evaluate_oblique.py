"""Oblique axial blur: kernel, directional measure, protocol and the CLI report (tiny RESIN budget)."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from zaug import InputError, Volume
from zaug.evaluate_oblique import directional_gradient_ratio, evaluate_oblique, line_blur_kernel, oblique_blur
from zaug.io import write_volume


@pytest.fixture(scope="module")
def iso():
    """Isotropic random texture with fine detail in every direction."""
    rng = np.random.default_rng(1)
    data = ndimage.gaussian_filter(rng.random((20, 40, 36)), 0.8)
    return Volume(((data - data.min()) / np.ptp(data) * 200 + 20).astype(np.uint8), (0.5, 0.5, 0.5), "um")


@pytest.mark.parametrize("angle", [0, 30, 45, 90])
def test_line_kernel_is_normalised_and_elongated_along_the_angle(angle):
    k = line_blur_kernel(2.0, angle).astype(np.float64)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    r = k.shape[0] // 2
    z, y = np.mgrid[-r:r + 1, -r:r + 1]
    t = math.radians(angle)
    along = (k * (z * math.cos(t) + y * math.sin(t)) ** 2).sum()
    across = (k * (-z * math.sin(t) + y * math.cos(t)) ** 2).sum()
    assert along == pytest.approx(4.0, rel=0.05) and across < 0.3


def test_gradient_ratio_drops_only_along_the_blurred_direction(iso):
    data = np.asarray(iso.data, np.float32)
    assert directional_gradient_ratio(data, 45) == pytest.approx(1.0, abs=0.1)
    blurred = oblique_blur(data, 2.0, 45)
    assert directional_gradient_ratio(blurred, 45) < 0.6
    assert directional_gradient_ratio(blurred, -45) > 0.9  # the perpendicular diagonal is not blurred
    assert blurred.shape == data.shape


def test_deconvolution_with_the_true_kernel_beats_the_blurred_input(iso):
    r = evaluate_oblique(iso, 45, 4, ["input", "richardson-lucy"])
    inp, rl = r["methods"]["input"], r["methods"]["richardson-lucy"]
    assert rl["psnr"] > inp["psnr"] + 0.5
    assert rl["directional_gradient_ratio"] > inp["directional_gradient_ratio"]
    assert r["reference"]["input"]["directional_gradient_ratio"] == pytest.approx(
        inp["directional_gradient_ratio"], abs=1e-6)


def test_protocol_refuses_what_it_cannot_measure(iso):
    with pytest.raises(InputError, match="near-isotropic"):
        evaluate_oblique(iso.replace(voxel_size=(2.0, 0.5, 0.5)), 45)
    with pytest.raises(InputError, match="between 0 and 90"):
        evaluate_oblique(iso, 0)
    with pytest.raises(InputError, match="cannot restore"):
        evaluate_oblique(iso, 45, 4, ["cubic"])


def test_cli_oblique_resin_report(iso, tmp_path, run_cli):
    src = tmp_path / "iso.tif"
    write_volume(iso, src)
    before = src.read_bytes()
    proc = run_cli("evaluate", src, "--restore", "--axial-angle", "45", "--factor", "4", "--methods",
                   "input,resin", "--steps", "2", "--report", tmp_path / "rep", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["axial_angle"] == 45 and result["sigma"] == 2
    assert result["methods"]["resin"]["training"]["steps"] == 2
    assert {"zy_sections.png", "xy_planes.png", "report.md", "results.json"} <= {
        p.name for p in (tmp_path / "rep").iterdir()}
    assert src.read_bytes() == before


def test_resin_predicts_on_the_blurred_stack_scaled_as_it_trained(iso, monkeypatch):
    # resin.fit scales its training stack by that stack's 0.1 / 99.9 percentiles; prediction must see the same
    from zaug.data.lateral import percentile_range
    from zaug.methods.resin import ResinRestorer

    seen = []
    real = ResinRestorer.restore_normalised

    def recording(self, stack, rows):
        seen.append(percentile_range(stack))
        return real(self, stack, rows)

    monkeypatch.setattr(ResinRestorer, "restore_normalised", recording)
    result = evaluate_oblique(iso, 45, 4, ["input", "resin"], train_options={"steps": 1, "progress": False})
    assert seen and seen[0] == pytest.approx((0.0, 1.0), abs=1e-5)
    assert np.isfinite(result["methods"]["resin"]["psnr"])
