"""The command line refuses what it cannot honour in one sentence, before any work or output.

Options a method does not use, reports that would replace files, outputs below a file or on each
other, an empty --methods list; what --unit means; what SIGTERM leaves behind.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from zaug import Volume
from zaug.cli import (
    CHECKED_OPTIONS,
    METHOD_OPTIONS,
    build_parser,
    check_method_options,
    main,
)
from zaug.errors import InputError, OutputError
from zaug.evaluate import evaluate_drop_slice
from zaug.io import read_volume, write_volume
from zaug.report import report_files
from zaug.sample import load_sample


def _one_sentence(capsys, *phrases) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("zaug: error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "unexpected" not in err, err
    for phrase in phrases:
        assert phrase in err, err
    return err


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """A 12-plane 64 x 64 uint16 crop of the shipped sample (ImageJ TIFF, um), and folders that look like models."""
    folder = tmp_path_factory.mktemp("stacks")
    vol = load_sample()
    vol = vol.replace(data=np.ascontiguousarray(vol.data[:12, :64, :64]))
    write_volume(vol, folder / "u16.tif")
    write_volume(vol.replace(data=(vol.data // 256).astype(np.uint8)), folder / "u8.tif")
    for method in ("zaugnet", "zaugnet+", "niiv", "selfnet", "resin"):
        # the options are checked from config.json alone, before any weights are loaded
        model = folder / method.replace("+", "plus")
        model.mkdir()
        (model / "config.json").write_text(json.dumps({"method": method}))
    return folder


# ---- 1. --report never replaces an existing file without --overwrite ---------------------------------

@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_report_refuses_to_replace_an_existing_report_before_any_output(stacks, tmp_path, capsys, command):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "report.md").write_text(earlier := "# zaug prediction report\n\nan earlier one")
    out = tmp_path / "x.tif"
    args = (["predict", "cubic", str(stacks / "u16.tif"), "-o", str(out), "--factor", "2"] if command == "predict"
            else ["evaluate", str(stacks / "u16.tif"), "--factor", "2"])
    assert main(args + ["--report", str(rep)]) == 2
    _one_sentence(capsys, "report.md", "--overwrite")
    assert (rep / "report.md").read_text() == earlier and not out.exists()
    assert sorted(p.name for p in rep.iterdir()) == ["report.md"]
    assert main(args + ["--report", str(rep), "--overwrite"]) == 0
    capsys.readouterr()
    # the names checked are the names written
    kind = "prediction" if command == "predict" else "drop-slice"
    assert sorted(p.name for p in rep.iterdir()) == sorted(report_files(kind, ["linear", "cubic"]))
    assert (rep / "report.md").read_text() != earlier


def test_a_report_folder_may_hold_other_files(stacks, tmp_path, capsys):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "notes.txt").write_text("mine")
    assert main(["predict", "cubic", str(stacks / "u16.tif"), "-o", str(tmp_path / "x.tif"), "--factor", "2",
                 "--report", str(rep)]) == 0
    assert (rep / "notes.txt").read_text() == "mine" and (rep / "report.md").exists()


def test_restoration_report_names_are_checked_too(tmp_path, capsys):
    from zaug.report import check_report_folder

    names = report_files("restoration", ["linear", "niiv"])
    assert "spectra_niiv.png" in names and "spectra_original.png" in names
    (tmp_path / "spectra_niiv.png").write_bytes(b"mine")
    with pytest.raises(OutputError, match="spectra_niiv.png"):
        check_report_folder(tmp_path, names)
    check_report_folder(tmp_path, names, overwrite=True)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_report_that_is_a_file_is_refused_before_the_stack_is_written(stacks, tmp_path, capsys, command):
    rep = tmp_path / "rep"
    rep.write_text("mine")
    out = tmp_path / "x.tif"
    args = (["predict", "cubic", str(stacks / "u16.tif"), "-o", str(out), "--factor", "2"] if command == "predict"
            else ["evaluate", str(stacks / "u16.tif"), "--factor", "2"])
    for extra in ([], ["--overwrite"]):
        assert main(args + ["--report", str(rep), *extra]) == 2
        _one_sentence(capsys, "is a file")
    assert rep.read_text() == "mine" and not out.exists()


# ---- 3. an output below a file; 5. two outputs on one path -------------------------------------------

def test_output_below_a_file_is_one_sentence(stacks, tmp_path, capsys):
    u8 = stacks / "u8.tif"
    before = u8.read_bytes()
    for args in (["predict", "cubic", str(stacks / "u16.tif"), "-o", str(u8 / "x.tif"), "--factor", "2"],
                 ["predict", "cubic", str(stacks / "u16.tif"), "-o", str(tmp_path / "x.tif"), "--factor", "2",
                  "--report", str(u8 / "rep")],
                 ["measure", str(stacks / "u16.tif"), "--objects", "--labels", str(u8 / "l.tif")],
                 ["measure", str(stacks / "u16.tif"), "--objects", "--csv", str(u8 / "o.csv")],
                 ["train", str(stacks / "u16.tif"), "--method", "zaugnet", "--steps", "2", "-o", str(u8 / "m")]):
        assert main(args) == 2, args
        _one_sentence(capsys, "is a file")
    assert u8.read_bytes() == before and not (tmp_path / "x.tif").exists()


def test_measure_refuses_csv_and_labels_on_one_path(stacks, tmp_path, capsys):
    out = tmp_path / "o.tif"
    assert main(["measure", str(stacks / "u16.tif"), "--objects", "--csv", str(out), "--labels", str(out)]) == 2
    _one_sentence(capsys, "--csv", "--labels")
    assert not out.exists()


# ---- 4. an empty --methods; 2. a method the protocol cannot score --------------------------------------

@pytest.mark.parametrize("methods", ["", ",", " , "])
def test_evaluate_refuses_no_methods(stacks, capsys, methods):
    assert main(["evaluate", str(stacks / "u16.tif"), "--factor", "2", "--methods", methods]) == 2
    _one_sentence(capsys, "--methods")
    assert capsys.readouterr().out == ""


def test_evaluate_restore_says_what_is_wrong_with_zaugnet(stacks, capsys):
    assert main(["evaluate", str(stacks / "u16.tif"), "--factor", "2", "--restore", "--methods", "zaugnet",
                 "--steps", "2"]) == 2
    err = _one_sentence(capsys, "zaugnet", "--restore")
    assert "--degradation" not in err  # the user gave none


# ---- 6. options a method does not use, 7. refused before any work --------------------------------------

REFUSED = [  # (arguments after the stack or model, option, method named)
    ("predict", "cubic", ["--factor", "2", "--fuse", "xz"], "--fuse", "cubic"),
    ("predict", "cubic", ["--factor", "2", "--no-calibrate"], "--no-calibrate", "cubic"),
    ("predict", "cubic", ["--factor", "2", "--device", "cuda"], "--device", "cubic"),
    ("predict", "linear", ["--factor", "2", "--z-mode", "transfer"], "--z-mode", "linear"),
    ("predict", "zaugnet", ["--factor", "2", "--fuse", "yz"], "--fuse", "zaugnet"),
    ("predict", "zaugnet+", ["--factor", "2", "--fuse", "mean"], "--fuse", "zaugnet+"),
    ("predict", "niiv", ["--z-mode", "direct"], "--z-mode", "niiv"),
    ("predict", "niiv", ["--no-calibrate"], "--no-calibrate", "niiv"),
    ("predict", "selfnet", ["--z-mode", "auto"], "--z-mode", "selfnet"),
    ("predict", "resin", ["--fuse", "xz"], "--fuse", "resin"),
    ("train", "zaugnet", ["--steps", "2", "--factor", "4"], "--factor", "zaugnet"),
    ("train", "zaugnet+", ["--steps", "2", "--no-renoise"], "--renoise", "zaugnet+"),
    ("train", "niiv", ["--steps", "2", "--no-adversarial"], "--no-adversarial", "niiv"),
    ("train", "resin", ["--steps", "2", "--renoise"], "--renoise", "resin"),
    ("train", "selfnet", ["--steps", "2", "--axial-angle", "0"], "--axial-angle", "selfnet"),
    ("evaluate", "linear,cubic", ["--axial-angle", "30"], "--axial-angle", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--sigma", "2"], "--sigma", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--degradation", "gaussian"], "--degradation", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--steps", "2"], "--steps", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--seed", "0"], "--seed", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--init", "prior"], "--init", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--no-calibrate"], "--no-calibrate", "linear or cubic"),
    ("evaluate", "linear,cubic", ["--device", "cpu"], "--device", "linear or cubic"),
    ("evaluate", "linear,cubic,zaugnet", ["--sigma", "2"], "--sigma", "linear, cubic or zaugnet"),
    ("evaluate", "cubic,niiv", ["--restore", "--init", "prior"], "--init", "cubic or niiv"),
    ("evaluate", "input,resin", ["--restore", "--axial-angle", "45", "--sigma", "1"], "--sigma", "input or resin"),
]


@pytest.mark.parametrize("command,method,extra,flag,named", REFUSED,
                         ids=[f"{c}-{m}-{f}" for c, m, _, f, _ in REFUSED])
def test_options_a_method_does_not_use_are_refused_before_any_work(stacks, tmp_path, capsys, command, method,
                                                                   extra, flag, named):
    src = str(stacks / "u16.tif")
    out = tmp_path / "out.tif"
    if command == "predict":
        spec = method if method in ("nearest", "linear", "cubic") else str(stacks / method.replace("+", "plus"))
        args = ["predict", spec, src, "-o", str(out)]
    elif command == "train":
        args = ["train", src, "--method", method, "-o", str(tmp_path / "model")]
    else:
        args = ["evaluate", src, "--factor", "2", "--methods", method]
    assert main(args + extra) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran: no mode, no table, no progress
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zaug: error:") and "Traceback" not in err, err
    assert f"{flag} does not apply to {named}" in err, err
    assert not out.exists() and not (tmp_path / "model").exists()


def test_evaluate_checks_every_option_before_the_first_method_runs(stacks, capsys):
    assert main(["evaluate", str(stacks / "u16.tif"), "--factor", "2", "--methods", "linear,cubic,zaugnet",
                 "--sigma", "2"]) == 2
    captured = capsys.readouterr()
    assert "PSNR" not in captured.err and captured.out == ""  # linear and cubic did not run first
    assert "--sigma does not apply" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_options_are_accepted_where_a_method_uses_them_and_defaults_never_count():
    parser = build_parser()

    def parsed(*argv):
        return parser.parse_args(list(argv))

    # no option given: nothing to refuse, whatever the method (defaults are not the user's)
    for method in ("cubic", "zaugnet", "niiv", "resin"):
        check_method_options(parsed("predict", "m", "in.tif", "-o", "o.tif"), "predict", [method])
        check_method_options(parsed("train", "in.tif", "--method", "m", "-o", "m"), "train", [method])
        check_method_options(parsed("evaluate", "in.tif", "--factor", "2"), "evaluate", [method])
    check_method_options(parsed("evaluate", "in.tif", "--factor", "2"), "evaluate", ["linear", "cubic"])
    # every option of the table is accepted by each method that uses it
    values = {"fuse": ["xz"], "z_mode": ["transfer"], "no_calibrate": [], "no_tta": [], "init": ["prior"],
              "no_adversarial": [], "device": ["cpu"], "preset": ["fast"], "minutes": ["1"], "steps": ["2"],
              "seed": ["1"],
              "factor": ["4"], "degradation": ["gaussian"], "sigma": ["1.5"], "renoise": [], "axial_angle": ["30"]}
    for command, dests in CHECKED_OPTIONS.items():
        for dest in dests:
            flag, users, _ = METHOD_OPTIONS[dest]
            head = {"predict": ["predict", "m", "in.tif", "-o", "o.tif"],
                    "train": ["train", "in.tif", "--method", "m", "-o", "m"],
                    "evaluate": ["evaluate", "in.tif", "--factor", "2"]}[command]
            args = parsed(*head, flag, *values[dest])
            for method in users:
                check_method_options(args, command, [method])
            others = [m for m in ("cubic", "zaugnet", "niiv", "resin") if m not in users]
            for method in others:
                with pytest.raises(InputError, match=f"{flag} does not apply to {method}"):
                    check_method_options(args, command, [method])


def test_device_is_accepted_for_the_fid_network(stacks, capsys, tmp_path):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"not weights")
    main(["evaluate", str(stacks / "u16.tif"), "--factor", "2", "--device", "cpu", "--fid-weights", str(bad)])
    assert "--device does not apply" not in capsys.readouterr().err


# ---- 8, 9. ZAugNet's mode and the factors it reaches by doubling ---------------------------------------

@pytest.fixture(scope="module")
def zaugnet_model(tmp_path_factory):
    from zaug.methods import zaugnet

    vol = load_sample()
    vol = vol.replace(data=np.ascontiguousarray(vol.data[:10, :40, :40]))
    return zaugnet.fit([vol], tmp_path_factory.mktemp("z") / "m", {"steps": 2, "progress": False, "patch": 32,
                                                                   "batch": 2})


def test_zaugnet_mode_says_default_or_asked_and_notes_factors_it_interpolates(zaugnet_model, tmp_path, capsys):
    src = tmp_path / "small.tif"
    vol = load_sample()
    write_volume(vol.replace(data=np.ascontiguousarray(vol.data[:5, :32, :32])), src)
    # --no-calibrate: the calibration, which has nothing to do with the mode, is the slow part on a CPU
    assert main(["predict", str(zaugnet_model), str(src), "-o", str(tmp_path / "x2.tif"), "--factor", "2",
                 "--device", "cpu", "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "mode: direct (the default)" in out and "as asked" not in out and "note:" not in out
    assert main(["predict", str(zaugnet_model), str(src), "-o", str(tmp_path / "x3.tif"), "--factor", "3",
                 "--z-mode", "direct", "--no-calibrate"]) == 0
    captured = capsys.readouterr()
    assert "mode: direct (as asked)" in captured.out
    assert "zaug: warning: ZAugNet doubles the planes per pass, so for x3 the new planes are linearly " in captured.err
    assert "(x4); ZAugNet+ or the z mode 'transfer'" in captured.err
    assert read_volume(tmp_path / "x3.tif").nz == 13
    assert main(["predict", str(zaugnet_model), str(src), "-o", str(tmp_path / "t.tif"), "--factor", "3",
                 "--z-mode", "transfer", "--no-calibrate"]) == 2
    _one_sentence(capsys, "--no-calibrate", "transfer")


@pytest.mark.parametrize("factor,spacing,uniform,note", [(2, None, True, False), (8, None, True, False),
                                                         (3, None, True, True), (2, None, False, False),
                                                         (None, 0.0725, True, False), (None, 0.1, True, True),
                                                         (None, 0.145, False, False), (None, 0.1, False, True)])
def test_zaugnet_notes_when_it_interpolates_between_its_own_planes(factor, spacing, uniform, note):
    from zaug.methods.zaugnet import _contains, _doubling_grids
    from zaug.predict import output_positions

    z_in = np.array([0.0, 0.29, 0.58, 0.87]) if uniform else np.array([0.0, 0.29, 0.87, 1.16])
    z_out = output_positions(z_in, factor=factor, z_spacing=spacing)
    assert (not _contains(_doubling_grids(z_in, z_out)[-1], z_out)) == note  # what the model warns about


def test_zaugnet_doubles_an_uneven_stack_until_its_widest_gap_is_fine_enough():
    from zaug.methods.zaugnet import _doubling_grids
    from zaug.predict import output_positions

    z_in = np.array([0.0, 0.29, 0.87, 1.16, 2.03])  # gaps 0.29 to 0.87
    grids = _doubling_grids(z_in, output_positions(z_in, z_spacing=0.29))
    # its narrowest gap is already 0.29: stopping there left every new plane to linear interpolation
    assert len(grids) == 3 and np.max(np.diff(grids[-1])) <= 0.29


# ---- 10. --voxel-size is in --unit (default um); --unit alone converts ---------------------------------

def _info(capsys, *args) -> dict:
    assert main(["info", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_voxel_size_is_in_unit_and_unit_alone_converts(tmp_path, capsys):
    data = load_sample().data[:6, :32, :32]
    write_volume(Volume(data, (290.0, 260.0, 260.0), "nm"), tmp_path / "nm.ome.tif")
    write_volume(Volume(data, (0.29, 0.26, 0.26), "um"), tmp_path / "um.tif")
    info = _info(capsys, tmp_path / "nm.ome.tif", "--voxel-size", "0.3", "0.26", "0.26")
    assert info["unit"] == "um" and info["voxel_size"]["z"] == pytest.approx(0.3)  # not 0.3 nm
    info = _info(capsys, tmp_path / "nm.ome.tif", "--voxel-size", "300", "260", "260", "--unit", "nm")
    assert info["unit"] == "nm" and info["voxel_size"]["z"] == pytest.approx(300)
    info = _info(capsys, tmp_path / "nm.ome.tif", "--unit", "um")
    assert info["unit"] == "um" and info["voxel_size"] == {"z": 0.29, "y": 0.26, "x": 0.26}
    info = _info(capsys, tmp_path / "um.tif", "--unit", "nm")  # converted, not relabelled
    assert info["unit"] == "nm" and info["voxel_size"] == {"z": 290.0, "y": 260.0, "x": 260.0}
    # a prediction to a spacing in the converted unit
    assert main(["predict", "linear", str(tmp_path / "um.tif"), "-o", str(tmp_path / "o.tif"), "--unit", "nm",
                 "--z-spacing", "145"]) == 0
    out = read_volume(tmp_path / "o.tif")
    capsys.readouterr()
    assert out.unit == "nm" and out.voxel_size[0] == pytest.approx(145) and out.nz == 11


def test_unit_that_cannot_be_converted_is_refused(tmp_path, capsys):
    np.save(tmp_path / "px.npy", np.random.default_rng(0).random((4, 16, 16)).astype(np.float32))
    assert main(["info", str(tmp_path / "px.npy"), "--unit", "um"]) == 2
    _one_sentence(capsys, "no physical unit", "--voxel-size")
    assert main(["info", str(tmp_path / "px.npy"), "--unit", "furlong"]) == 2
    _one_sentence(capsys, "furlong")
    info = _info(capsys, tmp_path / "px.npy", "--voxel-size", "1", "0.5", "0.5")
    assert info["unit"] == "um"


# ---- 11. SIGTERM removes the partial output, as Ctrl-C does --------------------------------------------

def test_sigterm_during_the_write_leaves_no_partial_output(stacks, tmp_path):
    out = tmp_path / "out.tif"
    code = ("import sys, time, zaug.io as z\n"
            "def slow(volume, path, *args, **kwargs):\n    path.write_bytes(b'partial'); time.sleep(60)\n"
            "z.write_tiff = slow\n"
            "from zaug.cli import main\n"
            f"sys.exit(main(['predict', 'linear', {str(stacks / 'u16.tif')!r}, '-o', {str(out)!r},"
            " '--factor', '2']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.05)
    assert any(p.name.startswith(".zaug-partial-") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip() == "zaug: interrupted; no unfinished output was left under the final name."
    assert list(tmp_path.iterdir()) == []


def test_the_option_table_knows_the_methods_of_the_registry():
    from zaug import cli
    from zaug.classic import CLASSICAL_METHODS
    from zaug.methods import LEARNED, RESTORATION

    assert set(cli.CLASSICAL) == set(CLASSICAL_METHODS) and set(cli.LEARNED) == set(LEARNED)
    assert set(cli.RESTORERS) == set(RESTORATION)


@pytest.mark.parametrize("protocol", [["--restore"], ["--restore", "--axial-angle", "45"]])
def test_restoration_evaluations_write_their_reports(tmp_path, capsys, protocol):
    vol = load_sample()
    write_volume(vol.replace(data=np.ascontiguousarray(vol.data[:40, :64, :64])), tmp_path / "fine.tif")
    methods = ["input", "richardson-lucy"] if "--axial-angle" in protocol else ["linear", "cubic"]
    rep = tmp_path / "rep"
    assert main(["evaluate", str(tmp_path / "fine.tif"), *protocol, "--factor", "4", "--methods", ",".join(methods),
                 "--report", str(rep)]) == 0
    capsys.readouterr()
    kind = "oblique" if "--axial-angle" in protocol else "restoration"
    assert sorted(p.name for p in rep.iterdir()) == sorted(report_files(kind, methods))


def test_evaluate_and_measure_pick_one_channel_and_time_point(tmp_path, capsys):
    sample = load_sample().data[:9, :48, :48]
    two = np.stack([sample, sample[:, ::-1]])[None].repeat(2, axis=0)  # T=2, C=2
    write_volume(Volume(two, (0.29, 0.26, 0.26), "um", axes="TCZYX", channel_names=("a", "b")),
                 tmp_path / "tc.ome.tif")
    assert main(["evaluate", str(tmp_path / "tc.ome.tif"), "--factor", "2", "--methods", "linear"]) == 2
    _one_sentence(capsys, "axes TCZYX", "--channel C, --time T")
    assert main(["evaluate", str(tmp_path / "tc.ome.tif"), "--factor", "2", "--methods", "linear", "--json",
                 "--channel", "1", "--time", "1"]) == 0
    picked = json.loads(capsys.readouterr().out)
    alone = evaluate_drop_slice(Volume(sample[:, ::-1], (0.29, 0.26, 0.26), "um"), 2, ["linear"])
    assert picked["methods"]["linear"]["psnr"] == pytest.approx(alone["methods"]["linear"]["psnr"])
    assert main(["measure", str(tmp_path / "tc.ome.tif"), "--objects", "--channel", "2", "--time", "0"]) == 2
    _one_sentence(capsys, "there is no channel 2: the stack has 2 (0 to 1)")


def test_train_checkpoints_as_often_as_asked(tmp_path, capsys, monkeypatch):
    import zaug.methods.niiv as niiv

    stack = tmp_path / "aniso.tif"
    write_volume(load_sample().replace(data=load_sample().data[::4, :48, :48], voxel_size=(1.16, 0.26, 0.26)),
                 stack)
    assert main(["train", str(stack), "--method", "niiv", "--steps", "2", "-o", str(tmp_path / "m"),
                 "--checkpoint-every", "0"]) == 2
    _one_sentence(capsys, "--checkpoint-every must be a positive number of seconds, got 0")
    assert not (tmp_path / "m").exists()
    given = {}

    def fit(volumes, out_dir, options):
        given.update(options)
        raise InputError("stopped where the options reach the method")

    monkeypatch.setattr(niiv, "fit", fit)
    assert main(["train", str(stack), "--method", "niiv", "--steps", "2", "-o", str(tmp_path / "m"),
                 "--checkpoint-every", "5"]) == 2
    assert given["checkpoint_every_s"] == 5.0


# ---- folders this process cannot write: refused before any work ---------------------------------------

def _unwritable(monkeypatch, folder):
    """``folder`` and what is below it read-only, as os.access sees them (the tests may run as root)."""
    import os

    access = os.access

    def fake(path, mode, *args, **kwargs):
        path = os.path.abspath(path)
        if mode & os.W_OK and (path == str(folder) or path.startswith(str(folder) + os.sep)):
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", fake)


def test_an_unwritable_report_or_model_folder_is_refused_before_any_work(stacks, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    _unwritable(monkeypatch, ro)
    out = tmp_path / "x.tif"
    u16 = str(stacks / "u16.tif")
    for args in (["predict", "cubic", u16, "-o", str(out), "--factor", "2", "--report", str(ro / "rep")],
                 ["predict", "cubic", u16, "-o", str(out), "--factor", "2", "--report", str(ro / "a" / "rep")],
                 ["evaluate", u16, "--factor", "2", "--methods", "linear", "--report", str(ro / "rep")],
                 ["train", u16, "--method", "zaugnet", "--steps", "2", "-o", str(ro / "m")],
                 ["train", u16, "--method", "zaugnet", "--steps", "2", "-o", str(ro / "new" / "deep" / "m")]):
        assert main(args) == 2, args  # was: the output written, then the report refused; or an unexpected error
        _one_sentence(capsys, f"the folder {ro} is not writable")
    assert not out.exists() and list(ro.iterdir()) == []
    rep = tmp_path / "rep"  # a report folder that exists but is read-only itself
    rep.mkdir()
    _unwritable(monkeypatch, rep)
    assert main(["evaluate", u16, "--factor", "2", "--methods", "linear", "--report", str(rep)]) == 2
    assert capsys.readouterr().out == ""  # nothing evaluated


def test_a_model_folder_that_cannot_be_made_is_one_sentence(stacks, tmp_path, monkeypatch):
    from pathlib import Path

    from zaug.methods import zaugnet

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)  # what os.access could not tell (a full disk, an ACL)
    with pytest.raises(OutputError, match=r"cannot write the model folder .*: Permission denied; choose another"):
        zaugnet.fit([read_volume(stacks / "u16.tif")], tmp_path / "m", {"steps": 2, "progress": False})


def test_a_refused_training_leaves_no_folders_it_made(stacks, tmp_path, capsys):
    few = tmp_path / "few.tif"
    vol = read_volume(stacks / "u16.tif")
    write_volume(vol.replace(data=vol.data[:5]), few)  # too few planes for ZAugNet
    assert main(["train", str(few), "--method", "zaugnet", "--steps", "2", "-o", str(tmp_path / "new" / "deep"
                                                                                     / "m")]) == 2
    capsys.readouterr()
    assert not (tmp_path / "new").exists()  # was: new/deep left behind


def test_an_interrupted_training_says_whether_there_is_anything_to_resume(tmp_path, capsys, monkeypatch):
    import zaug.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "train", interrupted)
    argv = ["train", "s.tif", "--method", "zaugnet", "--steps", "2", "-o", str(tmp_path / "m")]
    assert main(argv) == 130
    assert "interrupted before training began; there is nothing to resume" in capsys.readouterr().err
    (tmp_path / "m" / "checkpoint").mkdir(parents=True)
    assert main(argv) == 130
    assert "resumes from its last checkpoint" in capsys.readouterr().err


def test_the_command_line_writes_each_line_as_it_comes(monkeypatch):
    import io

    from zaug.cli import _tolerant_console

    for name in ("stdout", "stderr"):  # a job's log: stdout was block-buffered, its lines came after stderr's
        monkeypatch.setattr(sys, name, io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    _tolerant_console()
    assert sys.stdout.line_buffering and sys.stderr.line_buffering
    sys.stdout.write("mode: direct\n")
    assert sys.stdout.buffer.getvalue() == b"mode: direct\n"


def test_evaluation_trains_its_models_without_periodic_checkpoints(monkeypatch):
    import math

    import zaug.methods._common as common

    seen = []
    run_training = common.run_training

    def spy(*args, **kwargs):
        seen.append(kwargs["checkpoint_every_s"])
        return run_training(*args, **kwargs)

    monkeypatch.setattr(common, "run_training", spy)
    vol = load_sample()
    vol = vol.replace(data=np.ascontiguousarray(vol.data[:20, :48, :48]))
    evaluate_drop_slice(vol, 2, ["zaugnet"], train_options={"steps": 2, "progress": False, "patch": 32,
                                                            "batch": 2, "tta": False})
    assert seen == [math.inf]  # nothing resumes a model in a temporary folder: no 70-MB checkpoint a minute


def test_crop_reads_a_box_of_a_stack_with_its_physical_position(tmp_path, capsys):
    data = load_sample().data[:12, :40, :48]
    uneven = np.cumsum([0.0, 0.3, 0.3, 0.5] + [0.3] * 8)  # 12 planes, one wider gap
    write_volume(Volume(data, (0.3, 0.26, 0.26), "um", yx_origin=(1.0, 2.0)), tmp_path / "s.ome.zarr")
    write_volume(Volume(data, (0.3, 0.26, 0.26), "um", z_positions=uneven), tmp_path / "u.npz")
    info = _info(capsys, tmp_path / "s.ome.zarr", "--crop", "2:10,8:,:24")
    assert info["shape"] == [8, 32, 24] and info["z_origin"] == pytest.approx(0.6)
    assert (info["yx_origin"]["y"], info["yx_origin"]["x"]) == pytest.approx((1.0 + 8 * 0.26, 2.0))
    # an OME-Zarr in tiles (read lazily) and a stack in memory give the same box, placed where it was
    for source, out, extra in (("s.ome.zarr", "t.ome.zarr", ["--tile", "16"]), ("u.npz", "m.npz", [])):
        assert main(["predict", "linear", str(tmp_path / source), "--crop", "2:10,8:,:24", "-o",
                     str(tmp_path / out), "--factor", "2", *extra]) == 0
        box = read_volume(tmp_path / out)
        assert box.spatial_shape == (15, 32, 24) and box.yx_origin[1] == pytest.approx(2.0 if extra else 0.0)
        np.testing.assert_array_equal(np.asarray(box.data)[::2], data[2:10, 8:, :24])
    assert read_volume(tmp_path / "m.npz").z_coords()[[0, 2, 4]] == pytest.approx(uneven[2:5])
    capsys.readouterr()
    for bad, said in (("2:10,8:,:99", "the crop's x range :99 is not a range within the stack's 48 columns"),
                      ("5:5,:,:", "z range 5:5"), ("-99:,:,:", "z range -99: is not a range within")):
        assert main(["info", str(tmp_path / "s.ome.zarr"), "--crop", bad]) == 2
        _one_sentence(capsys, said)
    # negative indices count from the end, as Python's, though argparse takes '-3:' for an option
    nz = read_volume(tmp_path / "s.ome.zarr").nz
    assert _info(capsys, tmp_path / "s.ome.zarr", "--crop", "-3:,:,-8:")["shape"] == [3, 40, 8]
    assert _info(capsys, tmp_path / "s.ome.zarr", "--crop", f"{nz - 3}:,:,40:")["shape"] == [3, 40, 8]
    # argparse takes an abbreviation of --crop too
    assert _info(capsys, tmp_path / "s.ome.zarr", "--cro", "-3:,:,-8:")["shape"] == [3, 40, 8]
    assert main(["predict", "linear", str(tmp_path / "s.ome.zarr"), "--crop", "5:6,:,:", "-o",
                 str(tmp_path / "one.tif"), "--factor", "2"]) == 2
    _one_sentence(capsys, "the --crop box holds 1 plane along z; zaug needs at least 2")
    box = read_volume(tmp_path / "s.ome.zarr").crop(slice(2, 10), slice(8, None), slice(None))
    assert box.crop(slice(1, 3), slice(None), slice(4, 8)).metadata["region"] == [[3, 5], [8, 40], [4, 8]]
    with pytest.raises(InputError, match="the crop's z range has a step"):
        box.crop(slice(None, None, 2))
    with pytest.raises(SystemExit):
        main(["info", str(tmp_path / "s.ome.zarr"), "--crop", "2:10"])
    assert "is not a box of three index ranges" in capsys.readouterr().err
