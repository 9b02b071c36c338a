"""The command line, including every bad input of the foundation issue."""

import json
import os

import numpy as np
import pytest
import tifffile

from zaug import Volume
from zaug.io import write_volume
from zaug.sample import sample_path

from .conftest import shared


def _assert_clean_failure(proc, *phrases):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("zaug: error:"), err
    assert len(err.splitlines()) == 1, err
    for phrase in phrases:
        assert phrase in err, err


def test_the_installed_command_runs_as_its_own_process(run_cli_process, tmp_path):
    """The other tests run the command line in the test's process; this one runs ``python -m zaug``."""
    proc = run_cli_process("info", sample_path(), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["shape"] == [60, 128, 128], proc.stderr
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((16, 16), np.uint8))
    _assert_clean_failure(run_cli_process("predict", "linear", tmp_path / "flat.tif", "-o", tmp_path / "o.tif",
                                          "--factor", "2"), "no z axis")


def test_info_json_of_the_sample(run_cli):
    proc = run_cli("info", sample_path(), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["shape"] == [60, 128, 128] and info["dtype"] == "uint16" and info["unit"] == "um"


def test_info_shows_display_settings_only_where_a_channel_has_some(run_cli, tmp_path):
    data = np.random.default_rng(0).integers(0, 999, (2, 4, 8, 8)).astype(np.uint16)
    plain = write_volume(Volume(data, (1, 1, 1), "um", axes="CZYX"), tmp_path / "plain.tif")
    assert "display:" not in run_cli("info", plain).stdout  # was: "display: channel 0:; channel 1:"
    shown = {"mode": "composite", "channels": [{"window": (0.0, 500.0), "color": "FF0000", "lut": None},
                                               {"window": None, "color": None, "lut": None}]}
    vol = Volume(data, (1, 1, 1), "um", axes="CZYX", metadata={"display": shown})
    out = run_cli("info", write_volume(vol, tmp_path / "shown.ome.zarr")).stdout
    # OME-Zarr (NGFF 0.4) needs a colour and a window for every channel: the second gets defaults
    assert "display: channel 0: FF0000 0-500; channel 1: 00FF00 5-995\n" in out


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_predict_linear_cells3d_then_info(run_cli, tmp_path, suffix):
    src = shared("cells3d_nuclei.tif")
    out = tmp_path / f"out{suffix}"
    proc = run_cli("predict", "linear", src, "-o", out, "--factor", "2")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["shape"] == [119, 256, 256] and info["dtype"] == "uint16" and info["unit"] == "um"
    assert info["voxel_size"]["z"] == pytest.approx(0.145)
    assert info["voxel_size"]["y"] == pytest.approx(0.26) and info["voxel_size"]["x"] == pytest.approx(0.26)


def test_predict_on_sample_to_spacing_keeps_input_untouched(run_cli, tmp_path):
    before = sample_path().read_bytes()
    out = tmp_path / "iso.ome.tif"
    proc = run_cli("predict", "cubic", sample_path(), "-o", out, "--z-spacing", "0.26")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["voxel_size"]["z"] == pytest.approx(0.26) and info["shape"][0] == 66
    assert sample_path().read_bytes() == before


def test_evaluate_json_on_sample(run_cli):
    proc = run_cli("evaluate", sample_path(), "--factor", "2", "--methods", "linear,cubic", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["methods"]) == {"linear", "cubic"} and result["factor"] == 2


# ---- bad input: one sentence, non-zero exit, nothing destroyed -------------------------------

def test_missing_file(run_cli, tmp_path):
    _assert_clean_failure(run_cli("info", tmp_path / "nope.tif"), "does not exist")


def test_running_out_of_memory_is_one_sentence_with_what_to_try(run_cli, monkeypatch):
    import torch

    import zaug.cli

    def exhausted(args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setitem(zaug.cli.COMMANDS, "info", exhausted)
    proc = run_cli("info", sample_path())
    assert proc.returncode == 1 and "unexpected" not in proc.stderr
    assert "out of memory (CUDA out of memory" in proc.stderr and "--device cpu" in proc.stderr


def test_a_whole_stack_out_of_memory_is_told_to_use_tiles(run_cli, monkeypatch, tmp_path):
    import zaug.cli

    def exhausted(args):
        raise MemoryError

    monkeypatch.setitem(zaug.cli.COMMANDS, "predict", exhausted)
    out = tmp_path / "o.tif"
    proc = run_cli("predict", "cubic", sample_path(), "-o", out, "--factor", "2")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "out of memory; try --tile 512" in proc.stderr  # was: "try a smaller stack or tile size"
    proc = run_cli("predict", "cubic", sample_path(), "-o", out, "--factor", "2", "--tile", "64")
    assert "try a smaller --tile, or --tile-planes" in proc.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_pipe_is_refused_instead_of_waited_on(run_cli, tmp_path):
    pipe = tmp_path / "stack.tif"
    os.mkfifo(pipe)  # opening it for reading would block until a writer comes
    _assert_clean_failure(run_cli("info", pipe), "not a regular file")


def test_unreadable_file(run_cli, tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a tiff file at all")
    _assert_clean_failure(run_cli("predict", "linear", bad, "-o", tmp_path / "o.tif", "--factor", "2"),
                          "cannot read")


def test_unknown_format(run_cli, tmp_path):
    bad = tmp_path / "stack.png"
    bad.write_bytes(b"x")
    _assert_clean_failure(run_cli("info", bad), "format")


def test_2d_image(run_cli, tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", np.ones((32, 32), np.uint16))
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "flat.tif", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "z")


def test_single_plane(run_cli, tmp_path):
    one = Volume(np.random.default_rng(0).random((1, 16, 16)).astype(np.float32))
    write_volume(one, tmp_path / "one.npz")
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "one.npz", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "at least 2")
    write_volume(one, tmp_path / "one.tif")  # ImageJ stores one plane as a 2D image
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "one.tif", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "3D stack")


@pytest.mark.parametrize("data, said", [
    (np.arange(256).reshape(4, 8, 8).astype("datetime64[s]"), "type datetime64[s] are not supported"),
    (np.zeros((4, 8, 8), [("a", "<u2")]), "are not supported"),
    (np.arange(256).reshape(4, 8, 8) * 1e300, "values up to 2.55e+302; zaug computes in 32-bit floats"),
])
def test_data_no_method_can_compute_with(run_cli, tmp_path, data, said):
    np.save(tmp_path / "odd.npy", data)  # was: dates "interpolated", infinities written, a ufunc error
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "odd.npy", "-o", tmp_path / "o.npy",
                                  "--factor", "2"), said)


@pytest.mark.parametrize("option", ["--factor", "--z-spacing"])
def test_a_number_that_is_not_finite_is_refused_as_an_argument(run_cli, tmp_path, option):
    write_volume(Volume(np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)), tmp_path / "a.tif")
    proc = run_cli("predict", "linear", tmp_path / "a.tif", "-o", tmp_path / "o.tif", option, "nan")
    assert proc.returncode == 2 and f"argument {option}: expected a finite number, got 'nan'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf(run_cli, tmp_path, value):
    data = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    data[2, 3, 3] = value
    write_volume(Volume(data), tmp_path / "nan.tif")
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "nan.tif", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "NaN or infinite", "the first at plane 2, y 3, x 3")
    assert not (tmp_path / "o.tif").exists()


def test_what_the_output_cannot_hold_is_refused_before_any_work(run_cli, tmp_path, monkeypatch):
    import zaug.predict

    def no_work(*args, **kwargs):
        raise AssertionError("the stack was interpolated before the refusal")

    monkeypatch.setattr(zaug.predict, "upsample_z", no_work)
    big = np.random.default_rng(0).integers(0, 100, (4, 16, 16)).astype(np.uint64) + 2**40
    np.save(tmp_path / "big.npy", big)
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "big.npy", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "TIFF cannot hold uint64", "write .ome.zarr or .npz")
    assert not (tmp_path / "o.tif").exists()


def test_constant_image(run_cli, tmp_path):
    write_volume(Volume(np.full((4, 16, 16), 7, np.uint16)), tmp_path / "c.tif")
    _assert_clean_failure(run_cli("predict", "linear", tmp_path / "c.tif", "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "constant")


def test_axes_that_do_not_match(run_cli, tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.ones((4, 16, 16), np.uint16), photometric="minisblack")
    _assert_clean_failure(run_cli("info", tmp_path / "s.tif", "--axes", "TZYX"), "--axes")


@pytest.mark.parametrize("factor", ["1", "2.5", "0", "-2"])
def test_bad_factor(run_cli, tmp_path, factor):
    _assert_clean_failure(run_cli("predict", "linear", sample_path(), "-o", tmp_path / "o.tif",
                                  "--factor", factor), "--factor")
    assert not (tmp_path / "o.tif").exists()


def test_bad_factor_in_evaluate(run_cli):
    _assert_clean_failure(run_cli("evaluate", sample_path(), "--factor", "1"), "--factor")


def test_existing_output_refused_without_overwrite(run_cli, tmp_path):
    out = tmp_path / "o.tif"
    out.write_bytes(b"precious")
    _assert_clean_failure(run_cli("predict", "linear", sample_path(), "-o", out, "--factor", "2"),
                          "--overwrite")
    assert out.read_bytes() == b"precious"
    proc = run_cli("predict", "linear", sample_path(), "-o", out, "--factor", "2", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert tifffile.imread(out).shape == (119, 128, 128)


def test_output_equal_to_input_refused(run_cli, tmp_path):
    src = tmp_path / "in.tif"
    src.write_bytes(sample_path().read_bytes())
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        _assert_clean_failure(run_cli("predict", "linear", src, "-o", src, "--factor", "2", *extra), "input")
    assert src.read_bytes() == before


def test_untrained_method_name_explains_training(run_cli, tmp_path):
    _assert_clean_failure(run_cli("predict", "zaugnet", sample_path(), "-o", tmp_path / "o.tif",
                                  "--factor", "2"), "zaug train")


def test_killed_write_leaves_no_final_file(tmp_path):
    """A run killed during the write leaves at most a hidden partial file."""
    import subprocess
    import sys
    import time

    out = tmp_path / "big.tif"
    code = ("import numpy as np, time, zaug.io.tiff as t\n"
            "from zaug import Volume\nfrom zaug.io import write_volume\n"
            "orig = t.write_tiff\n"
            "def slow(v, p, ome=None):\n    p.write_bytes(b'partial'); time.sleep(30)\n"
            "import zaug.io as z; z.write_tiff = slow\n"
            f"write_volume(Volume(np.ones((3, 8, 8), np.uint8)), {str(out)!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 20
    while time.time() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert not out.exists()
    assert all(p.name.startswith(".zaug-partial-") for p in tmp_path.iterdir())


def test_predict_report_measures_isotropy_before_and_after(run_cli, tmp_path):
    src = shared("neubias_xyz_8bit__chromosomes.tif")
    proc = run_cli("predict", "cubic", src, "-o", tmp_path / "iso.tif", "--z-spacing", "0.0338542",
                   "--report", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["input"]["isotropy_ratio"] > 1.5
    assert results["warnings"] == []  # cubic keeps lateral widths (0.233 vs 0.256 um)
    assert results["output"]["voxel_size"][0] == pytest.approx(0.0338542)
    assert (tmp_path / "rep" / "xz_views.png").exists() and (tmp_path / "rep" / "spectra_output.png").exists()
