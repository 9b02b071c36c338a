"""Blockwise (out-of-core) z-upsampling: tiles give the whole-volume answer, memory-mapped and lazy inputs."""

import importlib.util
import pickle

import dask
import numpy as np
import pytest
import tifffile
import zarr

from zaug import InputError, Volume
from zaug.blockwise import central_crop, central_planes, upsample_z_blockwise
from zaug.classic import ClassicalInterpolator
from zaug.io import read_volume, write_volume
from zaug.methods import resin, selfnet, zaugnet
from zaug.predict import upsample_z
from zaug.restore import ClassicalRestorer, RestorationTiles, restore_volume
from zaug.sample import load_sample

HAS_DISTRIBUTED = importlib.util.find_spec("distributed") is not None


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    vol = load_sample()
    small = vol.replace(data=np.ascontiguousarray(vol.data[:16, :96, :112]))
    path = zaugnet.fit([small], tmp_path_factory.mktemp("m") / "m",
                       {"steps": 20, "progress": False, "patch": 32, "batch": 2})
    net = zaugnet.load(path, device="cpu")
    net.tta = False  # 8 times faster; the tiles do not depend on it
    return net, small


@pytest.mark.parametrize("kind", ["linear", "cubic"])
def test_classical_tiles_equal_the_whole_volume(blobs, kind):
    vol = Volume(blobs, (1.0, 0.25, 0.25), "um")
    whole = upsample_z(vol, ClassicalInterpolator(kind), z_spacing=0.3)
    tiled = upsample_z_blockwise(vol, ClassicalInterpolator(kind), z_spacing=0.3, tile=16)
    assert tiled.data.npartitions == 4
    assert tiled.voxel_size == whole.voxel_size and tiled.dtype == whole.dtype
    np.testing.assert_array_equal(tiled.data.compute(), whole.data)


@pytest.fixture(scope="module")
def tall():
    """A smooth uint16 stack of 64 planes, taller than the context a cut along z takes each side."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(np.random.default_rng(1).normal(size=(64, 40, 40)), (2.0, 2.5, 2.5))
    return Volume((field / np.abs(field).max() * 20000 + 25000).astype(np.uint16), (1.0, 0.25, 0.25), "um")


@pytest.mark.parametrize("kind", ["linear", "cubic"])
def test_tiles_cut_along_z_give_the_whole_volume(tall, kind):
    whole = upsample_z(tall, ClassicalInterpolator(kind), factor=3).data
    tiled = upsample_z_blockwise(tall, ClassicalInterpolator(kind), factor=3, tile=16, tile_planes=10)
    assert tiled.data.chunks[0] == (30,) * 6 + (10,) and tiled.data.npartitions == 7 * 9
    planes = tiled.data.compute()
    if kind == "linear":  # two planes per output plane: exactly the whole-stack answer
        np.testing.assert_array_equal(planes, whole)
    else:  # the spline through all planes reaches a little past the 8 planes of context
        assert np.abs(planes.astype(np.int64) - whole).max() <= 1
    # without context the cubic spline's ends show at every cut
    tiled = upsample_z_blockwise(tall, _WithoutAxialMargin("cubic"), factor=3, tile=16, tile_planes=10)
    if kind == "cubic":
        assert np.abs(tiled.data.compute().astype(np.int64) - whole).max() > 20


@pytest.mark.parametrize("step, spacing, planes", [(0.3, 0.1, 13), (float(np.float32(0.7)), 0.35, 9)])
def test_a_grid_that_ends_a_rounding_error_past_the_stack_keeps_its_last_plane(step, spacing, planes):
    # 0.1 * 12 is 1.2000000000000002 > 0.3 * 4; a float32 step of 0.7 is 0.699999988 (was: 12 planes tiled,
    # "positions must lie between the first and last plane" whole)
    data = np.random.default_rng(0).integers(0, 60000, (5, 32, 32), dtype=np.uint16)
    vol = Volume(data, (step, 0.1, 0.1), "um")
    whole = upsample_z(vol, ClassicalInterpolator("linear"), z_spacing=spacing)
    tiled = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), z_spacing=spacing, tile=16, tile_planes=2)
    assert whole.nz == tiled.nz == planes
    np.testing.assert_array_equal(tiled.data.compute(), whole.data)
    np.testing.assert_array_equal(whole.data[-1], data[-1])


def test_acquired_planes_are_copied_even_where_their_position_rounds_a_little_high():
    # 0.1 * 3 is 0.30000000000000004: that plane is the acquired plane at 0.3, copied, not computed in float32
    data = np.random.default_rng(0).random((3, 8, 8)) + 1000.0
    vol = Volume(data, (0.45, 1, 1), "um", z_positions=[0.0, 0.3, 0.9])
    out = upsample_z(vol, ClassicalInterpolator("cubic"), z_spacing=0.1)
    assert out.z_coords()[3] > 0.3
    np.testing.assert_array_equal(out.data[[0, 3, 9]], data)


class _WithoutAxialMargin(ClassicalInterpolator):
    axial_margin = 0


class _WithLateralMargin(ClassicalInterpolator):
    lateral_margin = 32  # as a ZAugNet model's


def test_tiles_small_beside_their_margins_are_said_to_cost_more_than_the_plane(tall):
    import warnings

    from zaug import ZaugWarning

    with pytest.warns(ZaugWarning, match=r"tiles of 16 pixels carry 32 pixels .* processes 9\.0 times the plane"):
        upsample_z_blockwise(tall, _WithLateralMargin("linear"), factor=2, tile=16)  # 40 x 40 planes: 3 x 3 tiles
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        upsample_z_blockwise(tall, _WithLateralMargin("linear"), factor=2, tile=40)  # one tile: the plane
        upsample_z_blockwise(tall, ClassicalInterpolator("linear"), factor=2, tile=16)  # no margin


def test_a_tile_of_every_plane_over_the_memory_budget_is_cut_along_z(tall, monkeypatch):
    import zaug.blockwise as blockwise

    method = ClassicalInterpolator("linear")
    assert upsample_z_blockwise(tall, method, factor=2, tile=16).data.chunks[0] == (127,)
    # room for 40 of the 64 planes of 32 x 32 and their share of the 127 output planes, float32; less
    # 8 planes of context each side: 24 planes a tile
    monkeypatch.setattr(blockwise, "TILE_BYTES", 40 * (64 + 127) * 32 * 32 * 4 // 64)
    tiled = upsample_z_blockwise(tall, method, factor=2, tile=32)
    assert tiled.data.chunks[0] == (48, 48, 31)
    np.testing.assert_array_equal(tiled.data.compute(), upsample_z(tall, method, factor=2).data)
    with pytest.raises(InputError, match="at least 2 planes along z"):
        upsample_z_blockwise(tall, method, factor=2, tile=16, tile_planes=1)


def test_channels_and_time_points_are_tiled_one_stack_at_a_time(blobs):
    data = np.stack([np.stack([blobs, blobs[:, ::-1]]), np.stack([blobs[:, :, ::-1], blobs])])  # TCZYX
    vol = Volume(data, (1.0, 0.25, 0.25), "um", axes="TCZYX")
    whole = upsample_z(vol, ClassicalInterpolator("linear"), factor=2)
    tiled = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), factor=2, tile=20)
    assert tiled.data.shape == whole.data.shape == (2, 2, 33, 32, 32)
    np.testing.assert_array_equal(tiled.data.compute(), whole.data)


def test_zaugnet_tiles_with_margins_match_the_whole_volume(model):
    net, small = model
    whole = upsample_z(small, net, factor=2).data[1::2].astype(np.float64)
    calibration = dict(net.calibration)
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(small, net, factor=2, tile=32)
        assert tiled.data.npartitions == 12
        planes = tiled.data.compute()[1::2].astype(np.float64)
    # same calibration for every tile: that of the (here whole) central crop
    assert net.calibration == calibration
    contrast = np.abs(whole - whole.mean()).mean()
    assert np.abs(planes - whole).mean() < 0.01 * contrast
    # without context the tile borders differ more: the margin is what makes the tiles agree
    net.lateral_margin = 0
    try:
        with dask.config.set(scheduler="synchronous"):
            bare = upsample_z_blockwise(small, net, factor=2, tile=32).data.compute()[1::2].astype(np.float64)
    finally:
        del net.lateral_margin
    assert np.abs(bare - whole).mean() > np.abs(planes - whole).mean()


def test_zaugnet_tiles_cut_along_z_match_the_whole_volume(model):
    net, _ = model
    sample = load_sample()
    tall = sample.replace(data=np.ascontiguousarray(sample.data[:, :64, :64]))
    whole = upsample_z(tall, net, factor=2).data.astype(np.int64)
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(tall, net, factor=2, tile=64, tile_planes=12)
        assert len(tiled.data.chunks[0]) == 5
        planes = tiled.data.compute().astype(np.int64)
    # the network sees the same pairs; only the spline the calibration mixes in reaches past the cuts
    assert np.abs(planes - whole).max() <= 2 and np.mean(planes != whole) < 0.01


def test_zaugnet_tiles_cut_along_z_of_an_uneven_stack_use_the_stacks_calibration(model):
    net, _ = model
    sample = load_sample()
    keep = np.array([0, 1, 3, 4, 7, 9, 10, 13, 15, 16, 19, 21, 23, 24, 27, 29, 30, 33, 35, 36, 39, 41, 43, 44])
    uneven = sample.replace(data=np.ascontiguousarray(sample.data[keep, :64, :64]),
                            z_positions=sample.z_coords()[keep])
    whole = upsample_z(uneven, net, factor=2).data.astype(np.int64)
    measured = dict(net.calibration)
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(uneven, net, factor=2, tile=64, tile_planes=8)
        assert len(tiled.data.chunks[0]) == 3
        planes = tiled.data.compute().astype(np.int64)
    # each z piece has a mean spacing of its own; measured again per piece, the weights differed (seams of
    # hundreds of grey levels with ZAugNet+); the stack's weights serve every piece
    assert np.abs(planes - whole).max() <= 2 and np.mean(planes != whole) < 0.01
    fixed = net.for_stack(np.asarray(uneven.data, np.float32), uneven.z_coords(), tiled.z_coords())
    assert fixed._calibration_key(1.03 * next(iter(measured))) == next(iter(measured))


def test_zaugnet_transfer_mode_tiles_match_the_whole_volume(model):
    net, small = model
    net.mode = "transfer"
    try:
        whole = upsample_z(small, net, factor=2).data[1::2].astype(np.float64)
        with dask.config.set(scheduler="synchronous"):
            planes = upsample_z_blockwise(small, net, factor=2, tile=32).data.compute()[1::2].astype(np.float64)
        assert net.calibration == {}
    finally:
        net.mode = "direct"
    direct = upsample_z(small, net, factor=2).data[1::2].astype(np.float64)
    contrast = np.abs(whole - whole.mean()).mean()
    assert np.abs(planes - whole).mean() < 0.01 * contrast
    assert np.abs(direct - whole).mean() > 10 * np.abs(planes - whole).mean()  # the mode changed the planes


def test_restoration_tiles_equal_the_whole_stack_for_a_classical_restorer(blobs):
    vol = Volume(blobs, (1.0, 0.25, 0.25), "um")
    whole = restore_volume(vol, ClassicalRestorer("cubic"))
    tiled = upsample_z_blockwise(vol, RestorationTiles(ClassicalRestorer("cubic")), z_spacing=0.25, tile=16)
    assert tiled.data.npartitions == 4 and tiled.voxel_size == whole.voxel_size
    np.testing.assert_array_equal(tiled.data.compute(), whole.data)


def test_restoration_tiles_cut_along_z_equal_the_whole_stack(tall):
    whole = restore_volume(tall, ClassicalRestorer("cubic")).data.astype(np.int64)
    tiles = RestorationTiles(ClassicalRestorer("cubic"))
    assert tiles.axial_margin(tall.z_coords(), np.arange(0, 63.01, 0.25)) == 8 + 8  # 32 output planes, + 8 input
    tiled = upsample_z_blockwise(tall, tiles, z_spacing=0.25, tile=40, tile_planes=12)
    assert len(tiled.data.chunks[0]) == 6
    assert np.abs(tiled.data.compute().astype(np.int64) - whole).max() <= 1
    # planes 7 apart: some cuts of 3 planes hold none of them, and are left out
    whole = restore_volume(tall, ClassicalRestorer("cubic"), z_spacing=7.0).data.astype(np.int64)
    tiled = upsample_z_blockwise(tall, tiles, z_spacing=7.0, tile=40, tile_planes=3)
    assert tiled.data.chunks[0] == (1,) * 10
    assert np.abs(tiled.data.compute().astype(np.int64) - whole).max() <= 1


@pytest.mark.parametrize("module", [pytest.param(selfnet, marks=pytest.mark.slow), resin], ids=["selfnet", "resin"])
def test_learned_restoration_tiles_match_the_whole_stack(module, tmp_path):
    sample = load_sample()
    aniso = sample.replace(data=np.ascontiguousarray(sample.data[::4, :64, :64]), voxel_size=(1.16, 0.26, 0.26))
    options = {"steps": 2, "progress": False} | ({"cube": 16} if module is resin else {})
    model = module.load(module.fit([aniso], tmp_path / "m", options), device="cpu")
    whole = (model.restore_volume(aniso) if module is resin else restore_volume(aniso, model)).data
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(aniso, RestorationTiles(model), z_spacing=0.26, tile=32)
        assert tiled.data.npartitions == 4
        planes = tiled.data.compute()
    assert planes.shape == whole.shape
    contrast = np.abs(whole - whole.mean()).mean()
    assert np.abs(planes.astype(np.float64) - whole).mean() < 0.01 * contrast
    # twice as many planes, cut along z into tiles of 8 (and their context)
    tall = aniso.replace(data=np.concatenate([aniso.data, aniso.data[::-1]]))
    whole = (model.restore_volume(tall) if module is resin else restore_volume(tall, model)).data
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(tall, RestorationTiles(model), z_spacing=0.26, tile=64, tile_planes=8)
        assert len(tiled.data.chunks[0]) == 4
        planes = tiled.data.compute()
    assert np.abs(planes.astype(np.float64) - whole).mean() < 0.01 * contrast


def test_non_finite_values_are_reported_with_the_tile_and_nothing_is_written(blobs, tmp_path):
    data = blobs.astype(np.float32)
    data[3, 8, 20] = np.nan
    vol = Volume(data, (1.0, 0.25, 0.25), "um")
    out = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), factor=2, tile=16)
    with pytest.raises(InputError, match="NaN or infinite value.*tile at y 0, x 16"):
        write_volume(out, tmp_path / "out.ome.zarr")
    assert not list(tmp_path.rglob("*")), list(tmp_path.rglob("*"))


def test_lazy_output_streams_into_ome_zarr_with_aligned_chunks(blobs, tmp_path):
    vol = Volume(np.tile(blobs, (1, 10, 10)), (1.0, 0.25, 0.25), "um")  # 17 x 320 x 320
    out = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), factor=2, tile=300)
    write_volume(out, tmp_path / "out.ome.zarr")
    arr = zarr.open(str(tmp_path / "out.ome.zarr" / "0"), mode="r")
    assert arr.chunks == (1, 300, 300)  # a tile covers whole zarr chunks: no two tasks write one chunk
    back = read_volume(tmp_path / "out.ome.zarr")
    assert back.voxel_size == (0.5, 0.25, 0.25) and back.dtype == np.uint16
    np.testing.assert_array_equal(back.data, upsample_z(vol, ClassicalInterpolator("linear"), factor=2).data)


def test_lazy_reading_maps_npy_and_uncompressed_tiff(blobs, tmp_path):
    np.save(tmp_path / "a.npy", blobs)
    assert isinstance(read_volume(tmp_path / "a.npy", lazy=True).data, np.memmap)
    tifffile.imwrite(tmp_path / "raw.tif", blobs, imagej=True, metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"},
                     resolution=(4.0, 4.0))
    raw = read_volume(tmp_path / "raw.tif", lazy=True)
    assert isinstance(raw.data, np.memmap) and raw.voxel_size == pytest.approx((0.5, 0.25, 0.25))
    np.testing.assert_array_equal(raw.data, blobs)
    write_volume(Volume(blobs, (0.5, 0.25, 0.25), "um"), tmp_path / "packed.tif")  # zlib: cannot be mapped
    packed = read_volume(tmp_path / "packed.tif", lazy=True)
    assert hasattr(packed.data, "dask") and packed.voxel_size == pytest.approx((0.5, 0.25, 0.25))
    np.testing.assert_array_equal(packed.data.compute(), blobs)


def test_a_compressed_tiff_is_read_page_by_page(tmp_path, monkeypatch):
    from zaug.io import tiff

    stack = np.arange(5 * 40 * 48, dtype=np.uint16).reshape(5, 40, 48)
    write_volume(Volume(stack, (0.5, 0.25, 0.25), "um"), tmp_path / "packed.tif")
    monkeypatch.setattr(tiff, "LAZY_CHUNK", 16)
    lazy = read_volume(tmp_path / "packed.tif", lazy=True).data
    assert lazy.chunksize == (1, 16, 16)
    reads = []
    page_read = tiff.TiffPlanes.__getitem__
    monkeypatch.setattr(tiff.TiffPlanes, "__getitem__", lambda self, key: reads.append(key) or page_read(self, key))
    np.testing.assert_array_equal(lazy[1:3, 10:30, 5:12].compute(), stack[1:3, 10:30, 5:12])
    assert len(reads) == 2 * 2  # two planes, each in the two 16-row chunks the window touches (of 3 x 3)
    # it pickles as its path (dask cluster workers open the file themselves)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy)).compute(), stack)


def test_blockwise_prediction_of_a_compressed_tiff_matches_in_memory(blobs, tmp_path):
    vol = Volume(np.tile(blobs, (1, 3, 3)), (1.0, 0.25, 0.25), "um")  # 17 x 96 x 96
    write_volume(vol, tmp_path / "in.tif")
    lazy = read_volume(tmp_path / "in.tif", lazy=True)
    out = upsample_z_blockwise(lazy, ClassicalInterpolator("cubic"), factor=2, tile=40)
    write_volume(out, tmp_path / "out.ome.zarr")
    back = read_volume(tmp_path / "out.ome.zarr")
    assert back.voxel_size == (0.5, 0.25, 0.25) and back.dtype == vol.dtype
    np.testing.assert_array_equal(back.data, upsample_z(vol, ClassicalInterpolator("cubic"), factor=2).data)


def test_central_crop_is_in_memory_and_centred(blobs):
    vol = Volume(np.tile(blobs, (1, 2, 3)), (1.0, 0.25, 0.25), "um")  # 17 x 64 x 96
    lazy = upsample_z_blockwise(vol, ClassicalInterpolator("linear"), factor=2, tile=16)
    crop = central_crop(lazy, side=32)
    assert isinstance(crop.data, np.ndarray) and crop.data.shape == (33, 32, 32)
    np.testing.assert_array_equal(crop.data, lazy.data[:, 16:48, 32:64].compute())
    # a report's planes: those of the input's central planes, in both, with the z origin moved
    z_range = central_planes(vol, planes=5)
    assert z_range == (6.0, 10.0)
    here, there = central_crop(vol, 32, z_range), central_crop(lazy, 32, z_range)
    assert (here.nz, here.z_origin, there.nz, there.z_origin) == (5, 6.0, 9, 6.0)
    np.testing.assert_array_equal(there.data, lazy.data[12:21, 16:48, 32:64].compute())
    with pytest.raises(InputError, match="no plane of the stack lies between z 20 and 30"):
        central_crop(vol, 32, (20.0, 30.0))


def test_tiles_smaller_than_16_pixels_are_refused(blobs):
    with pytest.raises(InputError, match="at least 16"):
        upsample_z_blockwise(Volume(blobs), ClassicalInterpolator("linear"), factor=2, tile=8)


def test_cli_reads_ome_zarr_lazily_and_writes_tiles(run_cli, blobs, tmp_path):
    write_volume(Volume(np.tile(blobs, (1, 20, 20)), (1.0, 0.25, 0.25), "um"), tmp_path / "in.ome.zarr")
    res = run_cli("predict", "cubic", tmp_path / "in.ome.zarr", "-o", tmp_path / "out.ome.zarr", "--factor", "2",
                  "--report", tmp_path / "rep")
    assert res.returncode == 0, res.stderr
    assert "in 4 tiles" in res.stdout  # 640 x 640 planes, default tile 512
    out = read_volume(tmp_path / "out.ome.zarr")
    assert out.data.shape == (33, 640, 640) and out.voxel_size == (0.5, 0.25, 0.25)
    assert (tmp_path / "rep" / "report.md").exists()
    res = run_cli("predict", "cubic", tmp_path / "in.ome.zarr", "-o", tmp_path / "x.tif", "--factor", "2",
                  "--tile", "8")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "at least 16" in res.stderr


def test_cli_cuts_tiles_along_z_on_request(run_cli, tall, tmp_path):
    write_volume(tall, tmp_path / "in.tif")
    res = run_cli("predict", "linear", tmp_path / "in.tif", "-o", tmp_path / "out.ome.zarr", "--factor", "2",
                  "--tile-planes", "20")
    assert res.returncode == 0, res.stderr
    assert "in 4 tiles (4 along z)" in res.stdout  # whole 40 x 40 planes, 64 planes in tiles of 20
    np.testing.assert_array_equal(read_volume(tmp_path / "out.ome.zarr").data,
                                  upsample_z(tall, ClassicalInterpolator("linear"), factor=2).data)
    res = run_cli("predict", "linear", tmp_path / "in.tif", "-o", tmp_path / "x.tif", "--factor", "2",
                  "--tile-planes", "1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "at least 2 planes" in res.stderr
    assert not (tmp_path / "x.tif").exists()


def test_cli_restores_an_ome_zarr_input_tile_by_tile(run_cli, tmp_path):
    sample = load_sample()
    aniso = sample.replace(data=np.ascontiguousarray(sample.data[::4, :64, :64]), voxel_size=(1.16, 0.26, 0.26))
    model_dir = selfnet.fit([aniso], tmp_path / "m", {"steps": 2, "progress": False})
    write_volume(aniso, tmp_path / "in.ome.zarr")
    res = run_cli("predict", model_dir, tmp_path / "in.ome.zarr", "-o", tmp_path / "iso.ome.zarr", "--tile", "32")
    assert res.returncode == 0, res.stderr
    assert "in 4 tiles" in res.stdout
    out = read_volume(tmp_path / "iso.ome.zarr")
    assert out.voxel_size == pytest.approx((0.26, 0.26, 0.26)) and out.dtype == aniso.dtype
    assert out.data.shape[1:] == (64, 64)


def test_cli_scheduler_that_cannot_be_used_is_one_sentence_and_no_output(run_cli, blobs, tmp_path):
    write_volume(Volume(blobs, (1.0, 0.25, 0.25), "um"), tmp_path / "in.tif")
    res = run_cli("predict", "linear", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--factor", "2",
                  "--scheduler", "tcp://127.0.0.1:1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    expected = "cannot reach the dask scheduler at tcp://127.0.0.1:1" if HAS_DISTRIBUTED else "zaug[cluster]"
    assert expected in res.stderr
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.skipif(not HAS_DISTRIBUTED, reason="dask.distributed is not installed (pip install 'zaug[cluster]')")
def test_cli_scheduler_address_that_is_no_address_is_one_sentence(blobs, tmp_path, capsys):
    from zaug.cli import main

    write_volume(Volume(blobs, (1.0, 0.25, 0.25), "um"), tmp_path / "in.tif")
    code = main(["predict", "linear", str(tmp_path / "in.tif"), "-o", str(tmp_path / "o.tif"), "--factor", "2",
                 "--scheduler", "head-node"])
    err = capsys.readouterr().err
    assert code == 2 and "--scheduler head-node is not a dask scheduler address" in err and err.count("\n") == 1
    assert not (tmp_path / "o.tif").exists()
    import dask

    assert dask.config.get("scheduler", None) is None  # the failed client left no default scheduler behind


def _damage_zarr_chunk(store, plane: int) -> None:
    chunk = next(p for p in (store / "0").rglob("*") if p.is_file() and p.relative_to(store / "0").parts[0] == str(plane))
    chunk.write_bytes(b"garbage")


def _damage_tiff_page(path, plane: int) -> None:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[plane]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * count)


@pytest.mark.parametrize("name", ["in.ome.zarr", "in.tif"])
def test_a_damaged_part_of_a_lazy_input_is_named_and_nothing_is_written(blobs, tmp_path, capsys, name):
    from zaug.cli import main

    src = tmp_path / name
    if name.endswith(".zarr"):
        write_volume(Volume(blobs, (1.0, 0.25, 0.25), "um"), src)
        _damage_zarr_chunk(src, 5)
    else:
        tifffile.imwrite(src, blobs, compression="zlib", imagej=True, metadata={"axes": "ZYX"})  # read lazily
        _damage_tiff_page(src, 5)
    out = tmp_path / "o.ome.zarr"
    code = main(["predict", "linear", str(src), "-o", str(out), "--factor", "2", "--tile", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{name} cannot be read at z 5" in err and "the file is damaged there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.skipif(not HAS_DISTRIBUTED, reason="dask.distributed is not installed (pip install 'zaug[cluster]')")
def test_zaugnet_tiles_on_a_dask_cluster_match_this_machine(model):
    from dask.distributed import Client, LocalCluster

    net, small = model
    with dask.config.set(scheduler="synchronous"):
        here = upsample_z_blockwise(small, net, factor=2, tile=48).data.compute()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lazy = upsample_z_blockwise(small, net, factor=2, tile=48)
        there = client.compute(lazy.data).result()
    np.testing.assert_allclose(there.astype(np.float64), here.astype(np.float64), atol=1)


@pytest.mark.skipif(not HAS_DISTRIBUTED, reason="dask.distributed is not installed (pip install 'zaug[cluster]')")
def test_a_failing_tile_on_a_cluster_leaves_no_partial_output(tmp_path):
    import time

    import dask.array as da
    from dask.distributed import Client, LocalCluster

    def tile(block, block_info=None):
        import time

        if block_info[0]["chunk-location"][-1] == 0:
            time.sleep(0.2)
            raise ValueError("tile 0 fails")
        time.sleep(2.0)  # with two threads, some tile is still running when tile 0 fails
        return block + 1

    data = da.zeros((4, 32, 64), dtype=np.uint16, chunks=(4, 32, 16)).map_blocks(tile, dtype=np.uint16)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        with pytest.raises(ValueError, match="tile 0 fails"):
            write_volume(Volume(data, (1.0, 0.5, 0.5), "um"), tmp_path / "out.ome.zarr")
        time.sleep(2.5)  # a tile that was still running would have written by now
    assert list(tmp_path.iterdir()) == []  # neither the output nor a hidden partial store


def test_zaugnet_spacing_advice_is_given_once_per_stack_not_per_tile(model):
    import warnings

    net, small = model
    far = small.replace(voxel_size=(1.0,) + small.voxel_size[1:])  # trained on planes 0.29 um apart
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with dask.config.set(scheduler="synchronous"):
            upsample_z_blockwise(far, net, factor=2, tile=32).data.compute()
    spacing = [w for w in said if "differs from that of the training stack" in str(w.message)]
    assert len(spacing) == 1  # before: once more for each of the 12 tiles


def test_tiled_restoration_restores_the_acquired_planes_too(blobs):
    # z a whole multiple of the pixel size: every 4th output plane lies on an acquired one, which the tiled
    # path used to copy back unrestored, unlike restore_volume
    class Brighter(ClassicalRestorer):  # a stand-in for a network: changes every plane it restores
        def restore_planes(self, planes, rows):
            return super().restore_planes(planes, rows) * 1.5

    vol = Volume(blobs.astype(np.float32), (1.0, 0.25, 0.25), "um")
    whole = restore_volume(vol, Brighter("linear")).data
    with dask.config.set(scheduler="synchronous"):
        tiled = upsample_z_blockwise(vol, RestorationTiles(Brighter("linear")), z_spacing=0.25, tile=16)
        planes = tiled.data.compute()
    assert planes.shape == whole.shape
    np.testing.assert_allclose(planes, whole, rtol=1e-4, atol=1e-3 * float(np.abs(whole).max()))


def test_zaugnet_compares_z_spacings_in_one_unit(model):
    import warnings

    from zaug.predict import upsample_z

    net, small = model  # trained in um, planes 0.29 um apart
    in_nm = small.replace(voxel_size=tuple(1000 * v for v in small.voxel_size), unit="nm")
    for upsample in (lambda vol: upsample_z(vol, net, factor=2),
                     lambda vol: upsample_z_blockwise(vol, net, factor=2, tile=32).data.compute()):
        with warnings.catch_warnings(record=True) as said, dask.config.set(scheduler="synchronous"):
            warnings.simplefilter("always")
            upsample(in_nm)
        said = [str(w.message) for w in said]
        assert not any("differs from that of the training stack" in w for w in said), said  # was: 290 vs 0.29
        assert any("learnt from planes at least 580 nm apart and interpolates here between planes 290 nm" in w
                   for w in said), said  # the advice the same stack in um gets
