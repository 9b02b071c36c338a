import numpy as np
import pytest

from zaug import InputError, Volume
from zaug.classic import ClassicalInterpolator, interpolate_stack
from zaug.methods import resolve
from zaug.predict import cast_like, output_positions, upsample_z


def test_linear_and_nearest_on_known_values():
    stack = np.stack([np.full((2, 3), v, np.float32) for v in (0, 10, 40)])
    z = np.array([0.0, 1.0, 3.0])  # non-uniform
    lin = interpolate_stack(stack, z, np.array([0.25, 2.0, 3.0]), "linear")[:, 0, 0]
    np.testing.assert_allclose(lin, [2.5, 25.0, 40.0])
    near = interpolate_stack(stack, z, np.array([0.4, 0.6, 2.5]), "nearest")[:, 0, 0]
    np.testing.assert_allclose(near, [0, 10, 40])


def test_cubic_is_exact_for_cubic_polynomials_on_non_uniform_z():
    z = np.array([0.0, 0.7, 1.5, 3.0, 3.4, 5.0])
    f = lambda t: 0.5 * t**3 - 2 * t**2 + t + 3  # noqa: E731
    stack = np.broadcast_to(f(z)[:, None, None], (6, 4, 4)).astype(np.float64)
    zq = np.linspace(0, 5, 23)
    out = interpolate_stack(stack, z, zq, "cubic")[:, 1, 1]
    np.testing.assert_allclose(out, f(zq), rtol=1e-4, atol=1e-3)


def test_cubic_through_very_unevenly_spaced_planes_warns_of_its_overshoot():
    import warnings

    from zaug import ZaugWarning

    stack = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    z = np.array([0.0, 0.05, 0.5, 1.0, 1.5, 2.0])  # gaps 1:9 side by side
    with pytest.warns(ZaugWarning, match=r"gaps of 0.05 and 0.45 either side of plane 1\): a cubic spline"):
        out = interpolate_stack(stack, z, np.linspace(0, 2, 41), "cubic")
    assert out.max() - out.min() > 1.3  # the overshoot it warns of: the data span less than 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        interpolate_stack(stack, np.array([0.0, 0.1, 0.5, 1.0, 1.5, 2.0]), z[1:], "cubic")  # 1:4, no warning
        interpolate_stack(stack, z, np.linspace(0, 2, 41), "linear")


def test_cubic_in_bands_of_rows_equals_one_spline_over_the_stack():
    from scipy.interpolate import CubicSpline

    from zaug.classic import _cubic

    rng = np.random.default_rng(0)
    stack = rng.random((12, 37, 5)).astype(np.float32)
    z = np.cumsum(rng.uniform(0.5, 2.0, 12))  # non-uniform
    zq = np.linspace(z[0], z[-1], 40)
    whole = CubicSpline(z, stack, axis=0, bc_type="not-a-knot")(zq).astype(np.float32)
    np.testing.assert_array_equal(_cubic(stack, z, zq, voxels=12 * 5 * 3), whole)  # bands of 3 rows, one of 1


def test_interpolation_passes_through_input_planes():
    rng = np.random.default_rng(0)
    stack = rng.random((5, 6, 6)).astype(np.float32)
    z = np.arange(5.0)
    for method in ("nearest", "linear", "cubic"):
        np.testing.assert_allclose(interpolate_stack(stack, z, z, method), stack, atol=1e-5)


def test_output_positions_factor_and_spacing():
    assert output_positions(np.arange(4.0), factor=2).tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3]
    assert len(output_positions(np.arange(60.0), factor=4)) == 59 * 4 + 1
    np.testing.assert_allclose(output_positions(np.array([0, 1.0, 3.0]), factor=2), [0, 0.5, 1, 2, 3])
    np.testing.assert_allclose(output_positions(np.array([0.0, 2.9]), z_spacing=0.5), np.arange(0, 2.9, 0.5))
    for bad in (dict(factor=1), dict(factor=2.5), dict(z_spacing=-1), dict(z_spacing=10.0), {},
                dict(factor=float("nan")), dict(factor=float("inf"))):
        with pytest.raises(InputError):
            output_positions(np.array([0.0, 1.0, 2.0]), **bad)
    with pytest.raises(InputError, match="would make 2,000,000,001 planes of 3"):  # was: out of memory
        output_positions(np.array([0.0, 1.0, 2.0]), factor=10**9)


def test_cast_like_rounds_and_clips_to_dtype_range():
    data = np.array([-3.0, 0.4, 0.6, 70000.0])
    assert cast_like(data, np.uint16).tolist() == [0, 0, 1, 65535]
    assert cast_like(data, np.uint8).tolist() == [0, 0, 1, 255]
    assert cast_like(data, np.float32).dtype == np.float32
    # the top of 32- and 64-bit ranges clips, it does not wrap to the bottom (float32 rounds 2**31 - 1 up)
    for dtype in (np.int32, np.uint32, np.int64, np.uint64):
        info = np.iinfo(dtype)
        top = np.array([float(info.max), float(info.max) * 1.5], np.float32)
        assert cast_like(top, dtype).tolist() == [info.max, info.max]
        assert cast_like(np.array([float(info.min) * 1.5 - 1], np.float32), dtype).tolist() == [info.min]
    assert cast_like(np.array([70000.0, -70000.0], np.float32), np.float16).tolist() == [65504.0, -65504.0]


def test_cast_like_in_chunks_into_a_given_array_equals_one_cast(monkeypatch):
    import zaug.predict

    data = np.random.default_rng(1).uniform(-10, 300, (7, 5, 3)).astype(np.float32)
    whole = cast_like(data, np.uint8)
    monkeypatch.setattr(zaug.predict, "CAST_VALUES", 20)  # chunks of 1 plane (15 values)
    out = np.zeros((7, 5, 3), np.uint8)
    assert cast_like(data, np.uint8, out=out) is out
    np.testing.assert_array_equal(out, whole)
    assert cast_like(data, np.float32) is data  # nothing to round: no copy


@pytest.mark.parametrize("method", ["nearest", "linear", "cubic"])
def test_upsample_z_in_bands_of_rows_equals_the_whole_stack_at_once(method, monkeypatch):
    import warnings

    import zaug.predict
    from zaug import ZaugWarning

    rng = np.random.default_rng(2)
    data = rng.integers(0, 65535, (9, 23, 6), dtype=np.uint16)
    z = np.array([0.0, 0.05, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])  # uneven: cubic warns
    vol = Volume(data, (1.0, 0.2, 0.2), "um", z_positions=z)
    z_out = np.linspace(0, 3.5, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cast_like(interpolate_stack(data, z, z_out, method), np.uint16)
    monkeypatch.setattr(zaug.predict, "BAND_VOXELS", 30 * 6 * 4)  # bands of 4 rows: 6 bands
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = upsample_z(vol, ClassicalInterpolator(method), z_out=z_out)
    np.testing.assert_array_equal(out.data, expected)
    assert [issubclass(w.category, ZaugWarning) and "overshoots" in str(w.message)
            for w in said].count(True) == (method == "cubic")  # once, not once per band


def test_linear_between_planes_at_the_top_of_a_32_bit_range_stays_there():
    for dtype in (np.int32, np.uint32):
        data = np.full((4, 8, 8), np.iinfo(dtype).max, dtype)
        data[:, 0, 0] = 0
        out = upsample_z(Volume(data, (2, 1, 1), "um"), ClassicalInterpolator("linear"), factor=2)
        assert out.dtype == dtype and np.asarray(out.data)[:, 1:, :].min() == np.iinfo(dtype).max


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_upsample_keeps_dtype_and_sets_voxel_size(blobs, dtype):
    data = (blobs / 65535 * (255 if dtype == np.uint8 else 65535)).astype(dtype)
    vol = Volume(data, (0.29, 0.26, 0.26), "um")
    out = upsample_z(vol, ClassicalInterpolator("cubic"), factor=2)
    assert out.data.shape == (33, 32, 32) and out.dtype == dtype
    assert out.voxel_size == pytest.approx((0.145, 0.26, 0.26)) and out.unit == "um"
    np.testing.assert_array_equal(out.data[::2], data)  # input planes are kept exactly


def test_upsample_to_spacing_and_per_channel():
    data = np.stack([np.arange(5.0)[:, None, None] * np.ones((5, 6, 6)) * c for c in (1, 2)]).astype(np.float32)
    vol = Volume(data, (1.0, 0.25, 0.25), "um", axes="CZYX")
    out = upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=0.25)
    assert out.data.shape == (2, 17, 6, 6) and out.voxel_size[0] == pytest.approx(0.25)
    np.testing.assert_allclose(out.data[1, :, 0, 0], 2 * np.arange(17) * 0.25, atol=1e-6)


def test_non_uniform_input_keeps_positions():
    vol = Volume(np.random.default_rng(0).random((3, 8, 8)).astype(np.float32), (1, 1, 1), "um",
                 z_positions=[0.0, 1.0, 3.0])
    out = upsample_z(vol, ClassicalInterpolator("linear"), factor=2)
    np.testing.assert_allclose(out.z_coords(), [0, 0.5, 1, 2, 3])


@pytest.mark.parametrize("dtype", [np.uint32, np.float64])
def test_acquired_planes_are_kept_beyond_float32_precision(dtype, tmp_path):
    from zaug.blockwise import upsample_z_blockwise

    rng = np.random.default_rng(0)
    data = (2**30 + rng.integers(0, 2**20, (5, 24, 24))).astype(dtype)  # not representable in float32
    vol = Volume(data, voxel_size=(2.0, 1.0, 1.0))
    for out in (upsample_z(vol, resolve("cubic"), factor=2),
                upsample_z_blockwise(vol, resolve("cubic"), factor=2, tile=16)):
        got = np.asarray(out.data)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got[::2], data)


def test_nearest_breaks_every_tie_the_same_way_despite_rounding():
    from zaug.classic import interpolate_stack

    z_in = 0.29 * np.arange(15)  # not exact in binary: halfway points fall on either side by rounding
    stack = np.arange(15, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    halfway = interpolate_stack(stack, z_in, 0.29 * (np.arange(14) + 0.5), "nearest")[:, 0, 0]
    np.testing.assert_array_equal(halfway, np.arange(14))  # always the plane below


def test_output_positions_outside_the_stack_or_coarser_spacings_are_refused_or_said():
    import warnings

    from zaug import ZaugWarning

    vol = Volume(np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8), (0.5, 0.26, 0.26), "um")  # z 0 to 2

    class Extrapolating:  # a model that would answer anything
        name = "any"

        def interpolate(self, stack, z_in, z_out, pixel_size=None):
            return np.zeros((len(z_out),) + stack.shape[1:], np.float32)

    for bad, phrase in (([1.0], "at least two"), ([-1.0, 1.0], r"within the stack's planes \(0 to 2\); -1"),
                        ([1.0, 0.5], "decrease")):
        with pytest.raises(InputError, match=phrase):
            upsample_z(vol, Extrapolating(), z_out=bad)
    with pytest.warns(ZaugWarning, match=r"coarser than the input's \(0.5\): the output has 3 planes from 5"):
        upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=1.0)
    with pytest.warns(ZaugWarning, match="end at 1.8, short of the last input plane at 2"):
        upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=0.25)
    with pytest.raises(InputError, match="would make 2,000,001 planes"):
        upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=1e-6)


def test_match_noise_gives_new_planes_the_noise_of_the_acquired_ones_and_leaves_those_alone():
    from scipy import ndimage

    from zaug.predict import match_noise

    rng = np.random.default_rng(3)
    clean = ndimage.gaussian_filter(rng.random((9, 64, 64)), 3) * 2000 + 500
    noisy = Volume(np.clip(clean + rng.normal(0, 40, clean.shape), 0, 65535).astype(np.uint16), (2.0, 0.5, 0.5))
    smooth = upsample_z(noisy, "cubic", factor=2)
    smooth.data[1::2] = ndimage.gaussian_filter(smooth.data[1::2], (0, 2, 2))  # a denoiser's new planes
    out = match_noise(smooth, noisy, seed=1)
    assert out.dtype == np.uint16 and out.metadata["noise_matched"]
    np.testing.assert_array_equal(out.data[::2], noisy.data)
    residual = lambda planes: np.std(planes - ndimage.gaussian_filter(planes.astype(float), (0, 2, 2)))  # noqa: E731
    assert residual(smooth.data[1::2]) < 0.3 * residual(noisy.data)
    assert residual(out.data[1::2]) == pytest.approx(residual(noisy.data), rel=0.15)
    np.testing.assert_array_equal(match_noise(smooth, noisy, seed=1).data, out.data)  # seeded
    import warnings

    blank = np.zeros((5, 4, 4), np.uint16)
    blank[2] = 1000  # one bright plane in a blank 4 x 4 stack: no noise to estimate
    tiny = Volume(blank, (2.0, 0.5, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skimage's and numpy's warnings were shown as zaug's
        out = match_noise(upsample_z(tiny, "linear", factor=2), tiny)
    np.testing.assert_array_equal(out.data, upsample_z(tiny, "linear", factor=2).data)  # nothing added


def test_match_noise_from_the_command_line_and_its_refusal_with_tiles(run_cli, tmp_path):
    from zaug.io import read_volume, write_volume

    rng = np.random.default_rng(4)
    stack = write_volume(Volume(rng.normal(1000, 30, (6, 48, 48)).astype(np.uint16), (2.0, 0.5, 0.5)),
                         tmp_path / "s.tif")
    proc = run_cli("predict", "linear", stack, "-o", tmp_path / "m.tif", "--factor", "2", "--match-noise",
                   "--report", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    out = read_volume(tmp_path / "m.tif").data.astype(float)
    assert out[1::2].std() == pytest.approx(30, rel=0.15)  # linear alone: 30 / sqrt(2)
    assert "given noise to match the acquired planes" in (tmp_path / "r" / "report.md").read_text()
    proc = run_cli("predict", "linear", stack, "-o", tmp_path / "t.tif", "--factor", "2", "--match-noise",
                   "--tile", "32")
    assert proc.returncode != 0 and "--match-noise needs the stack in memory" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "t.tif").exists()


def test_float64_prediction_warns_nothing_and_values_near_float32s_limit_are_refused():
    import warnings

    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(size=(6, 16, 16)), (1.0, 0.5, 0.5), "um")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "overflow encountered in cast" came from clipping at float64's limit
        out = upsample_z(vol, "cubic", factor=2)
    assert out.data.dtype == np.float64 and np.isfinite(out.data).all()
    for dtype in (np.float32, np.float64):  # a cubic overshoot in float32 would have become infinite
        huge = Volume((rng.random((6, 16, 16)) * 3e38).astype(dtype), (1.0, 0.5, 0.5), "um")
        with pytest.raises(InputError, match="rescale the stack"):
            upsample_z(huge, "cubic", factor=2)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="this platform's long double is float64")
def test_extended_precision_floats_are_refused_before_any_work():
    vol = Volume(np.random.default_rng(0).random((6, 16, 16)).astype(np.longdouble), (1.0, 0.5, 0.5), "um")
    with pytest.raises(InputError, match="extended precision"):
        upsample_z(vol, "linear", factor=2)


def test_an_output_larger_than_the_memory_is_refused_before_any_work(run_cli, tmp_path, monkeypatch):
    import zaug.predict
    from zaug.io import write_volume

    vol = Volume(np.random.default_rng(0).integers(0, 999, (6, 16, 16)).astype(np.uint16), (0.29, 0.26, 0.26), "um")
    write_volume(vol, tmp_path / "in.tif")
    monkeypatch.setattr(zaug.predict, "physical_memory", lambda: 1 << 20)  # a machine of 1 MiB
    proc = run_cli("predict", "linear", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--z-spacing", "0.000145",
                   "--unit", "um")  # a spacing in the wrong unit: 10,001 planes
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and not (tmp_path / "o.tif").exists()
    assert ("the output would hold 10,001 planes from 6 and take 4.9 MiB, more than this machine's 1.0 MiB of "
            "memory; check --z-spacing (and its unit)") in proc.stderr
    assert run_cli("predict", "linear", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--factor", "2").returncode == 0
