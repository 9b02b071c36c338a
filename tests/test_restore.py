import numpy as np
import pytest
from scipy import ndimage

from zaug import InputError, Volume
from zaug.data.lateral import simulate_anisotropy
from zaug.metrics import normalize_percentile, psnr
from zaug.restore import ClassicalRestorer, restore_volume
from zaug.io import read_volume


def _smooth_object(nz=33, ny=24, nx=20) -> np.ndarray:
    """A smooth isotropic 3D object sampled at unit spacing, in [0, 1]."""
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float64)
    vol = np.zeros_like(z)
    for cz, cy, cx, s in [(10, 8, 7, 6.0), (22, 15, 12, 5.0), (16, 12, 5, 7.0)]:
        vol += np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * s**2))
    return vol / vol.max()


class _WidthRestorer:
    """Returns w / 10 everywhere: xz planes (w = X) and yz planes (w = Y) differ."""

    name = "width"

    def restore_planes(self, planes_lr, out_rows):
        n, _, w = planes_lr.shape
        return np.full((n, len(out_rows), w), w / 10, np.float32)


def test_classical_restorer_interpolates_along_axis_0_of_each_plane():
    planes = np.stack([np.outer(np.arange(4.0), np.ones(3)) + k for k in range(2)]).astype(np.float32)
    out = ClassicalRestorer("linear").restore_planes(planes, np.array([0.0, 0.5, 2.25, 3.0, 3.5]))
    assert out.shape == (2, 5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, :, 0], [1.0, 1.5, 3.25, 4.0, 4.0])  # beyond the last row: edge value
    with pytest.raises(InputError):
        ClassicalRestorer("lanczos")


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_restore_volume_shape_voxel_dtype_and_accuracy(dtype):
    truth = _smooth_object()
    scale = 30000 if dtype == np.uint16 else 1.0
    aniso = Volume((truth[::4] * scale + (100 if dtype == np.uint16 else 0)).astype(dtype),
                   (2.0, 0.5, 0.5), "um", z_origin=3.0)
    out = restore_volume(aniso, ClassicalRestorer("cubic"), batch=7)
    assert out.data.shape == (33, 24, 20) and out.data.dtype == dtype
    assert out.voxel_size == (0.5, 0.5, 0.5) and out.unit == "um" and out.z_coords()[0] == 3.0
    assert out.metadata["method"] == "cubic" and out.metadata["fuse"] == "mean"
    restored = (out.data.astype(np.float64) - (100 if dtype == np.uint16 else 0)) / scale
    assert psnr(restored, truth) > 40
    linear = restore_volume(aniso, ClassicalRestorer("linear"))
    lin = (linear.data.astype(np.float64) - (100 if dtype == np.uint16 else 0)) / scale
    assert 30 < psnr(lin, truth) < psnr(restored, truth)
    # acquired planes come back unchanged
    np.testing.assert_allclose(out.data[::4].astype(np.float64), aniso.data.astype(np.float64), atol=1.0)


def test_restore_volume_with_a_given_z_spacing_and_channels():
    truth = _smooth_object()
    data = np.stack([truth[::4], 10 * truth[::4] + 5]).astype(np.float32)  # CZYX, different ranges
    vol = Volume(data, (4.0, 1.0, 1.0), "um", axes="CZYX")
    out = restore_volume(vol, ClassicalRestorer("linear"), z_spacing=1.5)
    assert out.data.shape == (2, 22, 24, 20) and out.voxel_size == (1.5, 1.0, 1.0) and out.axes == "CZYX"
    np.testing.assert_allclose(out.data[1], 10 * out.data[0] + 5, atol=1e-3)  # per-stack normalisation undone
    np.testing.assert_allclose(out.data[0, 8], data[0, 3], atol=1e-5)  # z = 12 um is input plane 3
    np.testing.assert_allclose(out.data[0, 1], 0.625 * data[0, 0] + 0.375 * data[0, 1], atol=1e-5)  # z = 1.5


def test_fusion_modes():
    vol = Volume(np.random.default_rng(0).random((4, 10, 20)).astype(np.float32), (2.0, 1.0, 1.0))
    lo, hi = np.percentile(vol.data, (0.1, 99.9))
    expect = {"mean": 1.5, "geometric": np.sqrt(2.0), "xz": 2.0, "yz": 1.0}  # xz: w = X = 20; yz: w = Y = 10
    for fuse, value in expect.items():
        out = restore_volume(vol, _WidthRestorer(), fuse=fuse)
        assert out.data.shape == (7, 10, 20)
        np.testing.assert_allclose(out.data, lo + value * (hi - lo), rtol=1e-5)
    with pytest.raises(InputError):
        restore_volume(vol, _WidthRestorer(), fuse="max")


def test_geometric_fusion_of_classical_results_matches_mean_on_positive_data():
    vol = Volume((_smooth_object()[::4] * 1000 + 10).astype(np.uint16), (4.0, 1.0, 1.0))
    mean = restore_volume(vol, ClassicalRestorer("linear"), fuse="mean").data.astype(int)
    geo = restore_volume(vol, ClassicalRestorer("linear"), fuse="geometric").data.astype(int)
    assert np.abs(mean - geo).max() <= 1  # identical xz and yz results: both fusions agree


def test_simulated_anisotropy_round_trip_can_be_scored_against_the_original():
    truth = (_smooth_object(nz=31) * 4000 + 200).astype(np.uint16)
    fine = Volume(truth, (0.5, 0.5, 0.5), "um")
    sim = simulate_anisotropy(fine, 3, "avgpool")  # samples at planes 1, 4, ..., 28
    out = restore_volume(sim, ClassicalRestorer("cubic"))
    first = sim.metadata["z_sample_positions"][0]
    assert first == 1.0 and out.z_coords()[0] == pytest.approx(fine.z_coords()[1])
    reference = truth[1:1 + out.nz]  # output plane k sits at original plane 1 + k
    a = normalize_percentile(out.data, reference=reference)
    b = normalize_percentile(reference)
    assert out.nz == 28 and psnr(a, b) > 40


def test_restoration_evaluation_can_simulate_a_blur_the_methods_are_not_told():
    from zaug.evaluate_restore import evaluate_restoration

    rng = np.random.default_rng(0)
    spots = np.zeros((33, 24, 24))
    spots[tuple(rng.integers(2, 22, (3, 30)))] = 1.0
    fine = Volume((ndimage.gaussian_filter(spots, 1.0) * 4000).astype(np.uint16), (0.5, 0.5, 0.5), "um")
    default = evaluate_restoration(fine, 4, "gaussian", ["cubic"])
    wider = evaluate_restoration(fine, 4, "gaussian", ["cubic"], simulate_sigma=3.0)
    assert (default["simulated_sigma"], wider["simulated_sigma"]) == (2.0, 3.0)
    assert wider["methods"]["cubic"]["psnr"] < default["methods"]["cubic"]["psnr"] - 0.5
    assert evaluate_restoration(fine, 4, "avgpool", ["cubic"])["simulated_sigma"] is None
    with pytest.raises(InputError, match="gaussian degradation"):
        evaluate_restoration(fine, 4, "avgpool", ["cubic"], simulate_sigma=3.0)
    with pytest.raises(InputError, match="positive"):
        evaluate_restoration(fine, 4, "gaussian", ["cubic"], simulate_sigma=-1.0)


def test_a_learned_restorer_warns_on_another_anisotropy(tmp_path, capsys):
    import warnings

    from zaug.cli import main
    from zaug.io import write_volume
    from zaug.methods import resolve, selfnet
    from zaug.restore import restore_with
    from zaug.sample import load_sample

    full = load_sample()
    crop = np.ascontiguousarray(full.data[:, 40:72, 40:72])
    coarse = full.replace(data=crop[::4], voxel_size=(1.16, 0.26, 0.26))  # 4.46-fold
    model_dir = selfnet.fit([coarse], tmp_path / "sn", {"steps": 2, "progress": False})
    model = resolve(str(model_dir), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the training anisotropy: no warning
        restore_with(coarse, model)
    half = full.replace(data=crop[::2], voxel_size=(0.58, 0.26, 0.26))  # 2.23-fold
    with pytest.warns(UserWarning, match=r"4\.46-fold anisotropy and this stack's is 2\.23-fold"):
        out = restore_with(half, model)
    assert out.voxel_size[0] == pytest.approx(0.26)  # still restored
    write_volume(half, tmp_path / "half.tif")
    assert main(["predict", str(model_dir), str(tmp_path / "half.tif"), "-o", str(tmp_path / "out.tif"),
                 "--tile", "16"]) == 0  # the tile-by-tile path warns too
    assert "zaug: warning: the model learnt to restore a 4.46-fold" in capsys.readouterr().err
    # a stack whose file gave no voxel size: its z step is the training anisotropy, not 1 pixel (no-op)
    unknown = Volume(crop[::4], (1.0, 1.0, 1.0), "pixel")
    with pytest.warns(UserWarning, match=r"no voxel size, so its z step is taken as 4\.46 pixels"):
        out = restore_with(unknown, model)
    assert out.voxel_size == (1.0, 1.0, 1.0) and out.nz == int((unknown.nz - 1) * 1.16 / 0.26) + 1
    np.save(tmp_path / "plain.npy", crop[::4])
    assert main(["predict", str(model_dir), str(tmp_path / "plain.npy"), "-o", str(tmp_path / "plain.tif"),
                 "--tile", "16"]) == 0
    assert "its z step is taken as 4.46 pixels" in capsys.readouterr().err
    assert read_volume(tmp_path / "plain.tif").nz == out.nz
    with pytest.warns(UserWarning, match=r"4\.46-fold anisotropy and this stack's is 1\.00-fold"):
        restore_with(Volume(crop[::4], (1.0, 1.0, 1.0), "um"), model)  # 1 um everywhere is a voxel size


def test_a_z_spacing_coarser_than_the_input_warns():
    from zaug import ZaugWarning
    from zaug.restore import restore_with

    vol = Volume(np.random.default_rng(0).random((8, 16, 16), dtype=np.float32), voxel_size=(1.0, 0.25, 0.25))
    with pytest.warns(ZaugWarning, match="coarser than the input"):
        out = restore_with(vol, ClassicalRestorer("linear"), z_spacing=2.0)
    assert out.nz < vol.nz
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        restore_with(vol, ClassicalRestorer("linear"), z_spacing=0.25)  # finer: no warning


def test_restoring_a_stack_finer_along_z_than_laterally_keeps_its_planes():
    from zaug.restore import restore_with

    vol = Volume(np.random.default_rng(0).random((8, 16, 16), dtype=np.float32), voxel_size=(0.1, 0.25, 0.25))
    out = restore_with(vol, ClassicalRestorer("linear"))  # to isotropic 0.25 it dropped 5 of the 8 planes
    assert out.nz == vol.nz and out.voxel_size == vol.voxel_size
    assert restore_with(vol.replace(voxel_size=(1.0, 0.25, 0.25)), ClassicalRestorer("linear")).nz == 29


def test_a_restoration_spacing_says_what_it_drops_and_one_beyond_the_stack_is_refused_before_any_work(
        tmp_path, capsys, monkeypatch):
    import zaug.restore
    from zaug import ZaugWarning
    from zaug.cli import main
    from zaug.io import write_volume
    from zaug.methods import niiv
    from zaug.restore import restore_with
    from zaug.sample import load_sample

    vol = Volume(np.random.default_rng(0).random((5, 16, 16), dtype=np.float32), voxel_size=(1.1, 0.25, 0.25))
    with pytest.warns(ZaugWarning, match="end at 4.2, short of the last input plane at 4.4"):
        restore_with(vol, ClassicalRestorer("linear"), z_spacing=0.3)  # was: the last 0.2 dropped unsaid
    crop = load_sample().data[::4, :48, :48]
    write_volume(Volume(crop, (1.16, 0.26, 0.26), "um"), tmp_path / "v.tif")
    niiv.fit([Volume(crop, (1.16, 0.26, 0.26), "um")], tmp_path / "niiv", {"steps": 2, "progress": False})

    def no_work(*args, **kwargs):
        raise AssertionError("restored before the refusal")

    monkeypatch.setattr(zaug.restore, "restore_with", no_work)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "niiv"), str(tmp_path / "v.tif"), "-o", str(tmp_path / "r.tif"),
                 "--z-spacing", "100"]) == 2
    assert "--z-spacing 100.0 is larger than the stack's z extent" in capsys.readouterr().err
