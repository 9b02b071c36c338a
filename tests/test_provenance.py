"""Which planes of an output the microscope acquired, and how zaug made the others (zaug.provenance)."""

import hashlib
import json
import warnings

import numpy as np
import pytest
import tifffile

from zaug import Volume, ZaugWarning, __version__
from zaug.io import read_volume, write_volume
from zaug.napari_plugin import LayerData, Method, get_reader, upsample_z_layer
from zaug.predict import match_noise, upsample_z
from zaug.provenance import acquired_mask, file_record, plane_labels, summary
from zaug.restore import ClassicalRestorer, restore_volume


def _stack(nz=5, axes="ZYX", lead=()):
    data = np.random.default_rng(0).integers(100, 4000, lead + (nz, 16, 16)).astype(np.uint16)
    return Volume(data, (2.0, 0.5, 0.5), "um", axes=axes, metadata={"source": "/data/acquired.tif"})


def test_a_stack_zaug_did_not_make_is_all_acquired_and_has_no_record():
    vol = _stack()
    assert acquired_mask(vol).all() and summary(vol) is None and plane_labels(vol) is None
    assert "made_by_zaug" not in vol.describe()


def test_interpolation_records_the_acquired_planes_and_the_step():
    out = upsample_z(_stack(), "cubic", factor=2)
    assert acquired_mask(out).tolist() == [True, False] * 4 + [True]
    [step] = out.metadata["history"]
    assert step["operation"] == "interpolation" and step["method"] == "cubic"
    assert step["input"] == {"planes": 5, "z_spacing": 2.0, "unit": "um", "file": "acquired.tif"}
    assert step["output"]["planes"] == 9 and step["output"]["z_spacing"] == 1.0
    assert summary(out).endswith("5 of 9 planes acquired, 4 predicted")
    # a second pass: the planes the first one predicted stay predicted though they are copied
    twice = upsample_z(out, "linear", factor=2)
    assert np.flatnonzero(acquired_mask(twice)).tolist() == [0, 4, 8, 12, 16]
    assert [s["method"] for s in twice.metadata["history"]] == ["cubic", "linear"]
    assert plane_labels(twice)[:2] == ["acquired", "predicted (cubic+linear)"]


def test_a_spacing_that_misses_the_acquired_planes_keeps_only_those_it_meets():
    out = upsample_z(_stack(), "linear", z_spacing=1.5)  # 0, 1.5, 3, 4.5, 6, 7.5: planes at 0 and 6 only
    assert np.flatnonzero(acquired_mask(out)).tolist() == [0, 4]


def test_restoration_changes_every_plane():
    out = restore_volume(_stack(), ClassicalRestorer("linear"), z_spacing=0.5)
    assert not acquired_mask(out).any()
    assert out.metadata["history"][-1]["operation"] == "restoration"
    assert set(plane_labels(out)) == {"restored (linear)"}


def test_noise_matching_is_recorded():
    vol = _stack()
    out = match_noise(upsample_z(vol, "linear", factor=2), vol)
    assert out.metadata["history"][-1]["noise_matched"] is True and "noise matched" in summary(out)


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.ome.zarr", "out.npz"])
def test_the_record_round_trips_through_every_format(tmp_path, name):
    out = upsample_z(_stack(lead=(2,), axes="CZYX"), "cubic", factor=2)
    write_volume(out, tmp_path / name)
    back = read_volume(tmp_path / name)
    assert acquired_mask(back).tolist() == acquired_mask(out).tolist()
    assert back.metadata["history"] == out.metadata["history"]
    assert summary(back) == summary(out)


def test_fiji_shows_each_planes_label_and_the_summary(tmp_path):
    # ImageJ orders images by time, then z, then channel: a label per image
    data = np.random.default_rng(0).integers(0, 4000, (2, 2, 3, 16, 16)).astype(np.uint16)
    vol = Volume(data, (2.0, 0.5, 0.5), "um", axes="TCZYX")
    write_volume(upsample_z(vol, "linear", factor=2), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        ij = tif.imagej_metadata
    per_z = ["acquired", "acquired", "predicted (linear)", "predicted (linear)"] * 2 + ["acquired", "acquired"]
    assert ij["Labels"] == per_z * 2
    assert ij["Info"].startswith("made by zaug") and "3 of 5 planes acquired" in ij["Info"]


def test_omero_sees_the_record_as_a_key_value_annotation(tmp_path):
    write_volume(upsample_z(_stack(), "linear", factor=2), tmp_path / "out.ome.tif")
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        xml = tif.ome_metadata
    assert '<M K="zaug">' in xml and "<Description>made by zaug" in xml


def test_plane_subsets_crops_units_and_new_voxel_sizes_keep_the_acquired_planes(tmp_path):
    out = upsample_z(_stack(nz=6), "linear", factor=2)  # 11 planes, acquired 0, 2, ..., 10
    write_volume(out, tmp_path / "out.tif")
    assert acquired_mask(out.crop(z=slice(3, 9))).tolist() == [False, True, False, True, False, True]
    assert acquired_mask(out.in_unit("nm")).tolist() == acquired_mask(out).tolist()
    other = read_volume(tmp_path / "out.tif", voxel_size=(3.0, 1.0, 1.0), unit="nm")  # the record counts planes
    assert acquired_mask(other).tolist() == acquired_mask(out).tolist()


@pytest.mark.parametrize("unit, step", [("m", 0.29e-6), ("um", 0.29), ("nm", 290.0)])
def test_planes_are_matched_by_position_in_any_unit(unit, step):
    """A fixed tolerance of 1e-6 took planes 0.29e-6 m apart for one plane: every new plane was a copy."""
    data = np.random.default_rng(0).integers(0, 4000, (6, 16, 16)).astype(np.uint16)
    out = upsample_z(Volume(data, (step, step, step), unit), "linear", factor=2)
    copies = [any(np.array_equal(plane, acquired) for acquired in data) for plane in out.data]
    assert copies == [True, False] * 5 + [True] and acquired_mask(out).tolist() == copies


@pytest.mark.parametrize("record", ["{not json", json.dumps({"history": [], "acquired_planes": []}),
                                    "[" * 100_000 + "]" * 100_000,
                                    json.dumps({"history": [{"operation": "interpolation"}], "acquired_planes": [99]}),
                                    json.dumps({"history": [{"operation": "rm -rf"}], "acquired_planes": [0]}),
                                    json.dumps([1, 2])])
def test_a_damaged_record_is_said_and_ignored(tmp_path, record):
    data = np.random.default_rng(0).integers(0, 4000, (5, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "odd.tif", data, imagej=True, metadata={"axes": "ZYX", "spacing": 1.0, "zaug": record})
    with pytest.warns(ZaugWarning, match="zaug record .* is damaged .* every plane counts as acquired"):
        vol = read_volume(tmp_path / "odd.tif")
    assert acquired_mask(vol).all() and summary(vol) is None


def test_a_record_of_the_wrong_types_keeps_only_what_it_should_hold(tmp_path, run_cli):
    step = {"operation": "interpolation", "method": ["rm"], "input": [1, 2],
            "output": {"planes": "many", "z_spacing": float("nan"), "unit": "um\nmade by"},
            "model": {"steps": 10**400, "self_check_gain_db": float("inf")}, "zaug": "9" * 1000, "other": {"a": 1}}
    data = np.random.default_rng(0).integers(0, 4000, (5, 16, 16)).astype(np.uint16)
    record = json.dumps({"history": [step], "acquired_planes": [0, 2]})
    tifffile.imwrite(tmp_path / "odd.tif", data, imagej=True, metadata={"axes": "ZYX", "spacing": 1.0, "zaug": record})
    vol = read_volume(tmp_path / "odd.tif")
    assert vol.metadata["history"] == [{"zaug": "9" * 200, "operation": "interpolation",
                                        "output": {"unit": "um\nmade by"}, "model": {"steps": 10**400}}]
    info = run_cli("info", tmp_path / "odd.tif")
    assert info.returncode == 0
    assert "unnamed interpolation (model ?); 2 of 5 planes acquired, 3 predicted" in info.stdout


def test_training_on_a_zaug_output_is_warned_about(tmp_path):
    from zaug.methods import zaugnet

    made = upsample_z(read_volume_sample(), "linear", factor=2)
    with pytest.warns(ZaugWarning, match=r"made by zaug: \d+ of its \d+ planes are predicted; a model trained"):
        zaugnet.fit([made], tmp_path / "m", {"steps": 2, "check_only": True, "progress": False})


def test_evaluating_a_zaug_output_is_warned_about_once(tmp_path):
    from zaug.evaluate import evaluate_drop_slice

    made = upsample_z(read_volume_sample(), "linear", factor=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_drop_slice(made, 2, methods=["linear"])
    said = [str(w.message) for w in caught if "made by zaug" in str(w.message)]
    assert len(said) == 1 and "scored include predictions" in said[0]


def read_volume_sample():
    from zaug.demo import load_sample

    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[:12, 40:104, 40:104]))


def test_a_learned_model_is_named_with_a_digest_of_its_weights(tmp_path):
    from zaug.methods import resolve, zaugnet

    sample = read_volume_sample()
    folder = zaugnet.fit([sample], tmp_path / "nuclei-x2", {"steps": 2, "progress": False, "patch": 32, "batch": 2})
    out = upsample_z(sample.crop(z=slice(0, 4)), resolve(str(folder), device="cpu"), factor=2)
    model = out.metadata["history"][-1]["model"]
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert model["folder"] == "nuclei-x2" and model["weights_sha256"] == digest
    assert model["method"] == "zaugnet" and model["steps"] == 2
    assert f"model nuclei-x2, weights {digest}" in summary(out)


def test_napari_layers_carry_the_record_through_to_the_file(tmp_path):
    from zaug.napari_plugin import write_image

    src = tmp_path / "stack.tif"
    write_volume(_stack(), src)
    [(data, attributes, _)] = get_reader(str(src))(str(src))
    layer = LayerData(data, scale=attributes["scale"], name="stack", metadata=attributes["metadata"])
    out, new, _ = upsample_z_layer(layer, Method.linear, z_spacing=1.0)
    again, newer, _ = upsample_z_layer(LayerData(out, scale=new["scale"], name="up", metadata=new["metadata"]),
                                       Method.linear, z_spacing=0.5)
    back = read_volume(write_image(str(tmp_path / "up.ome.tif"), again, newer)[0])
    assert np.flatnonzero(acquired_mask(back)).tolist() == [0, 4, 8, 12, 16]
    assert len(back.metadata["history"]) == 2


def test_zaug_info_says_how_the_stack_was_made(tmp_path, run_cli):
    write_volume(_stack(), tmp_path / "in.tif")
    assert run_cli("predict", "cubic", tmp_path / "in.tif", "-o", tmp_path / "x2.tif", "--factor", "2", "--report",
                   tmp_path / "report").returncode == 0
    assert "Planes: 5 of 9 planes acquired, 4 predicted." in (tmp_path / "report" / "report.md").read_text()
    assert run_cli("predict", "linear", tmp_path / "x2.tif", "-o", tmp_path / "x4.tif", "--factor", "2").returncode == 0
    info = run_cli("info", tmp_path / "x4.tif")
    assert info.returncode == 0
    assert (f"made by zaug {__version__}: cubic interpolation, 5 planes 2 um apart to 9 planes 1 um apart, from "
            "in.tif; then linear interpolation, 9 planes 1 um apart to 17 planes 0.5 um apart, from x2.tif; 5 of 17 "
            "planes acquired, 12 predicted") in info.stdout
    as_json = json.loads(run_cli("info", tmp_path / "x4.tif", "--json").stdout)
    assert as_json["made_by_zaug"]["acquired_planes"] == [0, 4, 8, 12, 16]


def test_each_image_of_an_ome_tiff_has_its_own_record(tmp_path):
    made = [upsample_z(_stack(), "linear", factor=2), upsample_z(_stack(nz=3), "cubic", factor=4)]
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tif:
        for vol in made:
            tif.write(vol.data, metadata={"axes": "ZYX", "PhysicalSizeZ": vol.voxel_size[0],
                                          "MapAnnotation": {"zaug": json.dumps(file_record(vol))}})
    for series, vol in enumerate(made):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the file's two series are said
            back = read_volume(tmp_path / "two.ome.tif", series=series)
        assert acquired_mask(back).tolist() == acquired_mask(vol).tolist()
        assert back.metadata["history"][0]["method"] == vol.metadata["history"][0]["method"]


def test_a_napari_layer_keeps_its_acquired_planes_by_number_when_it_is_moved(tmp_path):
    from zaug.napari_plugin import write_image

    write_volume(upsample_z(_stack(), "cubic", factor=2), tmp_path / "x2.tif")
    [(data, attributes, _)] = get_reader(str(tmp_path / "x2.tif"))(str(tmp_path / "x2.tif"))
    moved = dict(attributes, translate=(1.0, 0.0, 0.0), scale=(0.7, 0.5, 0.5))
    back = read_volume(write_image(str(tmp_path / "moved.ome.tif"), data, moved)[0])
    assert acquired_mask(back).tolist() == [True, False] * 4 + [True]


def test_a_npy_output_says_it_drops_the_record_and_an_npz_of_objects_keeps_its_pixels(tmp_path):
    made = upsample_z(_stack(), "linear", factor=2)
    with pytest.warns(ZaugWarning, match="holds pixels only, so the voxel size .* and the record of which planes "
                                         "are acquired are not stored"):
        write_volume(made, tmp_path / "out.npy")
    np.savez(tmp_path / "odd.npz", data=np.asarray(made.data), zaug=np.array([{"a": 1}], dtype=object))
    with pytest.warns(ZaugWarning, match="zaug record in .*odd.npz .* is damaged"):
        vol = read_volume(tmp_path / "odd.npz")
    np.testing.assert_array_equal(vol.data, made.data)


def test_a_file_name_with_a_line_break_stays_on_one_line():
    vol = _stack()
    vol = vol.replace(metadata=dict(vol.metadata, source="/data/two\nlines.tif"))
    assert "\n" not in summary(upsample_z(vol, "linear", factor=2))


def test_an_ome_zarr_zaug_attribute_that_is_not_an_object_is_said(tmp_path):
    import zarr

    write_volume(upsample_z(_stack(), "linear", factor=2), tmp_path / "out.ome.zarr")
    zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r+").attrs["zaug"] = "made by another tool"
    with pytest.warns(ZaugWarning, match="zaug record in .*out.ome.zarr .* is damaged"):
        vol = read_volume(tmp_path / "out.ome.zarr")
    assert acquired_mask(vol).all()
