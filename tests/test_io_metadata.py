"""Voxel size, unit and origin as files state them: units, unknown sizes, NGFF transformations, TIFF tags."""

import itertools
import json
import pickle
import re
import sys
import warnings
from xml.etree import ElementTree

import numpy as np
import pytest
import tifffile

from zaug import InputError, Volume, ZaugWarning
from zaug.classic import ClassicalInterpolator
from zaug.io import read_volume, write_volume
from zaug.predict import upsample_z
from zaug.provenance import summary

STACK = np.random.default_rng(0).integers(0, 200, (5, 16, 16)).astype(np.uint16)


def _read_quietly(path, **kwargs):
    """Read, failing the test on any ZaugWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        return read_volume(path, **kwargs)


def _ome(path, **metadata):
    tifffile.imwrite(path, STACK, ome=True, metadata={"axes": "ZYX", **metadata})
    return path


# -- 1, 2: OME-TIFF sizes and plane positions in several units ------------------------------

def test_ome_tiff_sizes_in_mixed_units_are_converted_to_micrometres(tmp_path):
    path = _ome(tmp_path / "mixed.ome.tif", PhysicalSizeX=260, PhysicalSizeXUnit="nm", PhysicalSizeY=260,
                PhysicalSizeYUnit="nm", PhysicalSizeZ=0.29, PhysicalSizeZUnit="\u00b5m")
    vol = _read_quietly(path)
    assert vol.unit == "um" and vol.voxel_size == pytest.approx((0.29, 0.26, 0.26))
    assert vol.anisotropy == pytest.approx(0.29 / 0.26)


def test_ome_tiff_sizes_in_one_unit_keep_it(tmp_path):
    path = _ome(tmp_path / "nm.ome.tif", PhysicalSizeX=260, PhysicalSizeXUnit="nm", PhysicalSizeY=260,
                PhysicalSizeYUnit="nm", PhysicalSizeZ=290, PhysicalSizeZUnit="nm")
    assert _read_quietly(path).voxel_size == (290, 260, 260) and _read_quietly(path).unit == "nm"


def test_ome_plane_positions_are_converted_from_their_own_unit(tmp_path):
    positions = [0.0, 0.29, 0.58, 1.0, 1.29]  # micrometres, non-uniform
    path = _ome(tmp_path / "pos.ome.tif", PhysicalSizeX=260, PhysicalSizeXUnit="nm", PhysicalSizeY=260,
                PhysicalSizeYUnit="nm", PhysicalSizeZ=290, PhysicalSizeZUnit="nm",
                Plane={"PositionZ": positions, "PositionZUnit": ["\u00b5m"] * 5})
    vol = _read_quietly(path)
    assert vol.unit == "nm" and vol.voxel_size[1:] == (260, 260)
    assert vol.z_coords() == pytest.approx([0, 290, 580, 1000, 1290])
    assert vol.voxel_size[0] == pytest.approx(1290 / 4)


def test_ome_plane_positions_without_unit_are_in_physical_size_z_unit(tmp_path):
    # as zaug wrote them before it wrote PositionZUnit
    path = _ome(tmp_path / "old.ome.tif", PhysicalSizeX=260, PhysicalSizeXUnit="nm", PhysicalSizeY=260,
                PhysicalSizeYUnit="nm", PhysicalSizeZ=0.5, PhysicalSizeZUnit="\u00b5m",
                Plane={"PositionZ": [0.0, 0.5, 1.0, 2.0, 2.5]})
    vol = _read_quietly(path)
    assert vol.unit == "um" and vol.z_coords() == pytest.approx([0.0, 0.5, 1.0, 2.0, 2.5])


def test_ome_plane_positions_in_a_reference_frame_are_ignored(tmp_path):
    path = _ome(tmp_path / "frame.ome.tif", PhysicalSizeX=0.26, PhysicalSizeY=0.26, PhysicalSizeZ=0.29,
                Plane={"PositionZ": [0.0, 10.0, 20.0, 30.0, 40.0], "PositionZUnit": ["reference frame"] * 5})
    vol = _read_quietly(path)
    assert vol.z_positions is None and vol.voxel_size == pytest.approx((0.29, 0.26, 0.26))


# -- 3: TIFF resolution that says nothing about z, or nothing at all ---------------------------

def test_inch_resolution_of_a_plain_tiff_is_ignored(tmp_path):
    tifffile.imwrite(tmp_path / "dpi.tif", STACK, resolution=(72, 72))  # a writer's default, not a microscope's
    vol = _read_quietly(tmp_path / "dpi.tif")
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1) and vol.anisotropy == 1


def test_centimetre_tiff_without_z_spacing_is_unknown_and_says_how_to_set_it(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, STACK, resolution=(1 / 2.6e-5, 1 / 2.6e-5), resolutionunit="CENTIMETER")
    with pytest.warns(ZaugWarning, match=r"0\.26 x 0\.26 um but no z spacing.*--voxel-size Z 0\.26 0\.26 --unit um"):
        vol = read_volume(path)
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)
    given = _read_quietly(path, voxel_size=(0.29, 0.26, 0.26))  # the option settles it: no warning
    assert given.unit == "um" and given.voxel_size == (0.29, 0.26, 0.26)


def test_imagej_stack_without_spacing_is_one_unit_from_imagej_and_unknown_from_tifffile(tmp_path):
    # ImageJ leaves "spacing" out when it is 1 (its FileSaver); tifffile leaves it out when not given one
    imagej = tmp_path / "fiji.tif"
    tifffile.imwrite(imagej, STACK, imagej=True, resolution=(5, 5), metadata={"axes": "ZYX", "unit": "um"})
    description = tifffile.TiffFile(imagej).pages[0].description.replace("ImageJ=1.11a", "ImageJ=1.54f")
    tifffile.imwrite(imagej, STACK, resolution=(5, 5), description=description, metadata=None)
    assert _read_quietly(imagej).voxel_size == (1.0, 0.2, 0.2)
    by_script = tmp_path / "script.tif"
    tifffile.imwrite(by_script, STACK, imagej=True, resolution=(5, 5), metadata={"axes": "ZYX", "unit": "um"})
    with pytest.warns(ZaugWarning, match=r"0\.2 x 0\.2 um but no z spacing"):
        vol = read_volume(by_script)
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)


def test_ome_tiff_without_physical_size_z_is_unknown(tmp_path):
    path = _ome(tmp_path / "noz.ome.tif", PhysicalSizeX=0.26, PhysicalSizeY=0.26)
    with pytest.warns(ZaugWarning, match="no z spacing"):
        vol = read_volume(path)
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)


def test_ome_tiff_without_lateral_size_is_unknown(tmp_path):
    path = _ome(tmp_path / "noxy.ome.tif", PhysicalSizeZ=0.29)
    with pytest.warns(ZaugWarning, match="no lateral pixel size"):
        vol = read_volume(path)
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)


def test_ome_tiff_mixing_pixels_and_lengths_is_unknown(tmp_path):
    path = _ome(tmp_path / "px.ome.tif", PhysicalSizeX=0.26, PhysicalSizeY=0.26, PhysicalSizeZ=2,
                PhysicalSizeZUnit="pixel")
    with pytest.warns(ZaugWarning, match="cannot be converted"):
        vol = read_volume(path)
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)


def test_unitless_resolution_of_a_plain_tiff_is_ignored(tmp_path):
    tifffile.imwrite(tmp_path / "none.tif", STACK, resolution=(1 / 0.26, 1 / 0.26), resolutionunit="NONE")
    vol = _read_quietly(tmp_path / "none.tif")
    assert vol.unit == "pixel" and vol.voxel_size == (1, 1, 1)


# -- 4: unknown (pixel) sizes survive a round trip -----------------------------------------------

@pytest.mark.parametrize("name", ["out.ome.tif", "out.tif", "out.zarr", "out.npz"])
def test_pixel_units_round_trip(tmp_path, name):
    vol = Volume(STACK, (0.5, 1.0, 1.0), "pixel")  # e.g. a pixel-unit stack upsampled x2
    write_volume(vol, tmp_path / name)
    back = _read_quietly(tmp_path / name)
    assert back.unit == "pixel" and back.voxel_size == (0.5, 1.0, 1.0)


def test_ome_tiff_plane_positions_round_trip_in_nanometres(tmp_path):
    vol = Volume(STACK, (300, 260, 260), "nm", z_positions=[0, 290, 580, 1000, 1290])
    write_volume(vol, tmp_path / "pos.ome.tif")
    back = _read_quietly(tmp_path / "pos.ome.tif")
    assert back.unit == "nm" and back.z_coords() == pytest.approx([0, 290, 580, 1000, 1290])


# -- 5: the TIFF tags of OME-TIFF outputs agree with the OME metadata ----------------------------

@pytest.mark.parametrize("size, unit, per_cm", [((0.29, 0.26, 0.25), "um", (1e4 / 0.25, 1e4 / 0.26)),
                                                ((290, 260, 250), "nm", (1e7 / 250, 1e7 / 260))])
def test_ome_tiff_resolution_tags_are_pixels_per_centimetre(tmp_path, size, unit, per_cm):
    write_volume(Volume(STACK, size, unit), tmp_path / "out.ome.tif")
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        tags = tif.pages[0].tags
        assert tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
        xres, yres = (num / den for num, den in (tags["XResolution"].value, tags["YResolution"].value))
    assert (xres, yres) == pytest.approx(per_cm, rel=1e-6)


def test_ome_tiff_of_pixel_units_has_no_tag_unit(tmp_path):
    write_volume(Volume(STACK, (2.0, 1.0, 1.0), "pixel"), tmp_path / "px.ome.tif")
    with tifffile.TiffFile(tmp_path / "px.ome.tif") as tif:
        assert tif.pages[0].tags["ResolutionUnit"].value == tifffile.RESUNIT.NONE


# -- 6: OME-Zarr transformations ---------------------------------------------------------------

def _zarr(path, dataset_transforms, global_transforms=None, units=("nanometer",) * 3):
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", data=STACK, chunks=(1, 16, 16))
    ms = {"version": "0.4", "axes": [{"name": a, "type": "space", "unit": u} for a, u in zip("zyx", units)],
          "datasets": [{"path": "0", "coordinateTransformations": dataset_transforms}]}
    if global_transforms:
        ms["coordinateTransformations"] = global_transforms
    root.attrs["multiscales"] = [ms]
    return path


def test_ngff_global_scale_multiplies_the_dataset_scale(tmp_path):
    path = _zarr(tmp_path / "g.zarr", [{"type": "scale", "scale": [145, 130, 130]}],
                 [{"type": "scale", "scale": [2, 2, 2]}])
    vol = _read_quietly(path)
    assert vol.unit == "nm" and vol.voxel_size == (290, 260, 260)


def test_ngff_translation_is_the_z_origin_and_global_transforms_apply_after(tmp_path):
    path = _zarr(tmp_path / "t.zarr", [{"type": "scale", "scale": [145, 130, 130]},
                                       {"type": "translation", "translation": [1000, 0, 0]}],
                 [{"type": "scale", "scale": [2, 1, 1]}, {"type": "translation", "translation": [50, 0, 0]}])
    vol = _read_quietly(path)
    assert vol.voxel_size == (290, 130, 130) and vol.z_origin == 2 * 1000 + 50


def test_ngff_axes_in_mixed_units_are_converted(tmp_path):
    path = _zarr(tmp_path / "m.zarr", [{"type": "scale", "scale": [0.29, 260, 260]},
                                       {"type": "translation", "translation": [1.5, 0, 0]}],
                 units=("micrometer", "nanometer", "nanometer"))
    vol = _read_quietly(path)
    assert vol.unit == "um" and vol.voxel_size == pytest.approx((0.29, 0.26, 0.26)) and vol.z_origin == 1.5


def test_ngff_z_origin_is_carried_to_an_upsampled_output(tmp_path):
    path = _zarr(tmp_path / "in.zarr", [{"type": "scale", "scale": [290, 260, 260]},
                                        {"type": "translation", "translation": [1000, 0, 0]}])
    out = upsample_z(_read_quietly(path), ClassicalInterpolator("cubic"), factor=2)
    write_volume(out, tmp_path / "out.zarr")
    transforms = json.loads((tmp_path / "out.zarr" / ".zattrs").read_text())["multiscales"][0]["datasets"][0][
        "coordinateTransformations"]
    assert transforms == [{"type": "scale", "scale": [145.0, 260.0, 260.0]},
                          {"type": "translation", "translation": [1000.0, 0.0, 0.0]}]
    back = _read_quietly(tmp_path / "out.zarr")
    assert back.z_coords()[[0, -1]] == pytest.approx([1000, 1000 + 4 * 290])


def test_npz_keeps_the_z_origin(tmp_path):
    write_volume(Volume(STACK, (0.5, 0.2, 0.2), "um", z_origin=3.0), tmp_path / "o.npz")
    assert _read_quietly(tmp_path / "o.npz").z_coords()[0] == 3.0


# -- 7: the lateral (y, x) origin, with the z origin -----------------------------------------------

@pytest.mark.parametrize("name", ["out.zarr", "out.ome.tif", "out.tif", "out.npz"])
def test_origin_round_trips(tmp_path, name):
    vol = Volume(STACK, (290, 260, 260), "nm", z_origin=1000.0, yx_origin=(520.0, -260.0))
    write_volume(vol, tmp_path / name)
    back = _read_quietly(tmp_path / name)
    assert back.unit == "nm" and back.voxel_size == pytest.approx((290, 260, 260))
    assert back.z_positions is None and back.z_origin == pytest.approx(1000)
    assert back.yx_origin == pytest.approx((520, -260))


def test_ngff_lateral_translation_is_the_yx_origin_and_global_transforms_apply_after(tmp_path):
    path = _zarr(tmp_path / "t.zarr", [{"type": "scale", "scale": [290, 130, 130]},
                                       {"type": "translation", "translation": [0, 100, -40]}],
                 [{"type": "scale", "scale": [1, 2, 2]}, {"type": "translation", "translation": [0, 5, 5]}])
    assert _read_quietly(path).yx_origin == (2 * 100 + 5, 2 * -40 + 5)


def test_ngff_lateral_translation_is_carried_to_an_upsampled_output(tmp_path):
    path = _zarr(tmp_path / "in.zarr", [{"type": "scale", "scale": [290, 260, 260]},
                                        {"type": "translation", "translation": [1000, 520, -260]}])
    write_volume(upsample_z(_read_quietly(path), ClassicalInterpolator("linear"), factor=2), tmp_path / "out.zarr")
    transforms = json.loads((tmp_path / "out.zarr" / ".zattrs").read_text())["multiscales"][0]["datasets"][0][
        "coordinateTransformations"]
    assert transforms[1] == {"type": "translation", "translation": [1000.0, 520.0, -260.0]}


def test_restoration_keeps_the_lateral_origin():
    from zaug.restore import ClassicalRestorer, restore_volume

    vol = Volume(STACK.astype(np.float32), (1.0, 0.25, 0.25), "um", z_origin=2.0, yx_origin=(3.0, -4.0))
    out = restore_volume(vol, ClassicalRestorer("linear"))
    assert (out.voxel_size, out.z_origin, out.yx_origin) == ((0.25, 0.25, 0.25), 2.0, (3.0, -4.0))


def test_cli_predict_keeps_the_ngff_lateral_translation(tmp_path, capsys):
    from zaug.cli import main

    path = _zarr(tmp_path / "in.zarr", [{"type": "scale", "scale": [290, 260, 260]},
                                        {"type": "translation", "translation": [1000, 520, -260]}])
    assert main(["predict", "linear", str(path), "-o", str(tmp_path / "out.zarr"), "--factor", "2"]) == 0
    out = _read_quietly(tmp_path / "out.zarr")
    assert (out.nz, out.z_origin, out.yx_origin) == (9, 1000, (520, -260))


def test_cli_unit_converts_the_origin(tmp_path, capsys):
    from zaug.cli import main

    write_volume(Volume(STACK, (290, 260, 260), "nm", yx_origin=(520.0, -260.0)), tmp_path / "o.zarr")
    assert main(["info", str(tmp_path / "o.zarr"), "--unit", "um", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["yx_origin"] == {"y": 0.52, "x": -0.26}


def test_ome_tiff_lateral_origin_is_the_first_plane_position_in_its_unit(tmp_path):
    path = _ome(tmp_path / "stage.ome.tif", PhysicalSizeX=0.26, PhysicalSizeY=0.26, PhysicalSizeZ=0.29,
                Plane={"PositionX": [1500.0] * 5, "PositionXUnit": ["nm"] * 5, "PositionY": [12.5] * 5,
                       "PositionYUnit": ["\u00b5m"] * 5})
    assert _read_quietly(path).yx_origin == (12.5, 1.5)


def test_ome_tiff_origin_is_written_on_every_plane(tmp_path):
    vol = Volume(np.zeros((2, 3, 8, 8), np.int16), (0.5, 0.2, 0.2), "um", axes="CZYX", z_origin=3.0,
                 yx_origin=(1.0, -0.6))
    write_volume(vol, tmp_path / "o.ome.tif")
    with tifffile.TiffFile(tmp_path / "o.ome.tif") as tif:
        planes = [el.attrib for el in ElementTree.fromstring(tif.ome_metadata).iter() if el.tag.endswith("Plane")]
    assert len(planes) == 6
    assert {(p["PositionY"], p["PositionX"], p["PositionYUnit"]) for p in planes} == {("1.0", "-0.6", "\u00b5m")}
    assert sorted(float(p["PositionZ"]) for p in planes) == [3.0, 3.0, 3.5, 3.5, 4.0, 4.0]


def test_imagej_origin_is_in_pixels_counted_the_other_way(tmp_path):
    # ImageJ places pixel i at (i - origin) * size
    write_volume(Volume(STACK, (0.5, 0.2, 0.25), "um", z_origin=3.0, yx_origin=(1.0, -0.5)), tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        ij = tif.imagej_metadata
    assert (ij["zorigin"], ij["yorigin"], ij["xorigin"]) == pytest.approx((-6.0, -5.0, 2.0))


def test_a_given_voxel_size_keeps_an_imagej_origin_on_its_pixel(tmp_path):
    # the origin is 6, 5 and -2 pixels from the first voxel: with new sizes it stays there
    write_volume(Volume(STACK, (0.5, 0.2, 0.25), "um", z_origin=3.0, yx_origin=(1.0, -0.5)), tmp_path / "o.tif")
    vol = _read_quietly(tmp_path / "o.tif", voxel_size=(1.0, 0.1, 0.1))
    assert (vol.z_origin, vol.yx_origin) == (6.0, (0.5, -0.2))


def test_a_given_voxel_size_converts_a_physical_origin_to_its_unit(tmp_path):
    write_volume(Volume(STACK, (290, 260, 260), "nm", z_origin=1000.0, yx_origin=(520.0, -260.0)), tmp_path / "o.zarr")
    vol = _read_quietly(tmp_path / "o.zarr", voxel_size=(0.3, 0.25, 0.25), unit="um")
    assert (vol.voxel_size, vol.z_origin, vol.yx_origin) == ((0.3, 0.25, 0.25), 1.0, (0.52, -0.26))
    # uneven planes under a given (even) spacing: they start where the first plane was
    write_volume(Volume(STACK, (0.3, 0.25, 0.25), "um", z_positions=[2.0, 2.3, 2.7, 3.0, 3.4]), tmp_path / "u.npz")
    with pytest.warns(ZaugWarning, match="replaced by the even spacing of --voxel-size"):
        assert read_volume(tmp_path / "u.npz", voxel_size=(0.35, 0.25, 0.25)).z_origin == 2.0


def test_a_given_voxel_size_in_no_physical_unit_drops_a_physical_origin_with_a_warning(tmp_path):
    write_volume(Volume(STACK, (290, 260, 260), "nm", yx_origin=(520.0, -260.0)), tmp_path / "o.zarr")
    with pytest.warns(ZaugWarning, match="origin is in nm, which cannot be converted to pixel"):
        vol = read_volume(tmp_path / "o.zarr", voxel_size=(1, 1, 1), unit="pixel")
    assert (vol.z_origin, vol.yx_origin) == (0.0, (0.0, 0.0))


def test_central_crop_moves_the_lateral_origin(tmp_path):
    from zaug.blockwise import central_crop

    crop = central_crop(Volume(np.zeros((3, 20, 30), np.uint8), (1.0, 0.5, 0.25), "um", yx_origin=(1.0, 2.0)), 10)
    assert crop.yx_origin == (1.0 + 5 * 0.5, 2.0 + 10 * 0.25)


# -- 8: more axes than TCZYX --------------------------------------------------------------------

def test_more_than_five_axes_are_refused_in_one_sentence(tmp_path):
    np.save(tmp_path / "7d.npy", np.zeros((2, 1, 1, 2, 3, 8, 8), np.uint8))
    for axes in (None, "ABTCZYX"):
        with pytest.raises(InputError) as err:
            read_volume(tmp_path / "7d.npy", axes=axes)
        message = str(err.value)
        assert "at most 5 axes (TCZYX)" in message and "7 letters" not in message
        assert message.count(". ") == 0 and message.endswith(".")



@pytest.mark.parametrize("origin", [{"z_origin": float("nan")}, {"yx_origin": (0.0, float("inf"))},
                                    {"yx_origin": (1.0,)}])
def test_an_origin_that_is_no_position_is_refused(origin):
    with pytest.raises(InputError, match="origin"):
        Volume(STACK, (1.0, 1.0, 1.0), "um", **origin)


# -- files as microscopes and Fiji write them: damage, several series, calibrations ------------

def test_a_truncated_tiff_is_refused_not_read_as_fewer_planes(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.arange(10 * 32 * 32, dtype=np.uint16).reshape(10, 32, 32))
    whole = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[: len(whole) * 6 // 10])  # a copy that stopped part-way
    assert len(tifffile.TiffFile(cut).series[0].pages) < 10  # tifffile alone reads what it can
    with pytest.raises(InputError, match="damaged or truncated"):
        read_volume(cut)


def test_an_overview_plane_before_the_stack_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(np.zeros((16, 16), np.uint16), metadata={"axes": "YX"})
        tif.write(STACK, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5,
                                   "PhysicalSizeX": 0.5})
    with pytest.warns(ZaugWarning, match="2 image series .* reads series 1; choose another with --series"):
        vol = read_volume(path)
    np.testing.assert_array_equal(vol.data, STACK)
    assert vol.voxel_size == (2.0, 0.5, 0.5)
    with pytest.warns(ZaugWarning, match="reads series 1;"):
        np.testing.assert_array_equal(np.asarray(read_volume(path, lazy=True).data), STACK)


def test_series_picks_an_image_series_of_a_tiff(tmp_path, capsys):
    from zaug.cli import main

    path = tmp_path / "two.ome.tif"
    other = (STACK[:4] * 2).astype(np.uint16)
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(STACK, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
        tif.write(other, metadata={"axes": "ZYX", "PhysicalSizeZ": 3.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
    second = _read_quietly(path, series=1)  # chosen: no warning
    np.testing.assert_array_equal(second.data, other)
    assert second.voxel_size == (3.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(_read_quietly(path, series=1, lazy=True).data), other)
    with pytest.raises(InputError, match=r"holds 2 image series \(0 to 1\); --series 2 is not one of them"):
        read_volume(path, series=2)
    with pytest.raises(InputError, match="TIFF"):
        read_volume(write_volume(Volume(STACK), tmp_path / "a.npz"), series=0)
    assert main(["info", str(path), "--series", "1"]) == 0
    assert "4 x 16 x 16 (ZYX)" in capsys.readouterr().out
    # an output's record says which series it was made from
    made = read_volume(write_volume(upsample_z(second, "linear", factor=2), tmp_path / "x2.tif"))
    assert made.metadata["history"][-1]["input"]["series"] == 1
    assert "from two.ome.tif series 1;" in summary(made)


def test_an_ome_image_without_pixels_in_the_file_does_not_shift_the_series(tmp_path):
    # a converter's label or macro image kept elsewhere: an OME Image with no TiffData, which tifffile skips
    path = tmp_path / "macro.ome.tif"
    other = (STACK[:4] * 2).astype(np.uint16)
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(STACK, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
        tif.write(other, metadata={"axes": "ZYX", "PhysicalSizeZ": 3.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
    xml = tifffile.TiffFile(path).ome_metadata
    macro = ('<Image ID="Image:9" Name="macro"><Pixels ID="Pixels:9" DimensionOrder="XYCZT" Type="uint8" SizeX="2" '
             'SizeY="2" SizeC="1" SizeZ="1" SizeT="1" PhysicalSizeX="9" PhysicalSizeY="9" PhysicalSizeZ="9">'
             '<Channel ID="Channel:9:0" SamplesPerPixel="1"/></Pixels></Image>')
    tifffile.tiffcomment(path, xml.replace("<Image ", macro + "<Image ", 1).encode())
    assert [s.shape for s in tifffile.TiffFile(path).series] == [STACK.shape, other.shape]
    with pytest.warns(ZaugWarning, match="holds 2 image series"):
        first = read_volume(path)
    assert first.voxel_size == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(first.data, STACK)
    second = _read_quietly(path, series=1)
    assert second.voxel_size == (3.0, 0.5, 0.5)
    np.testing.assert_array_equal(second.data, other)
    # an Image with TiffData that tifffile cannot use (pages of another size) is skipped too: the series keeps
    # its own Image's sizes, not the skipped one's
    bad = macro.replace('Name="macro"', 'Name="odd"').replace('</Pixels>', '<TiffData IFD="0" PlaneCount="1"/>'
                                                                           '</Pixels>')
    odd = xml.replace("<Image ", bad + "<Image ", 1)
    tifffile.tiffcomment(path, odd.encode())
    assert [s.shape for s in tifffile.TiffFile(path).series] == [STACK.shape, other.shape]
    with pytest.warns(ZaugWarning, match="discontiguous storage"):  # tifffile's note
        assert read_volume(path, series=1).voxel_size == (3.0, 0.5, 0.5)
    # where no Image has the series' size, none is taken for it (and read_volume says so)
    from types import SimpleNamespace

    from zaug.io.tiff import _ome_image_of_series

    root = ElementTree.fromstring(odd)
    series = [SimpleNamespace(shape=STACK.shape), SimpleNamespace(shape=other.shape)]
    assert [_ome_image_of_series(root, i, series) for i in (0, 1)] == [1, 2]  # after the odd one
    assert _ome_image_of_series(root, 1, [series[0], SimpleNamespace(shape=(7, 16, 16))]) is None


@pytest.mark.parametrize("lazy", [False, True])
def test_fiji_signed_16_bit_is_read_as_its_values_and_written_back(tmp_path, lazy):
    values = (STACK.astype(np.int32) - 150).astype(np.int16)  # negative and positive
    path = tmp_path / "signed.tif"
    tifffile.imwrite(path, (values.astype(np.int32) + 32768).astype(np.uint16), imagej=True,
                     metadata={"axes": "ZYX", "spacing": 1.0, "unit": "micron", "cf": 0, "c0": -32768.0,
                               "c1": 1.0, "vunit": "Gray Value"})
    vol = _read_quietly(path, lazy=lazy)
    assert vol.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(vol.data), values)
    out = write_volume(upsample_z(vol.replace(data=np.asarray(vol.data)), ClassicalInterpolator("linear"), 2),
                       tmp_path / "out.tif")
    np.testing.assert_array_equal(read_volume(out).data[::2], values)


def test_float16_goes_to_tiff_as_float32_with_every_value(tmp_path):
    data = (STACK / 7).astype(np.float16)
    with pytest.warns(ZaugWarning, match="written as float32"):
        out = write_volume(Volume(data, (1, 1, 1), "um"), tmp_path / "half.ome.tif")
    back = read_volume(out)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.data, data.astype(np.float32))


def test_planes_one_pixel_wide_are_refused_by_imagej_tiff_and_kept_by_ome_tiff(tmp_path):
    from zaug import OutputError

    thin = Volume(STACK[:, :, :1], (1, 1, 1), "um")
    with pytest.raises(OutputError, match="ImageJ TIFF cannot hold planes 1 pixel wide; write .ome.tif"):
        write_volume(thin, tmp_path / "thin.tif")  # was: one 5 x 32 plane written, unreadable
    assert list(tmp_path.iterdir()) == []
    back = tifffile.imread(write_volume(thin, tmp_path / "thin.ome.tif"))
    np.testing.assert_array_equal(back.reshape(thin.data.shape), thin.data)


def test_64_bit_integers_go_to_tiff_as_32_bit_when_every_value_fits(tmp_path):
    from zaug import OutputError

    for dtype, stored in ((np.int64, np.int32), (np.uint64, np.uint32)):
        data = STACK.astype(dtype)
        with pytest.warns(ZaugWarning, match=f"written as {np.dtype(stored)}"):
            out = write_volume(Volume(data, (1, 1, 1), "um"), tmp_path / f"{np.dtype(dtype)}.tif")
        back = read_volume(out)
        assert back.dtype == stored
        np.testing.assert_array_equal(back.data, data)
    big = STACK.astype(np.int64) + 2**40
    with pytest.raises(OutputError, match="do not fit in int32; write .ome.zarr or .npz"):
        write_volume(Volume(big, (1, 1, 1), "um"), tmp_path / "big.ome.tif")
    assert not (tmp_path / "big.ome.tif").exists()
    write_volume(Volume(big, (1, 1, 1), "um"), tmp_path / "big.npz")  # there, as it is


def test_npy_output_warns_that_it_drops_the_voxel_size(tmp_path):
    with pytest.warns(ZaugWarning, match="holds pixels only"):
        write_volume(Volume(STACK, (2, 0.5, 0.5), "um"), tmp_path / "a.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        write_volume(Volume(STACK), tmp_path / "b.npy")  # nothing to lose


def test_info_shows_the_origin(tmp_path, capsys):
    from zaug.cli import main

    path = write_volume(Volume(STACK, (2, 0.5, 0.5), "um", z_origin=5.0, yx_origin=(100.0, 200.0)),
                        tmp_path / "a.ome.tif")
    assert main(["info", str(path)]) == 0
    assert "origin (first voxel) z 5, y 100, x 200 um" in capsys.readouterr().out
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["z_origin"] == 5.0 and info["yx_origin"] == {"y": 100.0, "x": 200.0}


def test_a_stack_saved_page_by_page_is_read_as_one_stack(tmp_path):
    path = tmp_path / "pages.tif"
    for plane in STACK:  # each page with metadata of its own: tifffile sees a series per page
        tifffile.imwrite(path, plane, append=True)
    assert len(tifffile.TiffFile(path).series) == len(STACK)
    np.testing.assert_array_equal(_read_quietly(path).data, STACK)


@pytest.mark.parametrize("name", ["a.ome.tif", "a.ome.zarr", "a.tif"])
def test_channel_names_and_time_step_are_carried_to_an_upsampled_output(tmp_path, name):
    data = np.random.default_rng(1).integers(0, 200, (3, 2, 5, 8, 8)).astype(np.uint16)
    vol = Volume(data, (2, 0.5, 0.5), "um", axes="TCZYX", channel_names=("DAPI", "GFP"), time_interval=30.0,
                 time_unit="min", time_origin=60.0 if name.endswith("zarr") else 0.0)
    out = upsample_z(vol, ClassicalInterpolator("linear"), 2)
    if name == "a.tif":
        with pytest.warns(ZaugWarning, match="holds no channel names, so DAPI, GFP"):
            path = write_volume(out, tmp_path / name)
    else:
        path = write_volume(out, tmp_path / name)
    back = _read_quietly(path)
    assert back.channel_names == (() if name == "a.tif" else ("DAPI", "GFP"))
    assert (back.time_interval, back.time_unit, back.time_origin) == (30.0, "min", out.time_origin)
    assert back.voxel_size == (1.0, 0.5, 0.5)


def test_time_units_are_read_in_each_formats_spelling(tmp_path):
    stack = np.zeros((2, 5, 8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, metadata={"axes": "TZYX", "finterval": 2.5})
    tifffile.imwrite(tmp_path / "o.ome.tif", stack, ome=True,
                     metadata={"axes": "TZYX", "TimeIncrement": 250, "TimeIncrementUnit": "ms"})
    assert (read_volume(tmp_path / "ij.tif").time_interval, read_volume(tmp_path / "ij.tif").time_unit) == (2.5, "s")
    assert (read_volume(tmp_path / "o.ome.tif").time_interval, read_volume(tmp_path / "o.ome.tif").time_unit) == (
        250.0, "ms")


def test_names_and_time_that_do_not_fit_the_axes_are_dropped():
    vol = Volume(np.zeros((2, 5, 8, 8), np.uint8), axes="CZYX", channel_names=("a", "b"), time_interval=3.0)
    assert vol.channel_names == ("a", "b") and vol.time_interval is None  # no T axis
    one = vol.replace(data=vol.data[0], axes="ZYX")
    assert one.channel_names == ()
    assert vol.replace(channel_names=("a",)).channel_names == ()


def test_ome_z_origin_is_the_first_time_points_when_the_stage_drifts(tmp_path):
    z = [10.0 + 2 * k for k in range(5)] + [12.0 + 2 * k for k in range(5)]  # T1 drifted by 2 um
    tifffile.imwrite(tmp_path / "drift.ome.tif", np.zeros((2, 5, 8, 8), np.uint8), ome=True,
                     metadata={"axes": "TZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5,
                               "Plane": {"PositionZ": z}})
    vol = read_volume(tmp_path / "drift.ome.tif")
    assert vol.z_origin == 10.0 and vol.z_positions is None


def _ramp(rgb):
    return np.round(np.outer(rgb, np.arange(256) / 255)).astype(np.uint8)


def _fiji_composite(path):
    """A two-channel ImageJ composite with red and magenta LUTs and a display range per channel, as Fiji saves."""
    data = np.random.default_rng(2).integers(0, 3000, (5, 2, 8, 8)).astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={
        "axes": "ZCYX", "spacing": 2.0, "unit": "um", "Ranges": (0.0, 1000.0, 10.0, 2000.0),
        "LUTs": [_ramp((255, 0, 0)), _ramp((255, 0, 255))], "mode": "composite"})
    return path


@pytest.mark.parametrize("name", ["out.tif", "out.ome.zarr", "out.ome.tif"])
def test_colours_and_display_ranges_are_carried_to_an_upsampled_output(tmp_path, name):
    vol = _read_quietly(_fiji_composite(tmp_path / "fiji.tif"))
    assert vol.metadata["display"]["mode"] == "composite"
    assert [(c["window"], c["color"]) for c in vol.metadata["display"]["channels"]] == [
        ((0.0, 1000.0), "FF0000"), ((10.0, 2000.0), "FF00FF")]
    assert vol.describe()["display"][1] == {"window": [10.0, 2000.0], "color": "FF00FF"}  # zaug info shows it
    back = _read_quietly(write_volume(upsample_z(vol, ClassicalInterpolator("cubic"), 2), tmp_path / name))
    channels = back.metadata["display"]["channels"]
    assert [c["color"] for c in channels] == ["FF0000", "FF00FF"]
    if name == "out.ome.tif":  # OME-TIFF holds a colour per channel, not a display range
        assert [c["window"] for c in channels] == [None, None]
    else:
        assert [c["window"] for c in channels] == [(0.0, 1000.0), (10.0, 2000.0)]
        assert back.metadata["display"]["mode"] == "composite"
    if name == "out.tif":
        luts = tifffile.TiffFile(tmp_path / name).imagej_metadata["LUTs"]
        np.testing.assert_array_equal(luts[1], _ramp((255, 0, 255)))  # Fiji shows it as the input


def test_one_channel_keeps_its_colour_and_range_and_a_lut_that_is_no_ramp(tmp_path):
    vol = _read_quietly(_fiji_composite(tmp_path / "fiji.tif")).select(channel=1)
    back = _read_quietly(write_volume(vol, tmp_path / "one.tif"))
    assert back.metadata["display"]["channels"] == [{"window": (10.0, 2000.0), "color": "FF00FF", "lut": None}]
    fire = np.stack([np.arange(256), np.arange(256)[::-1], np.full(256, 40)]).astype(np.uint8)
    tifffile.imwrite(tmp_path / "fire.tif", STACK, imagej=True, metadata={"axes": "ZYX", "LUTs": [fire]})
    fired = _read_quietly(write_volume(_read_quietly(tmp_path / "fire.tif"), tmp_path / "fire_out.tif"))
    np.testing.assert_array_equal(fired.metadata["display"]["channels"][0]["lut"], fire)


def test_the_display_range_fiji_keeps_for_one_channel_is_carried(tmp_path):
    # Fiji keeps one channel's display range as min= and max= in its description (the shared chromosomes)
    tifffile.imwrite(tmp_path / "fiji.tif", STACK, imagej=True, metadata={"axes": "ZYX", "min": 96.0, "max": 203.0})
    vol = _read_quietly(tmp_path / "fiji.tif")
    assert vol.metadata["display"]["channels"][0]["window"] == (96.0, 203.0)
    back = tifffile.TiffFile(write_volume(vol, tmp_path / "out.tif")).imagej_metadata
    assert (back["min"], back["max"]) == (96.0, 203.0)


def test_omero_windows_and_colours_of_another_writer_are_read(tmp_path):
    import zarr

    path = tmp_path / "other.ome.zarr"
    write_volume(Volume(STACK, (1, 0.5, 0.5), "um"), path)
    root = zarr.open_group(str(path), mode="a")
    root.attrs["omero"] = {"channels": [{"color": "00ff00", "window": {"start": 5, "end": 150, "min": 0,
                                                                        "max": 65535}, "label": "GFP"}],
                           "rdefs": {"model": "color"}}
    vol = _read_quietly(path)
    assert vol.metadata["display"]["channels"] == [{"window": (5.0, 150.0), "color": "00FF00", "lut": None}]
    luts = tifffile.TiffFile(write_volume(vol, tmp_path / "gfp.tif")).imagej_metadata
    assert luts["Ranges"] == (5.0, 150.0)
    np.testing.assert_array_equal(luts["LUTs"], _ramp((0, 255, 0)))


@pytest.mark.parametrize("positions, problem", [([5, 4.5, 3.2, 3.0, 2.0], "decrease"), ([1, 1.5, 1.5, 2, 3], "repeat"),
                                                ([1, 2, float("nan"), 4, 5], "not a number")])
def test_z_positions_that_cannot_be_used_are_dropped_with_a_warning(tmp_path, positions, problem):
    ome = _ome(tmp_path / "stage.ome.tif", PhysicalSizeX=0.26, PhysicalSizeY=0.26, PhysicalSizeZ=0.5,
               Plane={"PositionZ": positions})  # a stage moving down, a position logged twice, a lost one
    with pytest.warns(ZaugWarning, match=f"OME plane positions .*{problem}.* not used"):
        vol = read_volume(ome)
    assert vol.is_uniform and vol.voxel_size[0] == 0.5 and vol.z_origin == 0.0
    imagej = tmp_path / "stage.tif"
    tifffile.imwrite(imagej, STACK, imagej=True, metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um",
                                                            "zaug_z_positions": json.dumps(positions)})
    with pytest.warns(ZaugWarning, match=f"stage.tif: its z positions .*{problem}"):
        assert read_volume(imagej).voxel_size[0] == 0.5  # was: "voxel size (-0.75, ...) must be positive"


def test_a_given_voxel_size_replacing_uneven_positions_says_so(tmp_path):
    uneven = Volume(STACK, (0.5, 0.26, 0.26), "um", z_positions=[0.0, 0.29, 0.87, 1.16, 2.03])
    assert uneven.voxel_size[0] == pytest.approx(2.03 / 4)  # the mean spacing, whatever was given
    path = write_volume(uneven, tmp_path / "u.ome.tif")
    with pytest.warns(ZaugWarning, match="replaced by the even spacing of --voxel-size"):
        assert read_volume(path, voxel_size=(0.5, 0.26, 0.26)).is_uniform


def test_axes_that_move_z_warn_that_the_file_sizes_follow_the_letters(tmp_path):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, STACK, imagej=True, resolution=(2, 2), metadata={"spacing": 3, "unit": "um", "axes": "ZYX"})
    with pytest.warns(ZaugWarning, match=r"--axes YXZ moves z.*3 0\.5 0\.5 um.*--voxel-size"):
        vol = read_volume(path, axes="YXZ")
    assert vol.data.shape == (16, 5, 16) and vol.voxel_size == (3.0, 0.5, 0.5)
    assert _read_quietly(path, axes="ZYX").data.shape == STACK.shape  # the file's own order: nothing to check
    assert _read_quietly(path, axes="YXZ", voxel_size=(1, 1, 1)).voxel_size == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("out_name", ["out.ome.tif", "out.ome.zarr", "out.npz"])
def test_the_name_of_a_files_one_channel_is_carried_to_the_output(tmp_path, out_name):
    src = tmp_path / "dna.ome.tif"
    tifffile.imwrite(src, STACK[None], ome=True, metadata={"axes": "CZYX", "Channel": {"Name": ["dna"]}})
    vol = read_volume(src)
    assert vol.axes == "ZYX" and vol.metadata["channel"] == "dna"
    write_volume(upsample_z(vol, "linear", factor=2), tmp_path / out_name)
    assert read_volume(tmp_path / out_name).metadata.get("channel") == "dna"


def test_npz_keeps_channel_names_and_time_step(tmp_path):
    vol = Volume(np.arange(2 * 2 * 4 * 8 * 8, dtype=np.uint16).reshape(2, 2, 4, 8, 8), (1.0, 0.5, 0.5), "um",
                 axes="TCZYX", channel_names=("dna", "actin"), time_interval=2.5, time_unit="min", time_origin=5.0)
    write_volume(vol, tmp_path / "v.npz")
    back = _read_quietly(tmp_path / "v.npz")
    assert back.channel_names == ("dna", "actin")
    assert (back.time_interval, back.time_unit, back.time_origin) == (2.5, "min", 5.0)


@pytest.mark.parametrize("kind", ["imagej", "ome"])
def test_an_rgb_stack_comes_back_as_red_green_and_blue_channels(tmp_path, kind):
    rgb = np.random.default_rng(1).integers(0, 255, (5, 16, 16, 3)).astype(np.uint8)
    src = tmp_path / ("rgb.tif" if kind == "imagej" else "rgb.ome.tif")
    tifffile.imwrite(src, rgb, photometric="rgb", **({"imagej": True} if kind == "imagej" else {"ome": True}),
                     metadata={"axes": "ZYXS"})
    vol = read_volume(src)
    assert vol.axes == "CZYX"
    np.testing.assert_array_equal(vol.data[1], rgb[..., 1])
    write_volume(upsample_z(vol, "linear", factor=2), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:  # Fiji: a composite of red, green and blue
        ij = tif.imagej_metadata
        assert ij["mode"] == "composite"
        assert [tuple(lut[:, -1]) for lut in ij["LUTs"]] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
        assert ij["Ranges"] == (0.0, 255.0) * 3


def test_a_plain_arrays_guessed_axis_order_is_said(tmp_path):
    np.save(tmp_path / "zcyx.npy", np.zeros((8, 3, 16, 16), np.float32))
    with pytest.warns(ZaugWarning, match="read as CZYX"):
        read_volume(tmp_path / "zcyx.npy")
    assert _read_quietly(tmp_path / "zcyx.npy", axes="ZCYX").data.shape[:2] == (3, 8)
    np.save(tmp_path / "zyx.npy", np.zeros((8, 16, 16), np.float32))
    _read_quietly(tmp_path / "zyx.npy")  # three axes: nothing to guess


@pytest.mark.parametrize("name", ["narrow.ome.tif", "narrow.tif"])
@pytest.mark.parametrize("shape", [(6, 64, 4), (2, 6, 64, 3)])
def test_planes_three_or_four_pixels_wide_are_written_as_grey_not_colour(tmp_path, name, shape):
    axes = "ZYX" if len(shape) == 3 else "CZYX"
    vol = Volume(np.arange(np.prod(shape), dtype=np.uint16).reshape(shape), (1.0, 0.25, 0.25), "um", axes=axes)
    write_volume(vol, tmp_path / name)
    back = read_volume(tmp_path / name)
    assert back.axes == axes
    np.testing.assert_array_equal(back.data, vol.data)


def test_an_omero_block_gives_every_channel_the_colour_and_window_ngff_requires(tmp_path):
    import dask.array as da

    data = np.stack([np.full((4, 8, 8), 7, np.uint16), np.arange(256, dtype=np.uint16).reshape(4, 8, 8)])
    vol = Volume(data, (0.5, 0.25, 0.25), "um", axes="CZYX", channel_names=("DAPI", "GFP"))
    for name, volume in (("mem", vol), ("lazy", vol.replace(data=da.from_array(data, chunks=(1, 2, 8, 8))))):
        write_volume(volume, tmp_path / f"{name}.ome.zarr")
        channels = json.loads((tmp_path / f"{name}.ome.zarr" / ".zattrs").read_text())["omero"]["channels"]
        # NGFF 0.4's image.schema: "required": ["window", "color"] (was: the label alone)
        assert [(c["label"], c["color"], c["window"]) for c in channels] == [
            ("DAPI", "FF0000", {"start": 7.0, "end": 7.0, "min": 0.0, "max": 65535.0}),
            ("GFP", "00FF00", {"start": 0.0, "end": 255.0, "min": 0.0, "max": 65535.0})]
    back = read_volume(tmp_path / "mem.ome.zarr")
    assert back.channel_names == ("DAPI", "GFP") and back.metadata["display"]["channels"][1]["window"] == (0, 255)
    # an ImageJ composite with no colours or ranges keeps its mode in OME-Zarr too
    composite = vol.replace(channel_names=(), metadata={"display": {"mode": "composite", "channels": [
        {"window": None, "color": None, "lut": None}] * 2}})
    write_volume(composite, tmp_path / "composite.ome.zarr")
    omero = json.loads((tmp_path / "composite.ome.zarr" / ".zattrs").read_text())["omero"]
    assert omero["rdefs"] == {"model": "color"} and len(omero["channels"]) == 2


def test_unevenly_spaced_planes_in_a_format_of_one_z_step_are_said_to_be_misplaced_elsewhere(tmp_path):
    z = [0.0, 0.5, 1.0, 2.0, 2.5, 4.0, 4.5, 5.0, 6.5, 7.0]
    vol = Volume(np.zeros((10, 8, 8), np.uint16), (0.5, 0.25, 0.25), "um", z_positions=z)
    for name, said in (("a.tif", "but ImageJ TIFF holds one z step"), ("a.ome.zarr", "but OME-Zarr (NGFF 0.4)"),
                       ("a.ome.tif", "its OME-XML gives each plane's position (PositionZ)")):
        misplaced = r".* the mean( step)?, 0.7778 um, and misplaces planes by up to 0.611 um"  # 6.5, not 8 x 0.778
        with pytest.warns(ZaugWarning, match=re.escape(said) + misplaced):
            write_volume(vol, tmp_path / name)
        np.testing.assert_allclose(read_volume(tmp_path / name).z_coords(), z)  # zaug itself reads them back
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        write_volume(vol, tmp_path / "a.npz")  # holds the positions
        write_volume(vol.replace(z_positions=None), tmp_path / "even.tif")


def _image_store(path, data, voxel=(2.0, 0.5, 0.5)):
    """An OME-Zarr image at ``path``, whatever its name (a series "0" inside a store); its attributes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_volume(Volume(data, voxel, "um"), path.parent / "image.ome.zarr")
    (path.parent / "image.ome.zarr").rename(path)
    return json.loads((path / ".zattrs").read_text())


def test_stores_that_hold_images_elsewhere_say_which_folder_to_give(tmp_path, run_cli):
    import shutil

    data = np.random.default_rng(0).integers(0, 1000, (6, 16, 16)).astype(np.uint16)
    # a pyramid: level 0 read, a level's own folder named as such, the labels not carried over
    attrs = _image_store(tmp_path / "pyr.ome.zarr", data)
    shutil.copytree(tmp_path / "pyr.ome.zarr" / "0", tmp_path / "pyr.ome.zarr" / "1")
    level = dict(attrs["multiscales"][0]["datasets"][0], path="1")
    attrs["multiscales"][0]["datasets"].append(level)
    (tmp_path / "pyr.ome.zarr" / ".zattrs").write_text(json.dumps(attrs))
    (tmp_path / "pyr.ome.zarr" / "labels").mkdir()
    np.testing.assert_array_equal(read_volume(tmp_path / "pyr.ome.zarr").data, data)
    with pytest.raises(InputError, match=r"pyr.ome.zarr/1 is a resolution level of the image in .*pyr.ome.zarr; "
                                         r"give .*pyr.ome.zarr \(zaug reads its finest level\)"):
        read_volume(tmp_path / "pyr.ome.zarr" / "1")
    proc = run_cli("predict", "linear", tmp_path / "pyr.ome.zarr", "-o", tmp_path / "o.ome.zarr", "--factor", "2")
    assert "note: the input's labels are not carried over" in proc.stdout, proc.stderr
    # a bioformats2raw layout and an HCS plate: their images are read by path, their roots name one
    b2r = tmp_path / "b2r.zarr"
    _image_store(b2r / "0", data)
    (b2r / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 3}))
    (b2r / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    with pytest.raises(InputError, match=r"bioformats2raw store of 1 image series \(0\); give one, e.g. .*b2r.zarr/0"):
        read_volume(b2r)
    assert read_volume(b2r / "0").voxel_size == (2.0, 0.5, 0.5)  # a folder named "0", inside a store
    # its series' acquisition settings are in the store's OME-XML, one Image per series
    _image_store(b2r / "1", data)
    (b2r / "OME").mkdir()
    (b2r / "OME" / "METADATA.ome.xml").write_text(
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><AcquisitionDate>2025-01-01T00:00:00</AcquisitionDate><Pixels ID="Pixels:0">'
        '<Channel ID="Channel:0:0" Fluor="DAPI"/></Pixels></Image>'
        '<Image ID="Image:1"><AcquisitionDate>2025-02-02T00:00:00</AcquisitionDate><Pixels ID="Pixels:1">'
        '<Channel ID="Channel:1:0" EmissionWavelength="520" Fluor="GFP"/></Pixels></Image></OME>')
    assert read_volume(b2r / "1").metadata["acquisition"] == {
        "date": "2025-02-02T00:00:00", "channels": [{"EmissionWavelength": "520", "Fluor": "GFP"}]}
    (b2r / "OME" / "METADATA.ome.xml").write_text("<OME><Image")  # damaged: nothing taken from it
    assert "acquisition" not in read_volume(b2r / "1").metadata
    plate = tmp_path / "plate.zarr"
    _image_store(plate / "A" / "1" / "0", data)
    (plate / ".zattrs").write_text(json.dumps({"plate": {"wells": [{"path": "A/1"}]}}))
    (plate / "A" / "1" / ".zattrs").write_text(json.dumps({"well": {"images": [{"path": "0"}]}}))
    for folder, said in ((plate, r"an HCS plate of 1 well; give one field of a well, e.g. .*plate.zarr/A/1/0"),
                         (plate / "A" / "1", r"a well of 1 field; give one, e.g. .*plate.zarr/A/1/0")):
        with pytest.raises(InputError, match=said):
            read_volume(folder)
    np.testing.assert_array_equal(read_volume(plate / "A" / "1" / "0").data, data)


def test_ngff_axes_are_read_by_type_and_urls_are_refused(tmp_path, run_cli):
    data = np.random.default_rng(0).integers(0, 1000, (2, 6, 16, 16)).astype(np.uint16)
    write_volume(Volume(data, (2.0, 0.5, 0.5), "um", axes="TZYX", time_interval=100.0, time_unit="ms"),
                 tmp_path / "t.ome.zarr")
    attrs = json.loads((tmp_path / "t.ome.zarr" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["axes"][0]["type"] == "time"
    attrs["multiscales"][0]["axes"][0]["name"] = "time"  # NGFF names are free text; the type says what it is
    (tmp_path / "t.ome.zarr" / ".zattrs").write_text(json.dumps(attrs))
    vol = read_volume(tmp_path / "t.ome.zarr")
    assert vol.axes == "TZYX" and (vol.time_interval, vol.time_unit) == (100.0, "ms")
    attrs = _image_store(tmp_path / "tyx.ome.zarr", data[0])
    attrs["multiscales"][0]["axes"][0] = {"name": "t", "type": "time"}  # a 2D time series
    (tmp_path / "tyx.ome.zarr" / ".zattrs").write_text(json.dumps(attrs))
    with pytest.warns(ZaugWarning, match=r"axes TYX have no z, so it gives no z spacing and 1 um is assumed"):
        assert read_volume(tmp_path / "tyx.ome.zarr", axes="ZYX").voxel_size[0] == 1.0
    for args, said in ((("info", "https://example.org/a.ome.zarr"), "is a URL: zaug reads local files"),
                       (("predict", "linear", tmp_path / "t.ome.zarr", "-o", "s3://bucket/o.ome.zarr", "--factor",
                         "2"), "is a URL: zaug writes to local files")):
        proc = run_cli(*args)
        assert proc.returncode == 2 and said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_ome_tiff_that_names_more_planes_than_it_holds_is_refused_not_read_as_zeros(tmp_path):
    data = np.random.default_rng(0).integers(1, 1000, (8, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "s.ome.tif", data, ome=True, metadata={"axes": "ZYX"})
    raw = (tmp_path / "s.ome.tif").read_bytes()
    assert raw.count(b'SizeZ="8"') == 1
    (tmp_path / "s.ome.tif").write_bytes(raw.replace(b'SizeZ="8"', b'SizeZ="9"'))  # a ninth plane, missing
    with pytest.raises(InputError, match=r"looks damaged or truncated \(OME series is missing 1 frames"):
        read_volume(tmp_path / "s.ome.tif")


def _microscope_ome_tiff(path, description="widefield, 60x/1.4 oil"):
    data = np.random.default_rng(0).integers(0, 4000, (2, 5, 16, 16)).astype(np.uint16)
    channels = [{"Name": "dapi", "EmissionWavelength": 461.0, "EmissionWavelengthUnit": "nm", "Fluor": "DAPI"},
                {"Name": "gfp", "ExcitationWavelength": 488.0, "Fluor": 'GFP "x" & <y>', "PinholeSize": 1.2}]
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "CZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5,
        "AcquisitionDate": "2026-01-02T03:04:05", "Description": description, "Channel": channels})
    return read_volume(path)


@pytest.mark.parametrize("name", ["out.ome.tif", "out.ome.zarr", "out.npz"])
def test_ome_acquisition_settings_are_carried_to_the_output(tmp_path, name):
    vol = _microscope_ome_tiff(tmp_path / "in.ome.tif")
    settings = vol.metadata["acquisition"]
    assert settings["date"] == "2026-01-02T03:04:05" and settings["description"] == "widefield, 60x/1.4 oil"
    assert settings["channels"][0] == {"EmissionWavelength": "461.0", "EmissionWavelengthUnit": "nm", "Fluor": "DAPI"}
    assert settings["channels"][1]["Fluor"] == 'GFP "x" & <y>' and settings["channels"][1]["PinholeSize"] == "1.2"
    write_volume(upsample_z(vol, "linear", factor=2), tmp_path / name)
    back = read_volume(tmp_path / name)
    assert back.metadata["acquisition"] == settings and back.channel_names == ("dapi", "gfp")
    # a second pass: the description does not gather zaug's summaries
    write_volume(upsample_z(back, "linear", factor=2), tmp_path / f"again.{name}")
    assert read_volume(tmp_path / f"again.{name}").metadata["acquisition"] == settings
    assert back.select(channel=1).metadata["acquisition"]["channels"] == [settings["channels"][1]]


def test_an_ome_tiff_output_shows_the_settings_where_omero_and_fiji_read_them(tmp_path):
    vol = _microscope_ome_tiff(tmp_path / "in.ome.tif")
    write_volume(upsample_z(vol, "linear", factor=2), tmp_path / "out.ome.tif")
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        image = ElementTree.fromstring(tif.ome_metadata).find("{*}Image")
    assert image.find("{*}AcquisitionDate").text == "2026-01-02T03:04:05"
    assert image.find("{*}Description").text.splitlines()[0] == "widefield, 60x/1.4 oil"
    assert image.find("{*}Description").text.splitlines()[1].startswith("made by zaug")
    dapi = image.find("{*}Pixels").find("{*}Channel")
    assert (dapi.get("Name"), dapi.get("EmissionWavelength"), dapi.get("Fluor")) == ("dapi", "461.0", "DAPI")


def test_an_imagej_output_says_which_settings_it_cannot_hold(tmp_path):
    vol = _microscope_ome_tiff(tmp_path / "in.ome.tif")
    with pytest.warns(ZaugWarning, match="ImageJ TIFF holds no acquisition settings, so the input's emission "
                                         "wavelength, excitation wavelength, fluorophore, pinhole size and more"):
        write_volume(vol, tmp_path / "out.tif")


def test_foreign_acquisition_settings_are_checked_and_cut(tmp_path):
    vol = _microscope_ome_tiff(tmp_path / "in.ome.tif", description="x" * 10_000)
    assert len(vol.metadata["acquisition"]["description"]) == 2000
    # a description just under the cut: zaug's summary is taken out before the cut, so no piece of it stays
    near = _microscope_ome_tiff(tmp_path / "near.ome.tif", description="x" * 1992)
    for n in range(3):
        write_volume(upsample_z(near, "linear", factor=2), tmp_path / f"p{n}.ome.tif")
        near = read_volume(tmp_path / f"p{n}.ome.tif")
    assert near.metadata["acquisition"]["description"] == "x" * 1992
    data = np.zeros((4, 8, 8), np.uint16) + np.arange(4, dtype=np.uint16)[:, None, None]
    odd = json.dumps({"date": 5, "channels": [{"Fluor": ["a"], "Evil": "x", "NDFilter": "0.5"}]})
    np.savez(tmp_path / "odd.npz", data=data, acquisition=np.array(odd))
    assert read_volume(tmp_path / "odd.npz").metadata["acquisition"] == {"channels": [{"NDFilter": "0.5"}]}
    np.savez(tmp_path / "bad.npz", data=data, acquisition=np.array("{not json"))
    assert "acquisition" not in read_volume(tmp_path / "bad.npz").metadata
    np.savez(tmp_path / "deep.npz", data=data, acquisition=np.array("[" * 100_000 + "]" * 100_000))
    assert "acquisition" not in read_volume(tmp_path / "deep.npz").metadata  # the pixels are still read


def _predicts_x2_into_tiff_and_is_not_written(run_cli, tmp_path, path, stack, suffix, kind):
    """``zaug predict linear --factor 2`` of a microscope file ``path`` (pixels ``stack``, voxel size 0.5 x 0.1 x
    0.1 um) writes a TIFF with the acquired planes exact; an output named ``out{suffix}`` is refused, unwritten."""
    proc = run_cli("predict", "linear", path, "-o", tmp_path / "out.tif", "--factor", "2")
    assert proc.returncode == 0, proc.stderr
    out = read_volume(tmp_path / "out.tif")
    assert out.voxel_size == (0.25, 0.1, 0.1) and out.data.shape == (11, 16, 16) and out.dtype == np.uint16
    np.testing.assert_array_equal(out.data[::2], stack)
    proc = run_cli("predict", "linear", path, "-o", tmp_path / f"out{suffix}", "--factor", "2")
    assert proc.returncode == 2 and f"out{suffix} names {kind}, which zaug reads but does not write" in proc.stderr
    assert not (tmp_path / f"out{suffix}").exists()


# -- Zeiss LSM files (TIFF with a CZ_LSMINFO tag and a thumbnail after each plane) -------------------------

def _bits_per_sample_out_of_line(path):
    """Move each page's two BitsPerSample values out of their tag to the end of the file, as Zeiss's LSM writer
    stores them (a TIFF reader would keep two short values in the tag itself)."""
    raw = bytearray(path.read_bytes())
    ifd = int.from_bytes(raw[4:8], "little")
    while ifd:
        count = int.from_bytes(raw[ifd:ifd + 2], "little")
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            if int.from_bytes(raw[entry:entry + 2], "little") == 258 and int.from_bytes(raw[entry + 4:entry + 8],
                                                                                        "little") == 2:
                values, raw[entry + 8:entry + 12] = raw[entry + 8:entry + 12], len(raw).to_bytes(4, "little")
                raw += values
        ifd = int.from_bytes(raw[ifd + 2 + 12 * count:ifd + 6 + 12 * count], "little")
    path.write_bytes(bytes(raw))


def _lsm(path, data, voxel_size_m=(0.5e-6, 0.1e-6, 0.1e-6), scan_type=0, interval=0.0, colors=None, names=None,
         inline_bits=False, **header):
    """Write ``data`` (ZCYX, or TZCYX with ``scan_type`` 6) as a Zeiss LSM file does: the CZ_LSMINFO record
    (with ``header``'s entries) on the first page, channels as samples of one page per plane, a thumbnail page
    after each plane, two channels' bits per sample out of their tag (unless ``inline_bits``), and the channel
    colours and names in a block the record points to."""
    record = np.zeros((), np.dtype(tifffile.TIFF.CZ_LSMINFO))
    record["MagicNumber"], record["StructureSize"] = 67127628, record.dtype.itemsize
    *outer, n_channels, ny, nx = data.shape
    record["DimensionX"], record["DimensionY"], record["DimensionChannels"] = nx, ny, n_channels
    record["DimensionZ"], record["DimensionTime"] = outer[-1], outer[0] if len(outer) == 2 else 1
    record["DataType"] = {np.uint8: 1, np.uint16: 2}[data.dtype.type]
    record["VoxelSizeZ"], record["VoxelSizeY"], record["VoxelSizeX"] = voxel_size_m
    record["ScanType"], record["TimeIntervall"] = scan_type, interval
    for key, value in header.items():
        record[key] = value
    blob = record.tobytes()
    with tifffile.TiffWriter(path) as tif:
        for i, plane in enumerate(data.reshape(-1, n_channels, ny, nx)):
            tif.write(plane if n_channels > 1 else plane[0], photometric="minisblack", metadata=None,
                      planarconfig="separate" if n_channels > 1 else None, contiguous=False,
                      extratags=[(34412, "B", len(blob), blob, True)] if i == 0 else [])
            tif.write(np.zeros((4, 4), data.dtype), subfiletype=1, photometric="minisblack", metadata=None,
                      contiguous=False)
    if n_channels == 2 and not inline_bits:
        _bits_per_sample_out_of_line(path)
    if colors is None:
        return path
    text = b"".join((len(n.encode()) + 1).to_bytes(4, "little") + n.encode() + b"\0" for n in names)
    block = np.array([24 + 4 * len(colors) + len(text), len(colors), len(names), 24, 24 + 4 * len(colors), 0],
                     "<u4").tobytes() + bytes(c for rgb in colors for c in (*rgb, 0)) + text
    raw = bytearray(path.read_bytes())
    field = raw.index(blob) + record.dtype.fields["OffsetChannelColors"][1]
    raw[field:field + 4] = len(raw).to_bytes(4, "little")  # the block goes at the end of the file
    path.write_bytes(bytes(raw) + block)
    return path


def test_a_zeiss_lsm_file_is_read_with_its_voxel_size_channels_and_colours(tmp_path):
    data = np.random.default_rng(3).integers(0, 255, (5, 3, 16, 20)).astype(np.uint8)
    path = _lsm(tmp_path / "cells.lsm", data, colors=[(0, 255, 0), (255, 0, 0), (0, 0, 255)],
                names=["GFP", "mCherry", "DAPI"])
    vol = _read_quietly(path)  # no warning about the thumbnails' series
    assert vol.axes == "CZYX" and vol.unit == "um" and vol.voxel_size == (0.5, 0.1, 0.1)
    np.testing.assert_array_equal(vol.data, data.transpose(1, 0, 2, 3))
    assert vol.channel_names == ("GFP", "mCherry", "DAPI")
    assert [c["color"] for c in vol.metadata["display"]["channels"]] == ["00FF00", "FF0000", "0000FF"]
    with pytest.raises(InputError, match=r"holds 1 image series \(0 to 0\); --series 1 is not one of them"):
        read_volume(path, series=1)  # the thumbnails are not a series to read
    lazy = read_volume(_lsm(tmp_path / "one.lsm", data[:, :1].astype(np.uint16) * 200), lazy=True)
    assert lazy.axes == "ZYX" and lazy.voxel_size == (0.5, 0.1, 0.1)
    np.testing.assert_array_equal(np.asarray(lazy.data), data[:, 0].astype(np.uint16) * 200)


def test_an_lsm_time_series_keeps_its_interval_and_a_missing_z_step_is_said(tmp_path):
    data = np.random.default_rng(4).integers(0, 255, (2, 4, 1, 8, 8)).astype(np.uint8)
    vol = _read_quietly(_lsm(tmp_path / "t.lsm", data, scan_type=6, interval=2.5))
    assert vol.axes == "TZYX" and vol.data.shape == (2, 4, 8, 8) and vol.voxel_size == (0.5, 0.1, 0.1)
    assert (vol.time_interval, vol.time_unit) == (2.5, "s")
    with pytest.warns(ZaugWarning, match=r"gives a pixel size of 0.2 x 0.2 um but no z spacing"):
        flat = read_volume(_lsm(tmp_path / "noz.lsm", data[0], voxel_size_m=(0.0, 0.2e-6, 0.2e-6)))
    assert flat.unit == "pixel"


def test_zaug_predicts_an_lsm_file_into_a_tiff_and_will_not_write_lsm(tmp_path, run_cli):
    data = np.random.default_rng(5).integers(0, 4000, (6, 1, 16, 16)).astype(np.uint16)
    path = _lsm(tmp_path / "in.lsm", data)
    _predicts_x2_into_tiff_and_is_not_written(run_cli, tmp_path, path, data[:, 0], ".lsm", "a Zeiss LSM file")


# -- Zeiss CZI files (read with pylibCZIrw, the optional extra zaug[czi]) ------------------------------------

def _czi(path, data, voxel_size_m=(0.5e-6, 0.1e-6, 0.1e-6), scenes=1, names=None, colors=None):
    """Write ``data`` (ZCYX) as a CZI file with Zeiss's library, ``scenes`` times side by side (scene ``s``
    holds ``data + s``), with the voxel size in metres as ZEN writes it."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    display = None
    if colors:
        display = {c: pyczi.ChannelDisplaySettingsDataClass(True, pyczi.TintingMode.Color,
                                                            pyczi.Rgb8Color(*map(np.uint8, rgb)), 0.0, 1.0)
                   for c, rgb in enumerate(colors)}
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for scene, z, c in itertools.product(range(scenes), range(data.shape[0]), range(data.shape[1])):
            czi.write(data=(data[z, c] + scene)[..., None], plane={"Z": z, "C": c}, scene=scene,
                      location=(3 + 1000 * scene, 4))
        czi.write_metadata(channel_names=dict(enumerate(names)) if names else None, scale_z=voxel_size_m[0],
                           scale_y=voxel_size_m[1], scale_x=voxel_size_m[2], display_settings=display)
    return path


def test_a_zeiss_czi_file_is_read_with_its_voxel_size_channels_and_colours(tmp_path):
    data = np.random.default_rng(6).integers(0, 4000, (5, 2, 16, 20)).astype(np.uint16)
    path = _czi(tmp_path / "cells.czi", data, names=["GFP", "DAPI"], colors=[(0, 255, 0), (255, 0, 255)])
    vol = _read_quietly(path)
    assert vol.axes == "CZYX" and vol.unit == "um" and vol.voxel_size == (0.5, 0.1, 0.1)
    np.testing.assert_array_equal(vol.data, data.transpose(1, 0, 2, 3))
    assert vol.channel_names == ("GFP", "DAPI")
    assert [c["color"] for c in vol.metadata["display"]["channels"]] == ["00FF00", "FF00FF"]
    lazy = _read_quietly(path, lazy=True)  # planes read in lateral chunks, each part of a plane on its own
    np.testing.assert_array_equal(np.asarray(lazy.data[1, 1:4, 2:11:3, 5]), data[1:4, 1, 2:11:3, 5])
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(lazy.data))), vol.data)  # a cluster's copy
    one = _czi(tmp_path / "one.czi", data[:, :1], voxel_size_m=(0.0, 0.2e-6, 0.2e-6))  # ZEN without a z step
    with pytest.warns(ZaugWarning, match=r"gives a pixel size of 0.2 x 0.2 um but no z spacing"):
        assert read_volume(one).unit == "pixel"
    given = _read_quietly(one, voxel_size=(1.0, 0.2, 0.2))
    assert given.axes == "ZYX" and given.voxel_size == (1.0, 0.2, 0.2)
    one.write_bytes(one.read_bytes().replace(b"<Scaling>", b"<Sca ing>"))  # metadata that is no longer XML
    with pytest.warns(ZaugWarning, match="its metadata cannot be read .*, so its voxel size is unknown"):
        broken = read_volume(one)
    np.testing.assert_array_equal(broken.data, data[:, 0])  # the pixels are still read


def test_the_scenes_of_a_czi_file_are_its_series(tmp_path):
    data = np.random.default_rng(7).integers(0, 200, (3, 1, 8, 12)).astype(np.uint8)
    path = _czi(tmp_path / "wells.czi", data, scenes=2)
    with pytest.warns(ZaugWarning, match=r"holds 2 scenes \(0: 12x8, 1: 12x8\); zaug reads scene 0; choose another "
                                         "with --series N"):
        first = read_volume(path)
    np.testing.assert_array_equal(first.data, data[:, 0])  # the scene's planes, not the space between scenes
    np.testing.assert_array_equal(_read_quietly(path, series=1).data, data[:, 0] + 1)
    with pytest.raises(InputError, match=r"holds 2 image series \(scenes, 0 to 1\); --series 2 is not one of them"):
        read_volume(path, series=2)


def test_zaug_predicts_a_czi_file_into_a_tiff_and_will_not_write_czi(tmp_path, run_cli):
    data = np.random.default_rng(8).integers(0, 4000, (6, 1, 16, 16)).astype(np.uint16)
    path = _czi(tmp_path / "in.czi", data)
    _predicts_x2_into_tiff_and_is_not_written(run_cli, tmp_path, path, data[:, 0], ".czi", "a Zeiss CZI file")


def test_a_czi_files_acquisition_settings_are_read_from_its_metadata():
    from zaug.io.czi import _physical

    xml = """<ImageDocument><Metadata><Information><Image><AcquisitionDateAndTime>2024-03-01T10:00:00Z
    </AcquisitionDateAndTime><Dimensions><Channels><Channel Id="Channel:0" Name="EGFP"><ExcitationWavelength>488
    </ExcitationWavelength><EmissionWavelength>509</EmissionWavelength><Fluor>EGFP</Fluor><Unknown>1</Unknown>
    </Channel><Channel Id="Channel:1" Name="DAPI"><Fluor>DAPI</Fluor></Channel></Channels></Dimensions></Image>
    </Information><Scaling><Items><Distance Id="X"><Value>1.0378e-07</Value></Distance><Distance Id="Y"><Value>
    1.0378e-07</Value></Distance><Distance Id="Z"><Value>nan</Value></Distance></Items></Scaling><DisplaySetting>
    <Channels><Channel><Color>#FF00FF5B</Color></Channel><Channel><Color>not a colour</Color></Channel></Channels>
    </DisplaySetting></Metadata></ImageDocument>"""
    physical = _physical(xml, n_channels=2)
    assert physical["unknown_z"] == {"y": 0.10378, "x": 0.10378, "unit": "um"}  # a z step that is not a number
    assert physical["channel_names"] == ["EGFP", "DAPI"]
    assert [c["color"] for c in physical["display"]["channels"]] == ["00FF5B", None]
    assert physical["acquisition"] == {"date": "2024-03-01T10:00:00Z", "channels": [
        {"ExcitationWavelength": "488", "EmissionWavelength": "509", "Fluor": "EGFP"}, {"Fluor": "DAPI"}]}
    assert "its metadata is not XML" in _physical("<not xml", n_channels=1)["warnings"][0]
    partial = _physical(xml.replace("<Value>1.0378e-07</Value>", "<Value>-1</Value>", 1), n_channels=2)
    assert "no usable pixel size" in partial["warnings"][0] and "unit" not in partial  # y is not taken for x


def test_without_zeiss_library_a_czi_file_gets_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "cells.czi").write_bytes(b"ZISRAWFILE" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "pylibCZIrw", None)  # as where it is not installed
    with pytest.raises(InputError, match=r"reading a CZI file needs Zeiss's pylibCZIrw: pip install 'zaug\[czi\]'"):
        read_volume(tmp_path / "cells.czi")


def test_two_channel_lsm_files_and_lsm_files_zaug_cannot_use_are_said(tmp_path):
    data = np.random.default_rng(9).integers(0, 4000, (4, 2, 8, 10)).astype(np.uint16)
    vol = _read_quietly(_lsm(tmp_path / "two.lsm", data))  # as Zeiss writes them: read, no note from tifffile
    np.testing.assert_array_equal(vol.data, data.transpose(1, 0, 2, 3))
    # the bits per sample in the tag itself: tifffile reads them elsewhere, so the file is refused, never misread
    for name, pixels in (("inline.lsm", data), ("dark.lsm", np.full((8, 2, 256, 256), 8, np.uint16))):
        with pytest.raises(InputError, match="a layout of .*that tifffile misreads; convert it to OME-TIFF"):
            read_volume(_lsm(tmp_path / name, pixels, inline_bits=True))
    one = data[:, :1]
    with pytest.raises(InputError, match=r"xz.lsm is an x-z scan \(LSM ScanType 1\), not a stack of x-y planes"):
        read_volume(_lsm(tmp_path / "xz.lsm", one, scan_type=0, ScanType=1))
    with pytest.raises(InputError, match="holds 3 stage positions; zaug reads one stack at a time"):
        read_volume(_lsm(tmp_path / "p.lsm", one, DimensionP=3))
    with pytest.warns(ZaugWarning, match="its LSM header gives no usable pixel size"):
        odd = read_volume(_lsm(tmp_path / "nan.lsm", one, voxel_size_m=(0.5e-6, 0.1e-6, float("nan"))))
    assert odd.unit == "pixel"  # the y size is not taken for x


def test_czi_planes_are_those_its_sub_blocks_hold(tmp_path):
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    data = np.random.default_rng(10).integers(1, 4000, (3, 8, 12)).astype(np.uint16)
    path = tmp_path / "late.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:  # z from 5, channel 3: as a cropped acquisition
        for z in range(3):
            czi.write(data=data[z][..., None], plane={"Z": z + 5, "C": 3})
        czi.write_metadata(channel_names={3: "GFP"}, scale_x=0.2e-6, scale_y=0.2e-6, scale_z=1e-6)
    vol = _read_quietly(path)
    np.testing.assert_array_equal(vol.data, data)
    assert vol.axes == "ZYX" and vol.voxel_size == (1.0, 0.2, 0.2) and vol.metadata["channel"] == "GFP"
    # a scene with fewer planes than the file's others has its own planes, no dark ones added
    path = tmp_path / "short.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for scene, nz in ((0, 3), (1, 2)):
            for z in range(nz):
                czi.write(data=data[z][..., None], plane={"Z": z}, scene=scene, location=(100 * scene, 0))
        czi.write_metadata(scale_x=0.2e-6, scale_y=0.2e-6, scale_z=1e-6)
    np.testing.assert_array_equal(_read_quietly(path, series=1).data, data[:2])
    # an interrupted time series: the planes its last time point lacks are said, not passed off as dark planes
    path = tmp_path / "stopped.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for t, nz in ((0, 3), (1, 1)):
            for z in range(nz):
                czi.write(data=data[z][..., None], plane={"T": t, "Z": z})
        czi.write_metadata(scale_x=0.2e-6, scale_y=0.2e-6, scale_z=1e-6)
    with pytest.warns(ZaugWarning, match=r"2 of its planes are not in the file \(t 1, z 1, t 1, z 2\): they read "
                                         "as zeros"):
        stopped = read_volume(path)
    assert stopped.axes == "TZYX" and not stopped.data[1, 1:].any()
    # colour pixels are refused in one sentence
    path = tmp_path / "rgb.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for z in range(3):
            czi.write(data=np.zeros((8, 12, 3), np.uint8), plane={"Z": z})
    with pytest.raises(InputError, match="rgb.czi holds colour \\(RGB\\) pixels; zaug works on grey channels"):
        read_volume(path)


# -- Imaris files (HDF5, read with h5py, the optional extra zaug[ims]) --------------------------------------

def _imaris_text(text):
    """An attribute as Imaris writes them: an array of single characters."""
    return np.array(list(str(text)), dtype="S1")


def _ims(path, data, voxel_size=(0.5, 0.1, 0.1), unit="um", pad=(2, 3, 5), names=None, colors=None,
         times=None, wavelengths=None):
    """Write ``data`` (TCZYX) as Imaris does: a padded, chunked, compressed array per time point and channel
    at full resolution and a smaller level, the image's size and extent as text attributes."""
    h5py = pytest.importorskip("h5py")
    nt, nc, nz, ny, nx = data.shape
    with h5py.File(path, "w") as f:
        image = f.create_group("DataSetInfo/Image")
        for axis, n in zip("ZYX", (nz, ny, nx)):
            image.attrs[axis] = _imaris_text(n)
        for index, (n, size) in enumerate(zip((nx, ny, nz), voxel_size[::-1])):
            image.attrs[f"ExtMin{index}"] = _imaris_text(-1.5)
            image.attrs[f"ExtMax{index}"] = _imaris_text(-1.5 + n * size)
        image.attrs["Unit"] = _imaris_text(unit)
        for t, c in itertools.product(range(nt), range(nc)):
            padded = np.zeros((nz + pad[0], ny + pad[1], nx + pad[2]), data.dtype)
            padded[:nz, :ny, :nx] = data[t, c]
            group = f.create_group(f"DataSet/ResolutionLevel 0/TimePoint {t}/Channel {c}")
            group.create_dataset("Data", data=padded, chunks=(2, 8, 8), compression="gzip")
            f.create_dataset(f"DataSet/ResolutionLevel 1/TimePoint {t}/Channel {c}/Data", data=padded[::2, ::2, ::2])
            info = f.require_group(f"DataSetInfo/Channel {c}")
            if names:
                info.attrs["Name"] = _imaris_text(names[c])
            if colors:
                info.attrs["Color"] = _imaris_text(colors[c])
            if wavelengths:
                info.attrs["LSMEmissionWavelength"] = _imaris_text(wavelengths[c])
        if times:
            for i, stamp in enumerate(times, start=1):
                f.require_group("DataSetInfo/TimeInfo").attrs[f"TimePoint{i}"] = _imaris_text(stamp)
    return path


def test_an_imaris_file_is_read_with_its_voxel_size_channels_and_colours(tmp_path):
    data = np.random.default_rng(11).integers(0, 4000, (1, 2, 5, 12, 20)).astype(np.uint16)
    path = _ims(tmp_path / "cells.ims", data, names=["GFP", "DAPI"], colors=["0 1 0", "1 0 1"],
                wavelengths=["509", "461"])
    vol = _read_quietly(path)
    assert vol.axes == "CZYX" and vol.unit == "um" and vol.voxel_size == (0.5, 0.1, 0.1)
    np.testing.assert_array_equal(vol.data, data[0])  # cut to the image's size: Imaris pads its blocks
    assert vol.channel_names == ("GFP", "DAPI")
    assert [c["color"] for c in vol.metadata["display"]["channels"]] == ["00FF00", "FF00FF"]
    assert vol.metadata["acquisition"]["channels"] == [{"EmissionWavelength": "509"}, {"EmissionWavelength": "461"}]
    lazy = _read_quietly(path, lazy=True)
    np.testing.assert_array_equal(np.asarray(lazy.data[1, 1:4, 2:11:3, -1]), data[0, 1, 1:4, 2:11:3, -1])
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(lazy.data))), vol.data)  # a cluster's copy
    nm = _read_quietly(_ims(tmp_path / "nm.ims", data[:, :1], voxel_size=(500.0, 100.0, 100.0), unit="nm"))
    assert nm.axes == "ZYX" and nm.unit == "nm" and nm.voxel_size == (500.0, 100.0, 100.0)


def test_an_imaris_time_series_keeps_its_step_and_a_flat_extent_is_said(tmp_path):
    data = np.random.default_rng(12).integers(0, 200, (3, 1, 4, 8, 8)).astype(np.uint8)
    path = _ims(tmp_path / "t.ims", data, times=["2024-03-01 10:00:00.000", "2024-03-01 10:00:02.500",
                                                 "2024-03-01 10:00:05.000"])
    vol = _read_quietly(path)
    assert vol.axes == "TZYX" and (vol.time_interval, vol.time_unit) == (2.5, "s")
    np.testing.assert_array_equal(vol.data, data[:, 0])
    with pytest.warns(ZaugWarning, match="its extent does not give a voxel size"):
        flat = read_volume(_ims(tmp_path / "flat.ims", data[:1], voxel_size=(0.0, 0.1, 0.1)))
    assert flat.unit == "pixel"


def test_zaug_predicts_an_imaris_file_into_a_tiff_and_refuses_other_hdf5(tmp_path, run_cli):
    h5py = pytest.importorskip("h5py")
    data = np.random.default_rng(13).integers(0, 4000, (1, 1, 6, 16, 16)).astype(np.uint16)
    path = _ims(tmp_path / "in.ims", data)
    _predicts_x2_into_tiff_and_is_not_written(run_cli, tmp_path, path, data[0, 0], ".ims", "an Imaris file")
    with h5py.File(tmp_path / "other.ims", "w") as f:
        f["data"] = np.zeros((3, 4, 4))
    with pytest.raises(InputError, match="other.ims is an HDF5 file but not an Imaris image"):
        read_volume(tmp_path / "other.ims")


def test_without_h5py_an_imaris_file_gets_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "cells.ims").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as where it is not installed
    with pytest.raises(InputError, match=r"reading an Imaris file needs h5py: pip install 'zaug\[ims\]'"):
        read_volume(tmp_path / "cells.ims")


# -- BigDataViewer datasets (XML and HDF5, read with h5py) --------------------------------------------------

def _bdv(folder, data, voxel_size=(2.0, 0.65, 0.65), unit="µm", loader="bdv.hdf5", xml=True):
    """Write ``data`` (setups, T, Z, Y, X; uint16) as BigDataViewer's exporter does: HDF5 arrays of signed
    16-bit values per time point and setup (with a smaller level), and the XML that names the file."""
    h5py = pytest.importorskip("h5py")
    n_setups, nt = data.shape[:2]
    with h5py.File(folder / "dataset.h5", "w") as f:
        for s in range(n_setups):
            f[f"s{s:02d}/resolutions"] = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 1.0]])
            f[f"s{s:02d}/subdivisions"] = np.array([[32, 32, 4], [16, 16, 8]], np.int32)
            for t in range(nt):
                f.create_dataset(f"t{t:05d}/s{s:02d}/0/cells", data=data[s, t].view(np.int16), chunks=(2, 8, 8),
                                 compression="gzip")
                f[f"t{t:05d}/s{s:02d}/1/cells"] = data[s, t, :, ::2, ::2].view(np.int16)
    setups = "".join(f"<ViewSetup><id>{s}</id><name>{s}</name><size>{data.shape[-1]} {data.shape[-2]} "
                     f"{data.shape[-3]}</size><voxelSize><unit>{unit}</unit><size>{voxel_size[2]} {voxel_size[1]} "
                     f"{voxel_size[0]}</size></voxelSize></ViewSetup>" for s in range(n_setups))
    text = (f'<?xml version="1.0" encoding="UTF-8"?><SpimData version="0.2"><BasePath type="relative">.</BasePath>'
            f'<SequenceDescription><ImageLoader format="{loader}"><hdf5 type="relative">dataset.h5</hdf5>'
            f'</ImageLoader><ViewSetups>{setups}</ViewSetups><Timepoints type="range"><first>0</first>'
            f'<last>{nt - 1}</last></Timepoints></SequenceDescription></SpimData>')
    if xml:
        (folder / "dataset.xml").write_text(text, encoding="utf-8")
    return folder / "dataset.xml", folder / "dataset.h5"


def test_a_bigdataviewer_dataset_is_read_from_its_xml_or_its_hdf5(tmp_path):
    data = np.random.default_rng(14).integers(0, 65535, (2, 1, 5, 16, 24)).astype(np.uint16)
    xml, h5 = _bdv(tmp_path, data)
    with pytest.warns(ZaugWarning, match=r"holds 2 view setups \(channels, tiles or angles\); zaug reads the first"):
        vol = read_volume(xml)
    assert vol.axes == "ZYX" and vol.unit == "um" and vol.voxel_size == (2.0, 0.65, 0.65) and vol.dtype == np.uint16
    np.testing.assert_array_equal(vol.data, data[0, 0])  # values above 32767 are not read as negative
    second = _read_quietly(h5, series=1)  # the HDF5 file, with the XML beside it that names it
    assert second.voxel_size == (2.0, 0.65, 0.65)
    np.testing.assert_array_equal(second.data, data[1, 0])
    lazy = _read_quietly(xml, series=1, lazy=True)
    np.testing.assert_array_equal(np.asarray(lazy.data[1:4, 2:11:3, -1]), data[1, 0, 1:4, 2:11:3, -1])
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(lazy.data))), second.data)
    with pytest.raises(InputError, match=r"holds 2 image series \(view setups, 0 to 1\); --series 2 is not one"):
        read_volume(xml, series=2)


def test_bigdataviewer_time_points_other_loaders_and_a_lone_hdf5(tmp_path):
    data = np.random.default_rng(15).integers(0, 4000, (1, 3, 4, 8, 8)).astype(np.uint16)
    (tmp_path / "t").mkdir()
    xml, _ = _bdv(tmp_path / "t", data, voxel_size=(1.0, 0.2, 0.2), unit="micron")
    vol = _read_quietly(xml)
    assert vol.axes == "TZYX" and vol.voxel_size == (1.0, 0.2, 0.2)
    np.testing.assert_array_equal(vol.data, data[0])
    (tmp_path / "n5").mkdir()
    xml, _ = _bdv(tmp_path / "n5", data, loader="bdv.n5")
    with pytest.raises(InputError, match="keeps its pixels with the bdv.n5 image loader; zaug reads BigDataViewer's "
                                         "HDF5 one"):
        read_volume(xml)
    (tmp_path / "lone").mkdir()
    _, h5 = _bdv(tmp_path / "lone", data, xml=False)
    with pytest.warns(ZaugWarning, match="no BigDataViewer XML beside dataset.h5 names it, so the voxel size is "
                                         "unknown"):
        assert read_volume(h5).unit == "pixel"
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "ilastik.h5", "w") as f:
        f["exported_data"] = np.zeros((3, 4, 4))
    with pytest.raises(InputError, match="ilastik.h5 is an HDF5 file but not a BigDataViewer dataset"):
        read_volume(tmp_path / "ilastik.h5")
    (tmp_path / "notes.xml").write_text("<notes/>", encoding="utf-8")
    with pytest.raises(InputError, match="notes.xml is not a BigDataViewer dataset"):
        read_volume(tmp_path / "notes.xml")


def test_zaug_predicts_a_bigdataviewer_dataset_into_a_tiff(tmp_path, run_cli):
    data = np.random.default_rng(16).integers(0, 4000, (1, 1, 6, 16, 16)).astype(np.uint16)
    xml, _ = _bdv(tmp_path, data, voxel_size=(0.5, 0.1, 0.1))
    _predicts_x2_into_tiff_and_is_not_written(run_cli, tmp_path, xml, data[0, 0], ".h5", "an HDF5 file")


def test_imaris_files_as_other_writers_leave_them(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = np.random.default_rng(17).integers(1, 4000, (2, 2, 4, 10, 12)).astype(np.uint16)
    # the second time point lacks its second channel (an interrupted acquisition): said, read as zeros
    path = _ims(tmp_path / "gap.ims", data)
    with h5py.File(path, "a") as f:
        del f["DataSet/ResolutionLevel 0/TimePoint 1/Channel 1"]
    with pytest.warns(ZaugWarning, match=r"1 of its time point and channel arrays are not in the file \(t 1, c 1\)"):
        gap = read_volume(path)
    assert gap.axes == "TCZYX" and not gap.data[1, 1].any()
    np.testing.assert_array_equal(gap.data[1, 0], data[1, 0])
    # a unit zaug does not know is not passed on: the voxel size is unknown, and said so
    with pytest.warns(ZaugWarning, match="its extent does not give a voxel size"):
        assert read_volume(_ims(tmp_path / "fur.ims", data[:1, :1], unit="furlong")).unit == "pixel"
    with h5py.File(path := _ims(tmp_path / "utf8.ims", data[:1, :1]), "a") as f:  # "µm" in UTF-8 bytes
        f["DataSetInfo/Image"].attrs["Unit"] = np.frombuffer("µm".encode(), dtype="S1")
    assert _read_quietly(path).unit == "um"
    # a size that is not a number: the stored arrays' size on that axis, said; a number kept as an array of one
    with h5py.File(path := _ims(tmp_path / "size.ims", data[:1, :1], pad=(0, 0, 3)), "a") as f:
        f["DataSetInfo/Image"].attrs["X"] = _imaris_text("garbage")
        f["DataSetInfo/Image"].attrs["Z"] = np.array([4])
    with pytest.warns(ZaugWarning, match="its stated size is not usable for x, so the stored arrays' size is read"):
        assert read_volume(path).data.shape == (4, 10, 15)
    # compressed with a filter this h5py lacks (LZ4 without hdf5plugin): how to get it, not "damaged"
    path = _ims(tmp_path / "lz4.ims", data[:1, :1])
    with h5py.File(path, "a") as f:
        del f["DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data"]
        f.create_dataset("DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data", shape=(6, 13, 17), dtype=np.uint16,
                         chunks=(6, 13, 17), compression=32004, allow_unknown_filter=True)
    if not h5py.h5z.filter_avail(32004):
        with pytest.raises(InputError, match=r"lz4.ims is compressed with a filter h5py lacks \(.*32004\): pip install "
                                             "hdf5plugin"):
            read_volume(path)
