import json

import numpy as np
import pytest
import tifffile

from zaug import InputError, OutputError, Volume, ZaugWarning
from zaug.io import check_output_path, read_volume, write_volume
from zaug.sample import load_sample

from .conftest import shared


def test_volume_rejects_axes_that_do_not_match_shape():
    with pytest.raises(InputError, match="3 dimensions"):
        Volume(np.zeros((4, 4)), axes="ZYX")
    with pytest.raises(InputError, match="not supported"):
        Volume(np.zeros((4, 4, 4)), axes="YZX")


def test_volume_z_positions_and_uniformity():
    vol = Volume(np.zeros((4, 8, 8)), (1, 0.5, 0.5), "um", z_positions=[0, 1, 3, 4])
    assert not vol.is_uniform
    assert vol.z_coords().tolist() == [0, 1, 3, 4]
    with pytest.raises(InputError, match="increasing"):
        Volume(np.zeros((3, 8, 8)), z_positions=[0, 2, 1])


def test_sample_is_the_cells3d_crop_with_voxel_size():
    vol = load_sample()
    assert vol.data.shape == (60, 128, 128) and vol.dtype == np.uint16
    assert vol.voxel_size == pytest.approx((0.29, 0.26, 0.26)) and vol.unit == "um"


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.zarr", "out.npz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_round_trip_keeps_dtype_values_and_voxel_size(tmp_path, name, dtype):
    data = (np.random.default_rng(1).random((5, 12, 10)) * 200).astype(dtype)
    vol = Volume(data, (0.7, 0.11, 0.13), "um")
    write_volume(vol, tmp_path / name)
    back = read_volume(tmp_path / name)
    assert back.dtype == dtype
    np.testing.assert_array_equal(np.asarray(back.data), data)
    assert back.voxel_size == pytest.approx((0.7, 0.11, 0.13), rel=1e-5)
    assert back.unit == "um" and back.axes == "ZYX"


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.zarr"])
def test_round_trip_with_channel_and_time_axes(tmp_path, name):
    data = np.arange(2 * 3 * 4 * 6 * 5, dtype=np.uint16).reshape(2, 3, 4, 6, 5)
    vol = Volume(data, (2.0, 0.5, 0.5), "um", axes="TCZYX")
    write_volume(vol, tmp_path / name)
    back = read_volume(tmp_path / name)
    assert back.axes == "TCZYX"
    np.testing.assert_array_equal(np.asarray(back.data), data)
    assert back.voxel_size == pytest.approx((2.0, 0.5, 0.5))


@pytest.mark.parametrize("name", ["out.tif", "out.zarr", "out.npz"])
def test_non_uniform_z_positions_round_trip(tmp_path, name):
    vol = Volume(np.ones((4, 8, 8), np.float32), (1, 0.2, 0.2), "um", z_positions=[0.0, 1.0, 2.5, 4.0])
    write_volume(vol, tmp_path / name)
    back = read_volume(tmp_path / name)
    assert back.z_coords() == pytest.approx([0.0, 1.0, 2.5, 4.0])


def test_int16_and_float64_kept_through_ome_tiff(tmp_path):
    for dtype in (np.int16, np.float64):
        data = np.linspace(-5, 5, 3 * 8 * 8).reshape(3, 8, 8).astype(dtype)
        write_volume(Volume(data, (1, 1, 1), "um"), tmp_path / f"x_{np.dtype(dtype).name}.tif")
        back = read_volume(tmp_path / f"x_{np.dtype(dtype).name}.tif")
        assert back.dtype == dtype
        np.testing.assert_array_equal(back.data, data)


def test_overrides_for_axes_and_voxel_size(tmp_path):
    data = np.zeros((3, 2, 8, 9), np.uint16)  # Z C Y X as a plain TIFF would hold it
    data[1, 1] = 7
    tifffile.imwrite(tmp_path / "plain.tif", data, photometric="minisblack")
    vol = read_volume(tmp_path / "plain.tif", axes="ZCYX", voxel_size=(2, 0.5, 0.5))
    assert vol.axes == "CZYX" and vol.data.shape == (2, 3, 8, 9)
    assert vol.data[1, 1].max() == 7
    assert vol.voxel_size == (2.0, 0.5, 0.5) and vol.unit == "um"
    with pytest.raises(InputError, match="image has 4"):
        read_volume(tmp_path / "plain.tif", axes="ZYX")


def test_npy_needs_voxel_size_option(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 8, 8), np.float32))
    assert read_volume(tmp_path / "a.npy").unit == "pixel"
    vol = read_volume(tmp_path / "a.npy", voxel_size=(1.5, 0.3, 0.3))
    assert vol.voxel_size == (1.5, 0.3, 0.3) and vol.unit == "um"


def test_ome_zarr_metadata_is_ngff(tmp_path):
    write_volume(Volume(np.zeros((3, 8, 8), np.uint8), (0.5, 0.1, 0.1), "um"), tmp_path / "a.zarr")
    attrs = json.loads((tmp_path / "a.zarr" / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["axes"][0]["unit"] == "micrometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.5, 0.1, 0.1]
    # NGFF 0.4 requires nested chunk keys
    assert json.loads((tmp_path / "a.zarr" / "0" / ".zarray").read_text())["dimension_separator"] == "/"


def test_reads_ome_zarr_0_5(tmp_path):
    # an NGFF 0.5 image as other tools write it: zarr v3, the metadata under "ome", two levels
    import zarr

    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    root = zarr.open_group(str(tmp_path / "v05.ome.zarr"), mode="w", zarr_format=3)
    root.create_array("s0", data=data, chunks=(1, 6, 8))
    root.create_array("s1", data=data[:, ::2, ::2], chunks=(1, 3, 4))
    axes = [{"name": "z", "type": "space", "unit": "micrometer"}, {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.3, 0.3]}]},
        {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.6, 0.6]}]}]}]}
    assert not (tmp_path / "v05.ome.zarr" / ".zattrs").exists()
    for lazy in (False, True):
        vol = read_volume(tmp_path / "v05.ome.zarr", lazy=lazy)
        assert vol.voxel_size == (2.0, 0.3, 0.3) and vol.unit == "um" and vol.axes == "ZYX"
        np.testing.assert_array_equal(np.asarray(vol.data), data)
    assert hasattr(read_volume(tmp_path / "v05.ome.zarr", lazy=True).data, "dask")


def test_a_zarr_folder_without_ngff_metadata_is_refused(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w").create_array("0", data=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(InputError, match="without OME-NGFF 'multiscales'"):
        read_volume(tmp_path / "plain.zarr")


def test_write_refuses_to_clobber_and_to_overwrite_input(tmp_path):
    vol = Volume(np.zeros((3, 8, 8), np.uint8), (1, 1, 1), "um")
    path = write_volume(vol, tmp_path / "a.tif")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        write_volume(vol, path)
    with pytest.raises(OutputError, match="is the input"):
        write_volume(vol, path, overwrite=True, inputs=[path])
    assert path.read_bytes() == before
    write_volume(vol.replace(data=np.ones((3, 8, 8), np.uint8)), path, overwrite=True)
    assert read_volume(path).data.max() == 1


def test_overwrite_never_replaces_a_folder_holding_the_input_or_other_files(tmp_path):
    vol = Volume(np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8), (1, 1, 1), "um")
    store = tmp_path / "res.ome.zarr"
    store.mkdir()
    inside = write_volume(vol, store / "input.tif")
    with pytest.raises(OutputError, match="is inside the output"):
        write_volume(vol, store, overwrite=True, inputs=[inside])
    notes = tmp_path / "notes.ome.zarr"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"not part of a zarr store \(notes.txt\)"):
        write_volume(vol, notes, overwrite=True)
    assert inside.exists() and (notes / "notes.txt").read_text() == "mine"
    # an earlier output, or an empty folder, is replaced
    out = write_volume(vol, tmp_path / "out.ome.zarr")
    write_volume(vol.replace(data=vol.data[::-1]), out, overwrite=True)
    np.testing.assert_array_equal(read_volume(out).data, vol.data[::-1])
    (tmp_path / "empty.ome.zarr").mkdir()
    write_volume(vol, tmp_path / "empty.ome.zarr", overwrite=True)
    # a file of the user's inside an array's folder of a store (was: deleted with it)
    (out / "0" / "sub").mkdir()
    (out / "0" / "sub" / "mine.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"not part of a zarr store \(0/sub/mine.txt\)"):
        write_volume(vol, out, overwrite=True)
    assert (out / "0" / "sub" / "mine.txt").read_text() == "mine"


def test_failed_write_leaves_no_file_under_final_name(tmp_path, monkeypatch):
    import zaug.io as zio

    def boom(volume, path, ome=None):
        path.write_bytes(b"half")
        raise RuntimeError("killed")

    monkeypatch.setattr(zio, "write_tiff", boom)
    with pytest.raises(RuntimeError):
        write_volume(Volume(np.zeros((3, 8, 8), np.uint8)), tmp_path / "a.tif")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, writer", [("a.tif", "write_tiff"), ("a.ome.zarr", "write_ome_zarr")])
def test_an_output_that_appears_during_the_write_is_kept_not_replaced(tmp_path, monkeypatch, name, writer):
    import zaug.io as zio

    final = tmp_path / name
    real = getattr(zio, writer)

    def another_run_finishes_first(volume, path, *args, **kwargs):
        real(volume, path, *args, **kwargs)
        real(volume.replace(data=np.full((3, 8, 8), 7, np.uint8)), final)  # the other run's result

    monkeypatch.setattr(zio, writer, another_run_finishes_first)
    with pytest.raises(OutputError, match="appeared while this run was writing it"):
        write_volume(Volume(np.zeros((3, 8, 8), np.uint8)), final)
    assert read_volume(final).data.min() == 7  # was: silently replaced by this run's zeros
    assert [p.name for p in tmp_path.iterdir()] == [name]
    monkeypatch.setattr(zio, writer, real)
    write_volume(Volume(np.zeros((3, 8, 8), np.uint8)), final, overwrite=True)
    assert read_volume(final).data.max() == 0


def test_outputs_a_file_system_refuses_or_a_link_in_the_way_get_one_sentence(tmp_path, monkeypatch):
    import errno
    import os

    import zaug.io as zio

    vol = Volume(np.zeros((3, 8, 8), np.uint8))
    (tmp_path / "dangling.tif").symlink_to(tmp_path / "nowhere.tif")
    with pytest.raises(OutputError, match="already exists"):  # was: the link replaced
        write_volume(vol, tmp_path / "dangling.tif")

    def disk_full(volume, path, *args, **kwargs):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zio, "write_tiff", disk_full)
    with pytest.raises(OutputError, match=r"cannot write .*full\.tif: No space left on device\."):
        write_volume(vol, tmp_path / "full.tif")
    monkeypatch.undo()
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    with pytest.raises(OutputError, match="is not writable"):
        write_volume(vol, tmp_path / "ro.tif")
    monkeypatch.undo()
    # a name of 250 characters is legal; the hidden temporary name must not push it past 255
    long = write_volume(vol, tmp_path / ("n" * 246 + ".tif"))
    assert read_volume(long).data.shape == (3, 8, 8)
    # a link or a file where a store goes is replaced with --overwrite, and only the link, not its target
    target = write_volume(vol, tmp_path / "target.ome.zarr")
    (tmp_path / "link.ome.zarr").symlink_to(target)
    write_volume(vol.replace(data=np.ones((3, 8, 8), np.uint8)), tmp_path / "link.ome.zarr", overwrite=True)
    assert read_volume(target).data.max() == 0 and read_volume(tmp_path / "link.ome.zarr").data.min() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.tif", "link.ome.zarr", long.name,
                                                          "target.ome.zarr"]


def test_an_output_inside_an_input_store_is_refused_and_killed_writes_are_pointed_at(tmp_path):
    vol = Volume(np.zeros((3, 8, 8), np.uint8), (1, 1, 1), "um")
    store = write_volume(vol, tmp_path / "in.ome.zarr")
    with pytest.raises(OutputError, match="is inside the input"):  # was: a TIFF written into the store
        write_volume(vol, store / "0" / "out.tif", inputs=[store])
    (tmp_path / ".zaug-partial-4242-0a1b2c3d-out.tif").write_bytes(b"half")  # a run killed with -9
    with pytest.warns(ZaugWarning, match=r"1 hidden partial output\(s\) of out.tif .*remove them unless") as said:
        check_output_path(tmp_path / "out.tif")  # as zaug predict checks its output before the work
        write_volume(vol, tmp_path / "out.tif")
    assert len([w for w in said if "hidden partial" in str(w.message)]) == 1  # said once, not at each look


def test_damaged_or_odd_files_get_one_sentence_that_names_them(tmp_path):
    data = np.zeros((3, 8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "neg.tif", data, imagej=True, resolution=(2, 2),
                     metadata={"spacing": -2, "unit": "um", "axes": "ZYX"})
    with pytest.raises(InputError, match=r"neg\.tif gives a voxel size of -2, 0\.5, 0\.5 um .* --voxel-size Z Y X"):
        read_volume(tmp_path / "neg.tif")  # was: "voxel size (-2.0, 0.5, 0.5) must be ...", naming neither
    assert read_volume(tmp_path / "neg.tif", voxel_size=(2, 0.5, 0.5)).voxel_size == (2, 0.5, 0.5)
    np.savez(tmp_path / "two.npz", data=data, voxel_size=np.array([2.0, 0.5]))
    with pytest.raises(InputError, match="voxel size of 2 number"):  # was: x taken from y
        read_volume(tmp_path / "two.npz")
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(InputError, match="holds no arrays"):
        read_volume(tmp_path / "empty.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"holds Python objects \(pickled data\), which zaug never loads") as caught:
        read_volume(tmp_path / "objects.npy")
    assert "allow_pickle" not in str(caught.value)  # numpy's advice to unpickle is not passed on
    store = write_volume(Volume(data + 1, (1, 1, 1), "um"), tmp_path / "cut.ome.zarr")
    import shutil

    shutil.rmtree(store / "0")
    with pytest.raises(InputError, match="names the array '0', which the folder does not hold"):
        read_volume(store)


def test_reads_real_shared_files_with_their_voxel_sizes():
    vol = read_volume(shared("cells3d_nuclei.tif"))
    assert vol.data.shape == (60, 256, 256) and vol.voxel_size == pytest.approx((0.29, 0.26, 0.26))
    chrom = read_volume(shared("neubias_xyz_8bit__chromosomes.tif"))
    assert chrom.unit == "um" and chrom.voxel_size[0] == pytest.approx(0.15)
    assert chrom.anisotropy == pytest.approx(4.43, abs=0.01)
    gala = read_volume(shared("gala_fibsem_train-image.tif"))
    assert gala.axes == "ZYX" and gala.data.shape == (50, 100, 200) and gala.unit == "pixel"


def test_an_interrupted_store_leaves_nothing_even_when_writes_land_late(tmp_path):
    import threading
    import time

    from zaug.io import atomic_path

    final = tmp_path / "out.ome.zarr"
    writer = None
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as tmp:
            tmp.mkdir()

            def late_chunk():  # as zarr's own event loop does with chunks sent before Ctrl-C
                time.sleep(0.3)
                (tmp / "0").mkdir(parents=True, exist_ok=True)
                (tmp / "0" / "0.0").write_bytes(b"chunk")

            writer = threading.Thread(target=late_chunk)
            writer.start()
            raise KeyboardInterrupt
    writer.join()
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_read_volume_unit_alone_converts_as_the_command_line_does(tmp_path):
    write_volume(Volume(np.zeros((4, 8, 8), np.uint8), (0.29, 0.26, 0.26), "um", z_origin=1.5), tmp_path / "a.tif")
    vol = read_volume(tmp_path / "a.tif", unit="nm")  # converted, not relabelled
    assert vol.unit == "nm" and vol.voxel_size == (290.0, 260.0, 260.0) and vol.z_origin == 1500.0
    assert read_volume(tmp_path / "a.tif", voxel_size=(1, 0.5, 0.5), unit="nm").voxel_size == (1.0, 0.5, 0.5)
    with pytest.raises(InputError, match="unknown unit 'furlong'"):
        read_volume(tmp_path / "a.tif", unit="furlong")
    np.save(tmp_path / "px.npy", np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(InputError, match=r"px\.npy: the stack has no physical unit, which cannot be converted"):
        read_volume(tmp_path / "px.npy", unit="um")


def test_an_array_where_a_volume_belongs_gets_one_sentence():
    from zaug.predict import upsample_z
    from zaug.volume import check_volume

    with pytest.raises(InputError, match=r"expected a zaug Volume, got ndarray; wrap an array .*Volume\(array"):
        check_volume(np.zeros((4, 8, 8)))
    from zaug.classic import ClassicalInterpolator

    with pytest.raises(InputError, match="expected a zaug Volume"):
        upsample_z(np.zeros((4, 8, 8)), ClassicalInterpolator("linear"), factor=2)
    assert Volume([[[1, 2], [3, 4]]] * 3).data.shape == (3, 2, 2)  # a nested list becomes an array
    vol = Volume(np.random.default_rng(0).random((5, 16, 16), np.float32), (2.0, 1.0, 1.0), "um")
    assert upsample_z(vol, "cubic", factor=2).voxel_size == (1.0, 1.0, 1.0)  # a name is resolved
    from zaug.restore import ClassicalRestorer

    with pytest.raises(InputError, match=r"restores volumes: use zaug\.restore\.restore_with"):
        upsample_z(vol, ClassicalRestorer("linear"), factor=2)
    from zaug.methods import zaugnet

    with pytest.raises(InputError, match=r"fit takes a list of zaug Volumes"):
        zaugnet.fit(vol, "unused", {"steps": 1})
    with pytest.raises(InputError, match=r"unknown training option 'sead' \(did you mean 'seed'\?\)"):
        zaugnet.fit([vol], "unused", {"steps": 1, "sead": 5})


def test_a_large_ome_zarr_output_gets_coarser_levels_for_viewers(tmp_path):
    import zarr

    from zaug.io.omezarr import halve_plane

    data = np.random.default_rng(0).integers(0, 4000, (3, 1030, 41)).astype(np.uint16)
    write_volume(Volume(data, (1.0, 0.2, 0.2), "um", yx_origin=(5.0, 7.0)), tmp_path / "o.ome.zarr")
    root = zarr.open_group(str(tmp_path / "o.ome.zarr"), mode="r")
    datasets = root.attrs["multiscales"][0]["datasets"]
    assert [root[d["path"]].shape for d in datasets] == [(3, 1030, 41), (3, 515, 21), (3, 258, 11)]
    scale, shift = datasets[2]["coordinateTransformations"]
    assert scale["scale"] == pytest.approx([1.0, 0.8, 0.8])
    assert shift["translation"] == pytest.approx([0.0, 5.0 + 1.5 * 0.2, 7.0 + 1.5 * 0.2])  # the centre of 4 pixels
    np.testing.assert_array_equal(root["1"][1], halve_plane(data[1]))
    assert root["1"][1, 0, 20] == data[1, :2, 40].mean().round()  # an odd last column counts twice
    back = read_volume(tmp_path / "o.ome.zarr")  # the full resolution, where it was
    np.testing.assert_array_equal(back.data, data)
    assert back.voxel_size == (1.0, 0.2, 0.2) and back.yx_origin == (5.0, 7.0)
    write_volume(Volume(data[:, :500]), tmp_path / "small.ome.zarr")  # planes a viewer shows whole: one level
    assert len(zarr.open_group(str(tmp_path / "small.ome.zarr"), mode="r").attrs["multiscales"][0]["datasets"]) == 1


@pytest.mark.parametrize("name, kind", [("cells.nd2", "a Nikon ND2 file"), ("cells.LIF", "a Leica LIF file"),
                                        ("cells.nii.gz", "a NIfTI file"), ("cells.oib", "an Olympus OIB file")])
def test_a_vendor_file_is_named_and_how_to_convert_it_said(tmp_path, name, kind, run_cli):
    (tmp_path / name).write_bytes(b"\0" * 64)
    said = f"{name} is {kind}, which zaug does not read: convert it to OME-TIFF or OME-Zarr first, with its voxel size"
    with pytest.raises(InputError, match=said):
        read_volume(tmp_path / name)
    with pytest.raises(InputError, match=f"cannot tell the format of .*{name}: use a name ending in .tif"):
        write_volume(Volume(np.zeros((3, 8, 8), np.uint8)), tmp_path / f"out-{name}")
    # zaug predict decides on tiles from the input's format before reading it: the same sentence
    proc = run_cli("predict", "linear", tmp_path / name, "-o", tmp_path / "out.tif", "--factor", "2")
    assert proc.returncode == 2 and said in proc.stderr
    missing = run_cli("predict", "linear", tmp_path / f"missing-{name}", "-o", tmp_path / "out.tif", "--factor", "2")
    assert missing.returncode == 2 and f"missing-{name} does not exist" in missing.stderr
