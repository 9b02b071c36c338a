"""ZAugNet / ZAugNet+ training, model files and prediction (tiny budgets: behaviour, not quality)."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from safetensors.torch import load_file
import torch

from zaug import InputError, OutputError, Volume, ZaugError, ZaugWarning
from zaug.classic import interpolate_stack
from zaug.data.triplets import TripletSampler, split_validation, triplet_indices
from zaug.evaluate import evaluate_drop_slice, format_table
from zaug.io import read_volume, write_volume
from zaug.methods import describe_model, format_model_info, zaugnet
from zaug.methods._common import load_config, newer_hint
from zaug.nets.zstack import BAND_SIGMAS, band_split, band_weights, weighted_departure
from zaug.predict import upsample_z
from zaug.sample import load_sample
from zaug.train import Budget

TINY = {"steps": 3, "progress": False, "patch": 32, "batch": 2}


@pytest.fixture(scope="module")
def small():
    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[:16, 32:80, 40:96]))


def test_triplets_zaugnet_plus_positions_and_directions():
    trips = triplet_indices(10, max_gap=4, all_positions=True)
    ts = {round((j - i) / (k - i), 4) for i, j, k in trips}
    assert ts == {0.25, 1 / 3 and round(1 / 3, 4), 0.5, round(2 / 3, 4), 0.75}
    assert all(k - i <= 4 for i, _, k in trips)
    assert triplet_indices(10, max_gap=2) == [(i, i + 1, i + 2) for i in range(8)]


def test_validation_planes_never_reach_training():
    train, val = split_validation(30)
    assert not train & val and len(val) >= 3
    trips = triplet_indices(30, 2, planes=train)
    assert all(not {i, j, k} & val for i, j, k in trips)
    stack = np.arange(30, dtype=np.float32)[:, None, None] * np.ones((30, 40, 40), np.float32) / 30
    sampler = TripletSampler([stack], [trips], [np.arange(30.0)], patch=32)
    rng = np.random.default_rng(0)
    for _ in range(50):
        i0, i1, gt, t = sampler.sample(4, rng)
        assert set(np.round(t, 6)) <= {0.5}
        # values encode the plane index up to the intensity scale s in [0.7, 1]: gt = (i0 + i1) / 2
        np.testing.assert_allclose(gt, (i0 + i1) / 2, atol=1e-5)
        assert i0.min() >= 0 and i0.max() <= 1 and gt.shape == (4, 1, 32, 32)


def test_planes_narrower_than_the_patch_are_still_cropped_anywhere_along_their_long_side():
    # 40 x 96 planes, patch 64: padded to 64 rows; value = (column + 1) / 96, so a patch starting at
    # column c holds (c + 1 .. c + 64) / 96 times one scale s, and min / max gives c back
    stack = np.ascontiguousarray(np.broadcast_to(np.arange(1, 97, dtype=np.float32) / 96, (5, 40, 96)))
    sampler = TripletSampler([stack], [[(0, 1, 2)]], [np.arange(5.0)], patch=64)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(40):
        _, _, gt, _ = sampler.sample(2, rng)
        assert gt.shape == (2, 1, 64, 64)
        for patch in gt[:, 0]:
            r = float(patch.min() / patch.max())
            starts.add(int(round((64 * r - 1) / (1 - r))))
    assert min(starts) >= 0 and max(starts) + 64 > 90  # before: always column 0, the last third never seen


def test_progress_bar_shows_loss_and_stays_short_in_a_log(small, tmp_path, capsys):
    zaugnet.fit([small], tmp_path / "m", dict(TINY, steps=8, progress=True))
    err = capsys.readouterr().err  # not a terminal: redrawn at most every 10 s
    assert "loss=" in err and "8/8" in err
    assert err.count("\r") <= 3, err


def test_zero_step_runs_are_refused(small, tmp_path):
    with pytest.raises(ZaugError, match="zero"):
        Budget(steps=0)
    with pytest.raises(ZaugError):
        Budget(minutes=0)
    with pytest.raises(ZaugError, match="budget"):
        Budget()
    for data, method, said in ((small.data[:3], "zaugnet", "has 3 planes and ZAugNet needs at least 8"),
                               (small.data[:9], "zaugnet+", "has 9 planes and ZAugNet\\+ needs at least 10"),
                               (small.data[:, :6], "zaugnet", "6 x 56 pixels and ZAugNet needs at least 7 x 7")):
        with pytest.raises(InputError, match=said):  # 3 planes: "at least 3", then 4 to 7: "at least 8"
            zaugnet.fit([small.replace(data=data)], tmp_path / "m", dict(TINY, method=method))
        assert not (tmp_path / "m").exists()  # 6-pixel planes: every step trained, then the self-check failed


def test_fit_saves_safetensors_and_versioned_config(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["zaug_version"] and config["method"] == "zaugnet" and config["summary"]["steps"] == 3
    assert config["train_voxel_size"] == pytest.approx([0.29, 0.26, 0.26])
    assert {"model", "linear", "cubic", "linear+smooth"} <= set(config["self_check"])
    tensors = load_file(str(out / "model.safetensors"))
    assert any(k.startswith("generator.blocks") for k in tensors)
    with pytest.raises(OutputError, match="--overwrite"):
        zaugnet.fit([small], out, TINY)


def test_training_is_seeded(small, tmp_path):
    a = load_file(str(zaugnet.fit([small], tmp_path / "a", dict(TINY, seed=3)) / "model.safetensors"))
    b = load_file(str(zaugnet.fit([small], tmp_path / "b", dict(TINY, seed=3)) / "model.safetensors"))
    c = load_file(str(zaugnet.fit([small], tmp_path / "c", dict(TINY, seed=4)) / "model.safetensors"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert any(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in a)


def test_resume_after_kill(small, tmp_path):
    src = tmp_path / "small.tif"
    write_volume(small, src)
    model = tmp_path / "m"
    code = (f"from zaug.io import read_volume; from zaug.methods import zaugnet\n"
            f"zaugnet.fit([read_volume({str(src)!r})], {str(model)!r}, dict(steps=120, progress=False, patch=32, "
            f"batch=2, checkpoint_every_s=0.5, adversarial=False))\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    state = model / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["loop"]["step"] >= 5):
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    saved_step = json.loads(state.read_text())["loop"]["step"]
    assert 5 <= saved_step < 120 and not (model / "config.json").exists()
    out = zaugnet.fit([read_volume(src)], model, dict(steps=120, progress=False, patch=32, batch=2,
                                                       adversarial=False))
    config = json.loads((out / "config.json").read_text())
    assert config["summary"]["resumed"] is True and config["summary"]["steps"] == 120


def test_resume_refuses_other_settings(small, tmp_path):
    (tmp_path / "m" / "checkpoint").mkdir(parents=True)
    (tmp_path / "m" / "run.json").write_text(json.dumps({"method": "other"}))
    with pytest.raises(OutputError, match="other settings"):
        zaugnet.fit([small], tmp_path / "m", TINY)
    # a run that failed before its first checkpoint has nothing to resume: other settings start afresh
    (tmp_path / "m" / "checkpoint").rmdir()
    zaugnet.fit([small], tmp_path / "m", TINY)
    assert json.loads((tmp_path / "m" / "run.json").read_text())["method"] == "zaugnet"


def test_overwrite_removes_only_what_zaug_wrote(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    stack = out / "stack.tif"
    write_volume(small, stack)  # the user's own file beside the model
    with pytest.raises(OutputError, match="did not write .*stack.tif"):
        zaugnet.fit([small], out, dict(TINY, overwrite=True))
    assert stack.exists() and (out / "model.safetensors").exists()
    stack.unlink()
    before = (out / "model.safetensors").stat().st_mtime_ns
    zaugnet.fit([small], out, dict(TINY, overwrite=True, seed=5))
    assert (out / "model.safetensors").stat().st_mtime_ns != before
    assert json.loads((out / "config.json").read_text())["seed"] == 5


def test_a_folder_with_someone_elses_config_is_not_a_model_folder(small, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.json").write_text("{}")
    (proj / "notes.txt").write_text("mine")
    for opts in (TINY, dict(TINY, overwrite=True)):
        with pytest.raises(OutputError, match="not a zaug model folder"):
            zaugnet.fit([small], proj, opts)
    assert sorted(p.name for p in proj.iterdir()) == ["config.json", "notes.txt"]


def test_a_finished_model_says_how_to_train_on_from_it(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    with pytest.raises(OutputError, match=r"already holds a trained model; pass --overwrite to replace it, or train "
                                          r"on from its weights into another folder \(--init .*m -o NEW_FOLDER\)"):
        zaugnet.fit([small], out, dict(TINY, steps=6))
    more = zaugnet.fit([small], tmp_path / "more", dict(TINY, init=str(out)))  # as it says
    assert json.loads((more / "run.json").read_text())["init"] == str(out)


def test_info_refuses_an_edited_configuration_as_prediction_does(small, tmp_path, run_cli):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    good = json.loads((out / "config.json").read_text())
    write_volume(small, tmp_path / "x.tif")
    for edit, said in (({"presset": good["preset"], "preset": None}, "presset: not a setting this zaug knows"),
                       ({"net": None}, "net: missing"),
                       ({"method": "zaugnt"}, "names the method 'zaugnt', which this zaug does not know")):
        (out / "config.json").write_text(json.dumps({k: v for k, v in {**good, **edit}.items() if v is not None}))
        info = run_cli("info", out)
        predict = run_cli("predict", out, tmp_path / "x.tif", "-o", tmp_path / "y.tif", "--factor", "2")
        assert info.returncode == 2 and info.stderr.count("\n") == 1 and said in info.stderr, info  # was: exit 0
        if edit.get("method") is None:
            assert predict.stderr == info.stderr  # the same sentence
    (out / "config.json").write_text(json.dumps(good))
    assert run_cli("info", out).returncode == 0


def test_stacks_of_different_plane_sizes_train_together(small, tmp_path):
    other = small.replace(data=np.ascontiguousarray(small.data[:, :40, :44]))
    out = zaugnet.fit([small, other], tmp_path / "m", TINY)  # validation and self-check over both
    config = json.loads((out / "config.json").read_text())
    assert config["summary"]["steps"] == 3 and set(config["validation_planes"]) == {"0", "1"}
    assert config["self_check"]["planes"] == 2 and np.isfinite(config["self_check"]["model"]["psnr"])
    assert "held-out planes of your 2 stacks:" in zaugnet.format_self_check(config["self_check"])


def _generator(model_dir):
    return {k: v.numpy() for k, v in load_file(str(model_dir / "model.safetensors")).items()}


def test_init_starts_from_the_generator_of_another_model(small, tmp_path, monkeypatch):
    first = _generator(zaugnet.fit([small], tmp_path / "a", dict(TINY, seed=1)))
    fresh = _generator(zaugnet.fit([small], tmp_path / "b", dict(TINY, seed=2)))
    # a step size of almost nothing: what is saved is where the run started
    tuned = _generator(zaugnet.fit([small], tmp_path / "c", dict(TINY, seed=2, init=tmp_path / "a", lr=1e-9)))
    assert max(np.abs(tuned[k] - first[k]).max() for k in first) < 1e-3
    assert max(np.abs(fresh[k] - first[k]).max() for k in first) > 1e-2
    # part of the run's identity: a killed run resumes only with the same starting point
    assert json.loads((tmp_path / "c" / "run.json").read_text())["init"] == str(tmp_path / "a")
    monkeypatch.chdir(tmp_path)  # a model given relative to where the run started is named absolutely
    zaugnet.fit([small], "d", dict(TINY, init="a"))
    assert json.loads((tmp_path / "d" / "run.json").read_text())["init"] == str(tmp_path / "a")
    assert f"started from the weights of {tmp_path / 'a'}" in format_model_info(describe_model(tmp_path / "d"))


def test_init_refuses_another_kind_of_model_and_a_prior_not_shipped(small, tmp_path):
    plus = zaugnet.fit([small], tmp_path / "p", dict(TINY, method="zaugnet+"))
    with pytest.raises(InputError, match="does not match this run"):
        zaugnet.fit([small], tmp_path / "m", dict(TINY, init=plus))
    with pytest.raises(InputError, match="ships no prior for zaugnet\\+"):
        zaugnet.fit([small], tmp_path / "m", dict(TINY, method="zaugnet+", init="prior"))
    with pytest.raises(InputError, match="not a complete zaug model"):
        zaugnet.fit([small], tmp_path / "m", dict(TINY, init=tmp_path))
    assert not (tmp_path / "m").exists()  # refused before the run folder is made: a corrected retry starts clean


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_predict_keeps_dtype_range_and_voxel_size(small, tmp_path, dtype):
    data = small.data.astype(np.float32) / small.data.max()
    data = (data * (255 if dtype == np.uint8 else 60000)).astype(dtype)
    vol = small.replace(data=data)
    model = zaugnet.load(zaugnet.fit([vol], tmp_path / "m", TINY))
    out = upsample_z(vol, model, factor=4)
    assert out.dtype == dtype and out.nz == (vol.nz - 1) * 4 + 1
    assert out.voxel_size == pytest.approx((0.29 / 4, 0.26, 0.26))
    np.testing.assert_array_equal(out.data[::4], vol.data)  # acquired planes kept
    assert out.data.max() <= data.max() * 1.05 + 1 and out.data.min() >= 0


def test_a_stack_in_another_intensity_range_is_scaled_by_its_own(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))  # a 16-bit stack
    data = small.data.astype(np.float32)
    for scaled in (data / data.max() * 255, data / 1000):  # 8-bit, float in other units: before, NaN or black planes
        vol = small.replace(data=scaled.astype(np.float32))
        with pytest.warns(ZaugWarning, match="far from the training stack's"):
            out = upsample_z(vol, model, factor=2).data
        new, linear = out[1::2], 0.5 * (scaled[:-1] + scaled[1:])
        assert np.isfinite(out).all() and new.min() >= 0.5 * scaled.min() and new.max() <= 1.5 * scaled.max()
        assert np.abs(new - linear).mean() < 0.25 * np.abs(linear).mean()


def test_intensities_beyond_the_training_range_are_not_cut_off(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", dict(TINY, steps=1)))
    low, high = model.config.normalisation["low"], model.config.normalisation["high"]
    data = small.data.astype(np.float32)
    data[:, :8] = low - 0.2 * (high - low)  # a band below the training range, one above
    data[:, -8:] = high + 0.2 * (high - low)
    with pytest.warns(ZaugWarning, match=r"3\d% of this stack's voxels lie outside the training stack's intensity"):
        out = model.interpolate(data, np.arange(small.nz, dtype=float), np.arange(small.nz - 0.5, step=0.5))
    with warnings.catch_warnings(record=True) as said:  # the training stack itself: 0.11% beyond, no word
        warnings.simplefilter("always")
        model.interpolate(small.data, np.arange(small.nz, dtype=float), np.arange(small.nz - 0.5, step=0.5))
    assert not [w for w in said if "intensity range" in str(w.message)]
    # the new planes follow linear interpolation there (before: cut off at the range, 0.2 of it away)
    for band in (np.s_[1::2, :8, 8:-8], np.s_[1::2, -8:, 8:-8]):
        assert np.abs(out[band] - data[1:][(slice(None),) + band[1:]]).mean() < 0.05 * (high - low)


def test_zaugnet_plus_any_position_and_non_uniform_input(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "p", dict(TINY, method="zaugnet+")))
    assert model.plus
    vol = small.replace(z_positions=np.cumsum([0] + [0.29, 0.58] * 7 + [0.29]), data=small.data)
    out = upsample_z(vol, model, z_spacing=0.2)
    assert out.voxel_size[0] == pytest.approx(0.2) and out.nz == int(vol.z_coords()[-1] / 0.2 + 1e-6) + 1
    assert out.dtype == np.uint16


def test_zaugnet_plus_at_the_stacks_own_spacing_returns_its_planes(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "p", dict(TINY, method="zaugnet+")))
    model.calibration_weights = lambda *args, **kwargs: (0.6, 0.3)  # a cubic share: the spline was asked for
    out = upsample_z(small, model, z_spacing=small.voxel_size[0])  # no new plane (was: a ValueError)
    np.testing.assert_array_equal(out.data, small.data)


def test_zaugnet_doubling_with_non_power_of_two_spacing(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    out = upsample_z(small, model, z_spacing=0.1)
    assert out.voxel_size[0] == pytest.approx(0.1)


def test_tiled_prediction_matches_untiled_inside(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    stack = np.asarray(small.data, np.float32)
    whole = model.interpolate(stack, small.z_coords(), small.z_coords()[:2].mean(keepdims=True))
    model.tile, model.overlap = 32, 8
    tiled = model.interpolate(stack, small.z_coords(), small.z_coords()[:2].mean(keepdims=True))
    rel = np.abs(whole - tiled).mean() / np.abs(whole).mean()
    assert rel < 0.05


def test_spacing_mismatch_warns(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    far = small.replace(voxel_size=(5.0, 0.26, 0.26))
    with pytest.warns(UserWarning, match="z spacing"):
        upsample_z(far, model, factor=2)
    # one wide gap in an otherwise matching stack: its mean is within range, the gap is not
    dz = small.voxel_size[0]
    gapped = small.replace(z_positions=np.cumsum([0.0] + [dz] * (small.nz - 2) + [10 * dz]), data=small.data)
    assert 0.4 < np.mean(np.diff(gapped.z_coords())) / model.config.train_plane_spacing < 2.5
    with pytest.warns(UserWarning, match=rf"z spacing \(gaps {dz:g} to {10 * dz:g}\) differs"):
        upsample_z(gapped, model, factor=2)


def test_cli_train_and_predict(run_cli, small, tmp_path):
    src = tmp_path / "s.tif"
    write_volume(small, src)
    proc = run_cli("train", src, "--method", "zaugnet", "--steps", "2", "-o", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert "self-check" in proc.stdout
    assert "training stack: s.tif, 16x48x56 uint16\n" in run_cli("info", tmp_path / "m").stdout  # was: no word
    proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "o.tif", "--factor", "2")
    assert proc.returncode == 0, proc.stderr
    out = read_volume(tmp_path / "o.tif")
    assert out.nz == 31 and out.voxel_size[0] == pytest.approx(0.145) and out.dtype == np.uint16
    assert "calibration: between planes 0.29 um apart, linear interpolation +" in proc.stdout
    proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "raw.tif", "--factor", "2", "--no-calibrate")
    assert proc.returncode == 0 and "calibration" not in proc.stdout
    # one network pass per plane instead of the mean over 8 orientations: another (untrained, not equivariant) answer
    import zaug.nets.zstack as zstack

    passes = []
    real = zstack.run_generator
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zstack, "run_generator", lambda *args: passes.append(args[-1]) or real(*args))
        proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "one.tif", "--factor", "2", "--no-calibrate",
                       "--no-tta")
    assert proc.returncode == 0, proc.stderr
    assert passes and not any(passes)  # every call without the 8 orientations
    one, raw = read_volume(tmp_path / "one.tif").data, read_volume(tmp_path / "raw.tif").data
    np.testing.assert_array_equal(one[::2], raw[::2])
    assert np.abs(one[1::2].astype(np.int64) - raw[1::2]).max() > 0
    proc = run_cli("predict", "linear", src, "-o", tmp_path / "l.tif", "--factor", "2", "--no-tta")
    assert proc.returncode != 0 and "--no-tta" in proc.stderr and "ZAugNet option" in proc.stderr
    proc = run_cli("train", src, "--method", "zaugnet", "--minutes", "0", "-o", tmp_path / "z")
    assert proc.returncode != 0 and "zero" in proc.stderr and "Traceback" not in proc.stderr


def test_the_shipped_prior_interpolates_the_sample_better_than_linear_before_training_to_speak_of(tmp_path):
    # the prior never saw cells3d (zaug/priors/README.md); after 5 steps it is 0.6 dB above linear interpolation
    # (measured), where a network from random weights still does about what linear interpolation does
    vol = load_sample()
    vol = vol.replace(data=np.ascontiguousarray(vol.data[:, :96, :96]))
    kept, removed = np.arange(0, 59, 2), np.arange(1, 58, 2)
    train = vol.replace(data=vol.data[kept], voxel_size=(0.58, 0.26, 0.26))
    data = np.asarray(vol.data, np.float32)
    truth = data[removed]
    scale = float(np.percentile(data, 99.9))

    def score(name, options):
        model = zaugnet.load(zaugnet.fit([train], tmp_path / name, dict(TINY, steps=5, **options)))
        model.calibrate = False  # the network alone
        pred = model.interpolate(data[kept], vol.z_coords()[kept], vol.z_coords()[:59])[removed]
        return 10 * np.log10(scale**2 / np.mean((pred - truth) ** 2))

    linear = 10 * np.log10(scale**2 / np.mean(((data[kept][:-1] + data[kept][1:]) / 2 - truth) ** 2))
    prior, scratch = score("prior", {"init": "prior"}), score("scratch", {})
    assert prior > linear + 0.3 and prior > scratch + 0.3, (prior, linear, scratch)


def test_cli_init_is_refused_where_it_cannot_apply(run_cli, small, tmp_path):
    src = tmp_path / "s.tif"
    write_volume(small, src)
    proc = run_cli("train", src, "--method", "selfnet", "--init", "prior", "--steps", "2", "-o", tmp_path / "n")
    assert proc.returncode != 0 and "--init does not apply to selfnet" in proc.stderr
    proc = run_cli("train", src, "--method", "zaugnet+", "--init", "prior", "--steps", "2", "-o", tmp_path / "p")
    assert proc.returncode != 0 and "ships no prior for zaugnet+" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "p").exists()


def test_lateral_triplets_use_training_rows_only_and_match_the_prediction_gap():
    from zaug.data.triplets import LateralTripletSampler, training_runs

    train, val = split_validation(20)
    runs = training_runs(20, train)
    assert all(not set(run) & val for run in runs) and sum(map(len, runs)) == len(train)
    # plane value = plane index, constant within the plane: lateral triplets must only see training planes
    stack = np.broadcast_to(np.arange(20, dtype=np.float32)[:, None, None], (20, 40, 40)) / 20
    sampler = LateralTripletSampler([stack[run] for run in runs], [1] * len(runs), patch=32)
    i0, i1, gt, t = sampler.sample(8, np.random.default_rng(0))
    assert i0.shape == (8, 1, sampler.rows, 32) and np.all(t == 0.5)
    rows_seen = {int(round(v * 20)) for seg in sampler.segments for v in np.unique(seg)}
    assert rows_seen == train
    # xz-plane triplet: along the lateral axis the planes are identical here, so gt == i0 == i1
    np.testing.assert_allclose(gt, i0)


def test_lateral_triplets_take_a_gap_per_axis_and_skip_axes_too_short_for_it():
    from zaug.data.triplets import LateralTripletSampler

    y, x = np.meshgrid(np.arange(40, dtype=np.float32), np.arange(120, dtype=np.float32), indexing="ij")
    seg = np.stack([y * 1000 + x] * 6)  # a voxel's value says its (y, x)
    sampler = LateralTripletSampler([seg], [(25, 3)], patch=16)  # 40 rows cannot hold 2 x 25: x only
    i0, i1, gt, _ = sampler.sample(64, np.random.default_rng(0))
    steps = np.abs(gt - i0)[:, 0, 0, 0]  # 3 columns times the intensity scale (0.7 to 1); rows: 25,000
    assert np.all((steps >= 2.09) & (steps <= 3.01))
    np.testing.assert_allclose(np.abs(i1 - gt), np.abs(gt - i0), atol=0.01)  # float32 of values near 4e4
    with pytest.raises(InputError, match="too small"):
        LateralTripletSampler([seg], [(25, 70)], patch=16)


def test_fit_warns_when_plain_zaugnet_learns_from_uneven_planes(small, tmp_path):
    z = np.cumsum(np.r_[0.0, np.tile([0.5, 1.5], 8)[: small.nz - 1]])
    with pytest.warns(ZaugWarning, match="unevenly.*zaugnet\\+"):
        zaugnet.fit([small.replace(z_positions=z)], tmp_path / "m", TINY)


def test_fit_with_lateral_triplets(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", dict(TINY, lateral=0.5))
    assert json.loads((out / "config.json").read_text())["lateral"] == 0.5


def test_moving_average_model_is_saved_and_resumable(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", dict(TINY, ema=0.99, adversarial=False))
    assert json.loads((out / "config.json").read_text())["ema"] == 0.99
    state = load_file(str(out / "checkpoint" / "state.safetensors"))
    # the checkpoint keeps both the averaged model and the generator being trained
    assert any(k.startswith("task.generator.") for k in state)
    assert any(k.startswith("task.training_generator.") for k in state)


def test_prediction_between_closer_planes_than_trained_says_so(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    with pytest.warns(UserWarning, match="self-check measured the former only"):
        upsample_z(small, model, factor=2)


def _stand_in(model, correction):
    """Replace the network: linear interpolation minus ``correction`` (a number)."""
    model._pairs = lambda planes, jobs, counted=True: [0.5 * (planes[a] + planes[b]) - correction for a, b, _ in jobs]


def test_calibration_weights_are_fitted_on_lateral_triplets_at_the_spacing_of_use(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))

    def paraboloid(n):  # linear interpolation between rows 2g apart misses the middle row by -c g^2
        y, x = np.mgrid[:n, :n]
        return np.repeat((1e-3 * (y ** 2 + x ** 2))[None], 6, 0).astype(np.float32)

    _stand_in(model, 2 * 1e-3 * 2 ** 2)  # twice the right correction for rows 4 apart (g = 2)
    # lateral pixel 0.26: planes 1.04 apart are matched by rows 4 apart; on 8 rows the spline has two knots
    # (cubic = linear), so only the model's weight is fitted
    # (the misses are constant along the rows: all in the coarsest detail band, the others keep its pair)
    assert np.asarray(band_weights(model.calibration_weights(paraboloid(8), 1.04))) == pytest.approx(
        np.tile((0.5, 0.0), (5, 1)), abs=1e-5)
    # planes 0.52 apart: rows 2 apart (g = 1; 4 rows), where the stand-in's correction is 8x too large
    assert np.asarray(band_weights(model.calibration_weights(paraboloid(4), 0.52))) == pytest.approx(
        np.tile((1 / 8, 0.0), (5, 1)), abs=1e-5)


def test_calibration_uses_the_pixel_size_of_the_stack_it_interpolates(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))  # trained with 0.26 pixels
    y, x = np.mgrid[:4, :4]
    paraboloid = np.repeat((1e-3 * (y ** 2 + x ** 2))[None], 6, 0).astype(np.float32)
    _stand_in(model, 2 * 1e-3 * 2 ** 2)
    # planes 1.04 apart: with 0.52 pixels, rows 2 apart (g = 1) fit in 4 rows; with the training
    # stack's 0.26 pixels, rows 4 apart would not, and the model alone would be used
    assert np.asarray(band_weights(model.calibration_weights(paraboloid, 1.04, (0.52, 0.52)))) == pytest.approx(
        np.tile((1 / 8, 0.0), (5, 1)), abs=1e-5)
    model.calibration.clear()
    assert model.calibration_weights(paraboloid, 1.04) == (1.0, 0.0)
    # and a whole-volume prediction passes the input's pixel size on
    seen = []
    model.calibration_weights = lambda x, spacing, pixel_size=None: seen.append(pixel_size) or (1.0, 0.0)
    upsample_z(small.replace(voxel_size=(small.voxel_size[0], 0.5, 0.7)), model, factor=2)
    assert seen and set(seen) == {(0.5, 0.7)}


def test_calibration_prefers_cubic_on_smooth_data_and_linear_on_noise(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    _stand_in(model, 0.0)  # a model that adds nothing to linear interpolation
    y, x = np.mgrid[:48, :56]
    smooth = np.repeat((0.5 + 0.4 * np.sin(y / 5.0) * np.cos(x / 7.0))[None], 6, 0).astype(np.float32)
    assert all(c > 0.9 for _, c in band_weights(model.calibration_weights(smooth, 1.04)))
    noise = np.random.default_rng(0).random((6, 48, 56), dtype=np.float32)
    model.calibration.clear()  # kept per spacing within one stack
    assert all(c < 0.1 for _, c in band_weights(model.calibration_weights(noise, 1.04)))
    # both in one stack: cubic for the large structures, linear for the fine noise
    model.calibration.clear()
    bands = band_weights(model.calibration_weights(smooth + 0.03 * noise, 1.04))  # measured: 0.96 and 0.00
    assert bands[-1][1] > 0.9 and bands[0][1] < 0.1


def test_detail_bands_sum_to_the_plane_and_the_weights_apply_band_by_band():
    rng = np.random.default_rng(2)
    d_model, d_cubic = (torch.from_numpy(rng.normal(size=(3, 40, 52)).astype(np.float32)) for _ in range(2))
    bands = band_split(d_model)
    assert len(bands) == len(BAND_SIGMAS) + 1
    torch.testing.assert_close(sum(bands), d_model, atol=1e-5, rtol=0)
    # white noise lives in the fine bands, a smooth ramp in the coarsest
    assert float((bands[0] ** 2).mean()) > 10 * float((bands[-1] ** 2).mean())
    ramp = torch.linspace(0, 1, 52).expand(3, 40, 52)  # no fine detail away from the (mirrored) edges
    assert float((band_split(ramp)[0][..., 8:-8, 8:-8] ** 2).mean()) < 1e-10
    weights = [(1.0, 0.0), (0.8, 0.1), (0.6, 0.3), (0.4, 0.4), (0.3, 0.5)]
    explicit = sum(a * m + c * k for (a, c), m, k in zip(weights, bands, band_split(d_cubic)))
    torch.testing.assert_close(weighted_departure(d_model, d_cubic, weights), explicit, atol=1e-5, rtol=0)
    # one pair for every band is the old whole-plane blend
    torch.testing.assert_close(weighted_departure(d_model, d_cubic, (0.25, 0.5)), 0.25 * d_model + 0.5 * d_cubic)
    assert zaugnet.describe_weights((0.25, 0.5)) == ("linear interpolation + 0.25 x (model - linear) + 0.50 x "
                                                    "(cubic - linear)")
    assert "1.00/0.80/0.60/0.40/0.30 x (model - linear)" in zaugnet.describe_weights(weights)


def test_best_weights_minimise_over_the_unit_square():
    rng = np.random.default_rng(1)
    grid = np.linspace(0, 1, 201)
    w = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    for _ in range(20):
        parts, target = rng.normal(size=(2, 50)), rng.normal(size=50)
        gram, rhs = parts @ parts.T, parts @ target
        best = np.array(zaugnet._best_weights(gram, rhs))
        assert ((best >= 0) & (best <= 1)).all()
        cost = lambda v: np.einsum("...i,ij,...j->...", v, gram, v) - 2 * v @ rhs  # noqa: E731
        assert cost(best) <= cost(w).min() + 1e-9


def test_calibrated_prediction_blends_model_cubic_and_linear(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    model.config.normalisation = {"low": 0.0, "high": 1.0}
    stack = np.asarray(small.data, np.float32)[:15] / small.data.max()
    z = small.z_coords()[:15]
    plane = np.full(stack.shape[1:], 0.3, np.float32)
    model._pairs = lambda planes, jobs: [plane for _ in jobs]
    model.calibration_weights = lambda x, spacing, pixel_size=None: (0.25, 0.5)
    kept, zk = stack[::2], z[::2]
    out = model.interpolate(kept, zk, z)
    linear = 0.5 * (kept[:-1] + kept[1:])
    cubic = interpolate_stack(kept, zk, z[1::2], "cubic")
    np.testing.assert_allclose(out[1::2], linear + 0.25 * (plane - linear) + 0.5 * (cubic - linear), atol=1e-5)
    model.calibrate = False
    np.testing.assert_allclose(model.interpolate(kept, zk, z)[1::2], np.broadcast_to(plane, linear.shape))


def test_a_collapsed_run_goes_back_to_its_best_generator_with_a_new_critic(small, tmp_path, monkeypatch):
    scores = iter([30.0, 10.0, 30.5, 30.5])  # validations after steps 1, 2, 3 (and the final one)
    monkeypatch.setattr(zaugnet.ZAugNetTask, "validate", lambda self: {"score": next(scores)})
    seen = {}
    restart = zaugnet.ZAugNetTask.restart_from

    def spy(self, weights):
        seen["critic"] = self.critic
        restart(self, weights)
        seen["same"] = all(bool((v == weights[k]).all()) for k, v in self.weights().items())
        seen["new_critic"] = self.critic is not seen["critic"]

    monkeypatch.setattr(zaugnet.ZAugNetTask, "restart_from", spy)
    with pytest.warns(UserWarning, match="collapsed"):
        out = zaugnet.fit([small], tmp_path / "m", TINY)
    assert seen == {"critic": seen["critic"], "same": True, "new_critic": True}
    assert json.loads((out / "config.json").read_text())["summary"]["restarts"] == 1


def _smoothed_moments(plane):
    from scipy import ndimage

    g = ndimage.gaussian_filter(np.asarray(plane, np.float64), 1.0)
    return np.array([g.size, g.sum(), (g * g).sum()])


def _pooled_ratio(new_planes, references):
    """Pooled variance of the smoothed new planes over that of their references (moment arrays)."""
    var = lambda m: m[2] / m[0] - (m[1] / m[0]) ** 2  # noqa: E731
    return var(sum(map(_smoothed_moments, new_planes))) / var(sum(references))


def test_variance_cap_is_the_largest_scale_within_twice_the_jackknife_error():
    rng = np.random.default_rng(3)
    for trial in range(6):
        acquired = rng.random((7, 24, 24))
        linear = [0.5 * (acquired[i] + acquired[i + 1]) for i in range(6)]
        departure = [rng.normal(0, 0.1 + 0.1 * trial, (24, 24)) for _ in range(6)]
        refs = [0.5 * (_smoothed_moments(acquired[i]) + _smoothed_moments(acquired[i + 1])) for i in range(6)]
        scale = zaugnet.variance_cap([(linear[i], departure[i], i, i + 1, 0.5) for i in range(6)], acquired)

        def ratio(s, keep=range(6)):
            return _pooled_ratio([linear[i] + s * departure[i] for i in keep], [refs[i] for i in keep])

        left_out = np.array([ratio(1.0, [j for j in range(6) if j != i]) for i in range(6)])
        bound = 1 + 2 * np.sqrt(5 / 6 * np.sum((left_out - left_out.mean()) ** 2))
        assert 0 <= scale <= 1
        if scale < 1:  # the largest scale that keeps within the bound
            assert ratio(scale) == pytest.approx(bound, rel=1e-6) and ratio(min(1.0, scale + 1e-3)) > bound
        else:
            assert ratio(1.0) <= bound + 1e-9
        assert trial < 3 or scale < 1  # larger departures than the planes' own variation are cut


def test_a_blank_channel_is_interpolated_not_refused(small, tmp_path):
    # constant acquired planes give the variance cap nothing to compare with (it was 0 / 0: every plane NaN)
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    assert zaugnet.variance_cap([(np.zeros((8, 8)), np.full((8, 8), 0.1) + np.eye(8), i, i + 1, 0.5)
                                 for i in range(3)], np.zeros((4, 8, 8))) == 0.0
    data = np.stack([small.data, np.zeros_like(small.data)])  # nuclei, and a channel that recorded nothing
    two = Volume(data, small.voxel_size, small.unit, axes="CZYX")
    out = upsample_z(two, model, factor=2)
    assert out.data.shape[1] == 2 * small.nz - 1 and not out.data[1].any()
    assert out.data[0].any()


def test_tiles_narrower_than_twice_their_overlap_are_refused(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    _, config = load_config(zaugnet.ZAugNetConfig, out, "ZAugNet")
    tensors = load_file(str(out / "model.safetensors"))
    with pytest.raises(InputError, match=r"tile side \(64\) must be more than twice the overlap \(32\)"):
        zaugnet.ZAugNetModel(config, tensors, torch.device("cpu"), tile=64, overlap=32)


def test_variance_cap_scales_an_over_correcting_model_back(small, tmp_path):
    from scipy import ndimage

    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    model.config.normalisation = {"low": 0.0, "high": 1.0}
    rng = np.random.default_rng(0)
    stack = ndimage.gaussian_filter(rng.random((9, 40, 40)), (0, 2, 2)).astype(np.float32)  # planes alike in z
    z, z_out = np.arange(9.0), np.arange(0, 8.25, 0.5)
    model.calibration_weights = lambda x, spacing, pixel_size=None: (1.0, 0.0)

    def contrast(k):  # a stand-in network: linear interpolation with its contrast multiplied by 1 + k
        def pairs(planes, jobs):
            lin = [0.5 * (planes[a] + planes[b]) for a, b, _ in jobs]
            return [m + k * (m - m.mean()) for m in lin]
        return pairs

    model._pairs = contrast(1.0)  # new planes twice as contrasted as linear interpolation's
    out = model.interpolate(stack, z, z_out)
    scale = model.calibration_scale[1.0]
    assert 0 < scale < 0.8 and model.calibration[1.0] == pytest.approx((scale, 0.0))
    linear = 0.5 * (stack[:-1] + stack[1:])
    np.testing.assert_allclose(out[1::2], linear + scale * (linear - linear.mean(axis=(1, 2), keepdims=True)),
                               atol=1e-5)
    refs = [0.5 * (_smoothed_moments(stack[i]) + _smoothed_moments(stack[i + 1])) for i in range(8)]
    assert _pooled_ratio(linear, refs) < _pooled_ratio(out[1::2], refs) < 1.3 < _pooled_ratio(
        2 * linear - linear.mean(axis=(1, 2), keepdims=True), refs)
    # a model that adds less contrast than the acquired planes have keeps its weights; so does one without the cap
    model._pairs = contrast(0.02)
    model.interpolate(stack, z, z_out)
    assert model.calibration == {1.0: (1.0, 0.0)} and model.calibration_scale == {1.0: 1.0}
    model._pairs, model.cap_variance = contrast(1.0), False
    out = model.interpolate(stack, z, z_out)
    assert model.calibration_scale == {}
    np.testing.assert_allclose(out[1::2], 2 * linear - linear.mean(axis=(1, 2), keepdims=True), atol=1e-5)


def test_transfer_interpolation_is_exact_for_quadratic_profiles_on_any_spacing():
    z = np.array([0.0, 0.7, 1.1, 2.4, 3.0, 4.5])
    planes = (2 * z ** 2 - z + 1)[:, None, None] * np.ones((1, 3, 2))
    z_out = np.array([0.1, 0.35, 0.9, 1.8, 2.4, 2.9, 4.2, 4.5])
    out = zaugnet.transfer_interpolate(planes, planes[1:-1], z, z_out)
    np.testing.assert_allclose(out[:, 1, 1], 2 * z_out ** 2 - z_out + 1, rtol=1e-5, atol=1e-5)
    # an estimate that differs from the measured plane counts for half of it
    est = planes[1:-1] + 1.0
    shifted = zaugnet.transfer_interpolate(planes, est, z, np.array([1.1]))
    assert shifted[0, 0, 0] == pytest.approx(planes[2, 0, 0] + 0.5, abs=1e-4)
    with pytest.raises(InputError, match="at least 3 planes"):
        zaugnet.transfer_interpolate(planes[:2], planes[:0], z[:2], z_out[:1])


def test_transfer_mode_runs_the_model_at_its_training_gap_only(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    model.config.normalisation = {"low": 0.0, "high": 1.0}
    _, ny, nx = small.data.shape
    y = np.linspace(0, 1, ny, dtype=np.float32)[None, :, None]
    z = small.z_coords()[:15]
    profile = lambda zz: (0.1 + 0.8 * (zz / 4.0) ** 2)[:, None, None]  # noqa: E731
    stack = (profile(z[::2]) * (0.5 + 0.5 * y) * np.ones((1, 1, nx))).astype(np.float32)
    jobs_seen = []

    def truth_at_middle(planes, jobs):  # a perfect model of the planes between its inputs
        jobs_seen.extend(jobs)
        return [planes[(a + b) // 2] for a, b, _ in jobs]

    model._pairs = truth_at_middle
    model.mode = "transfer"
    out = model.interpolate(stack, z[::2], z)
    assert [(a, b) for a, b, _ in jobs_seen] == [(i - 1, i + 1) for i in range(1, len(stack) - 1)]
    np.testing.assert_array_equal(out[::2], stack)  # acquired planes as measured
    truth = (profile(z) * (0.5 + 0.5 * y) * np.ones((1, 1, nx))).astype(np.float32)
    linear = 0.5 * (stack[:-1] + stack[1:])
    err_transfer, err_linear = np.abs(out[1::2] - truth[1::2]).max(), np.abs(linear - truth[1::2]).max()
    assert err_transfer < 1e-5 < err_linear  # the z profile is quadratic: its curvature is carried exactly
    assert model.calibration == {}
    del model._pairs  # the network again
    with pytest.warns(ZaugWarning, match="which 2 planes do not have: they were interpolated in direct mode"):
        model.interpolate(stack[:2], z[:3:2], z[:3])  # was: said to be transfer, silently direct
    with pytest.raises(InputError, match="unknown ZAugNet mode"):
        model.mode = "sideways"
        model.interpolate(stack, z[::2], z)


def test_transfer_mode_of_plain_zaugnet_carries_its_midpoints_to_non_uniform_planes(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    assert not model.plus
    model.config.normalisation = {"low": 0.0, "high": 1.0}
    z = np.array([0.0, 0.5, 1.6, 2.0, 3.1, 4.0])
    z_out = np.array([0.25, 1.0, 1.8, 2.5, 3.5])
    quad = lambda zz: 0.1 + 0.05 * np.asarray(zz) ** 2  # noqa: E731  z profile, values within [0, 1]
    stack = (quad(z)[:, None, None] * np.ones((1, 8, 8))).astype(np.float32)

    def midpoint_model(planes, jobs):  # plain ZAugNet: the plane half-way between its inputs, whatever t
        return [np.full(planes.shape[1:], quad(0.5 * (z[a] + z[b])), np.float32) for a, b, _ in jobs]

    model._pairs = midpoint_model
    model.mode = "transfer"
    out = model.interpolate(stack, z, z_out)
    np.testing.assert_allclose(out[:, 0, 0], quad(z_out), atol=1e-5)  # exact for a quadratic profile
    # the midpoint taken as the plane itself (t ignored) misses: the correction is not a no-op here
    x = stack
    est = np.stack(midpoint_model(x, [(i - 1, i + 1, 0.5) for i in range(1, len(z) - 1)]))
    naive = zaugnet.transfer_interpolate(x, est, z, z_out)
    assert np.abs(naive[:, 0, 0] - quad(z_out)).max() > 1e-3


def test_transfer_mode_adds_back_what_was_clipped_at_the_midpoint_plain_zaugnet_predicts(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    model.config.normalisation = {"low": 0.0, "high": 1.0}
    z = np.array([0.0, 0.2, 0.6, 0.8, 1.4, 1.6])  # uneven: the midpoints are carried to other positions
    z_out = np.linspace(0.1, 1.5, 8)
    ramp = lambda zz: 0.3 + 0.6 * np.asarray(zz)  # noqa: E731  beyond the training range above z = 1.17
    stack = (ramp(z)[:, None, None] * np.ones((1, 8, 8))).astype(np.float32)

    def midpoint_model(planes, jobs):  # a perfect plain ZAugNet sees its inputs clipped to the training range
        return [0.5 * (np.clip(planes[a], 0, 1) + np.clip(planes[b], 0, 1)) for a, b, _ in jobs]

    model._pairs = midpoint_model
    model.mode = "transfer"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZaugWarning)  # beyond the training range: said, and not cut off
        out = model.interpolate(stack, z, z_out)
    np.testing.assert_allclose(out[:, 0, 0], ramp(z_out), atol=1e-5)


@pytest.mark.slow  # (suite time) the transfer mode: evaluation, tiles and napari tests in the default suite
def test_cli_predict_transfer_mode(run_cli, small, tmp_path):
    src = tmp_path / "s.tif"
    write_volume(small, src)
    assert run_cli("train", src, "--method", "zaugnet", "--steps", "2", "-o", tmp_path / "m").returncode == 0
    proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "t.tif", "--factor", "2", "--z-mode", "transfer")
    assert proc.returncode == 0, proc.stderr
    assert "calibration" not in proc.stdout and "self-check measured the former only" not in proc.stderr
    out = read_volume(tmp_path / "t.tif")
    assert out.nz == 31 and out.dtype == np.uint16
    np.testing.assert_array_equal(out.data[::2], small.data)
    proc = run_cli("predict", "linear", src, "-o", tmp_path / "l.tif", "--factor", "2", "--z-mode", "transfer")
    assert proc.returncode != 0 and "ZAugNet option" in proc.stderr and "Traceback" not in proc.stderr
    import zaug.methods.zaugnet as module

    with pytest.MonkeyPatch.context() as patch:  # the variance cap scales every pass's weights by a half
        patch.setattr(module, "variance_cap", lambda *args, **kwargs: 0.5)
        proc = run_cli("predict", tmp_path / "m", src, "-o", tmp_path / "x4.tif", "--factor", "4", "--no-tta")
    said = {line.split()[3]: line for line in proc.stdout.splitlines()  # "calibration: between planes S um ..."
            if line.startswith("calibration: between planes")}
    # planes 0.29 apart: lateral triplets 2 pixels (0.52 um) apart fit; 0.145: none (was told by the weights alone,
    # so weights the variance cap had scaled read as fitted)
    assert "as fitted on lateral triplets" in said["0.29"] and "the model alone" in said["0.145"], said
    assert all("scaled by 0.50" in line for line in said.values())


def test_evaluation_scores_the_transfer_mode_of_the_same_model(small):
    result = evaluate_drop_slice(small, 2, ["linear", "zaugnet"], train_options=TINY)
    assert {"zaugnet", "zaugnet:transfer"} <= set(result["methods"])
    assert result["methods"]["zaugnet:transfer"]["mode"] == "transfer"
    assert "zaugnet:transfer" in result["gains"]
    assert "--z-mode transfer" in format_table(result)
    assert result["methods"]["zaugnet"]["psnr"] != result["methods"]["zaugnet:transfer"]["psnr"]
    # the training's self-check travels with the results (zaug evaluate --json)
    sc = result["methods"]["zaugnet"]["self_check"]
    best = max(sc["linear"]["psnr"], sc["cubic"]["psnr"])
    assert sc["planes"] > 0 and sc["gain_db"] == pytest.approx(sc["model"]["psnr"] - best)
    assert json.loads(json.dumps(sc)) == sc


def test_auto_mode_transfers_when_the_self_check_gains_more_than_denoising_can(small, tmp_path):
    model = zaugnet.load(zaugnet.fit([small], tmp_path / "m", TINY))
    model.mode = "auto"
    bound = 10 * np.log10(1.5)
    for gain, expected in ((bound + 0.1, "transfer"), (bound - 0.1, "direct"), (-2.0, "direct")):
        model.config.self_check = {"model": {"psnr": 30.0 + gain}, "linear": {"psnr": 30.0}}
        assert model.resolved_mode() == expected
        assert f"{gain:+.2f} dB" in model.mode_reason()
    model.config.self_check = {}
    assert model.resolved_mode() == "direct" and "no self-check" in model.mode_reason()
    model.config.self_check = {"model": {"psnr": 40.0}, "linear": {"psnr": 30.0}}
    model.mode = "direct"
    assert model.resolved_mode() == "direct"


def test_a_folder_another_training_holds_is_refused(small, tmp_path):
    from zaug.methods._common import _folder_lock

    with _folder_lock(tmp_path / "m"):  # as a run in another thread (napari) or process holds it
        with pytest.raises(OutputError, match="another training is writing into"):
            zaugnet.fit([small], tmp_path / "m", TINY)
    out = zaugnet.fit([small], tmp_path / "m", TINY)  # free again
    assert (out / "config.json").exists()


def test_resume_refuses_other_stacks_of_the_same_shape_and_cleans_killed_writes(small, tmp_path):
    model = tmp_path / "m"
    zaugnet.fit([small], model, TINY)
    (model / "config.json").unlink()  # an unfinished run of `small`
    (model / ".zaug-partial-123-checkpoint").mkdir()  # a checkpoint write killed half-way
    other = small.replace(data=np.ascontiguousarray(small.data[::-1]))
    with pytest.raises(OutputError, match=r"other settings \(the stacks\)"):
        zaugnet.fit([other], model, TINY)
    with pytest.raises(OutputError, match="other settings"):
        zaugnet.fit([small.replace(voxel_size=(1.0, 0.26, 0.26))], model, TINY)
    with pytest.raises(OutputError, match=r"other settings \(seed, the budget \(--steps / --minutes\)\)"):
        zaugnet.fit([small], model, dict(TINY, seed=3, steps=TINY["steps"] + 1))
    zaugnet.fit([small], model, TINY)  # the same stack: resumed and finished
    assert not (model / ".zaug-partial-123-checkpoint").exists() and (model / "config.json").exists()


def test_damaged_or_foreign_model_files_get_one_sentence(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    config = json.loads((out / "config.json").read_text())
    newer = dict(config, zaug_version="9.0.0")
    assert newer_hint("0.9.0rc1") and newer_hint("0.1.0") == ""  # a pre-release of a later version is later
    (out / "config.json").write_text(json.dumps(newer))
    with pytest.warns(ZaugWarning, match="written by zaug 9.0.0, newer than this zaug"):
        zaugnet.load(out)
    (out / "config.json").write_text(json.dumps(dict(newer, new_field=1)))
    with pytest.raises(InputError, match=r"not a valid ZAugNet configuration \(new_field: not a setting this zaug "
                                         r"knows; it was written by zaug 9.0.0"):
        zaugnet.load(out)
    (out / "config.json").write_text(json.dumps(dict(config, net=dict(config["net"], widths=[8, 8, 8]))))
    with pytest.raises(InputError, match="do not fit the network") as err:
        zaugnet.load(out)
    assert "\n" not in str(err.value)
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(InputError, match="cannot be read"):
        zaugnet.load(out)


def test_edited_or_newer_configurations_are_refused_naming_the_setting(small, tmp_path, run_cli):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    config = json.loads((out / "config.json").read_text())
    cases = [  # (what is written into config.json, what the one sentence must say)
        (dict(config, normalisation={}), r"normalisation: .*high above low"),
        (dict(config, normalisation={"low": 5.0, "high": 5.0}), r"normalisation: .*high above low"),
        (dict(config, train_plane_spacing=0), r"train_plane_spacing: .*positive"),
        ({k: v for k, v in config.items() if k != "normalisation"}, r"\(normalisation: missing\)"),
        (dict(config, net=dict(config["net"], foo=1)), r"networks this zaug cannot build \(TypeError"),
        (dict(config, zaug_version="9.0.0", net=dict(config["net"], foo=1)), r"cannot build .*upgrade zaug"),
        (dict(config, zaug_version="banana"), r"\(zaug_version: 'banana' is not a zaug version such as \d"),
    ]
    for written, said in cases:
        (out / "config.json").write_text(json.dumps(written))
        with pytest.raises(InputError, match=said):
            zaugnet.load(out)
    write_volume(small, tmp_path / "small.tif")
    for written, said in [([1, 2], "names no method"), (dict(config, method=["zaugnet"]), "names no method"),
                          (dict(config, method="zaugnet3", zaug_version="9.0.0"), "zaugnet3.*upgrade zaug")]:
        (out / "config.json").write_text(json.dumps(written))
        proc = run_cli("predict", out, tmp_path / "small.tif", "-o", tmp_path / "o.tif", "--factor", "2")
        assert proc.returncode == 2 and re.search(said, proc.stderr) and "unexpected" not in proc.stderr
    (out / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "zaug_version"}))
    with pytest.warns(ZaugWarning, match="does not say which zaug wrote it"):
        zaugnet.load(out)


def test_a_kill_between_the_renames_of_a_checkpoint_write_resumes_from_it(small, tmp_path):
    model = tmp_path / "m"
    zaugnet.fit([small], model, dict(TINY, steps=4, checkpoint_every_s=0.0))
    (model / "config.json").unlink()  # an unfinished run whose checkpoint write was cut between its renames
    (model / "model.safetensors").unlink()
    step = json.loads((model / "checkpoint" / "state.json").read_text())["loop"]["step"]
    os.replace(model / "checkpoint", model / ".zaug-partial-77-1a2b3c4d-checkpoint")  # the new one, complete
    (model / ".zaug-old-77-1a2b3c4d-checkpoint").mkdir()  # the one set aside
    out = zaugnet.fit([small], model, dict(TINY, steps=4))
    summary = json.loads((out / "config.json").read_text())["summary"]
    assert step == 4 and summary["resumed"] is True and summary["steps"] == 4
    assert not list(model.glob(".zaug-*-checkpoint"))


def test_a_damaged_checkpoint_state_and_a_run_started_by_another_version_are_said(small, tmp_path):
    model = tmp_path / "m"
    zaugnet.fit([small], model, dict(TINY, checkpoint_every_s=0.0))
    (model / "config.json").unlink()
    run = json.loads((model / "run.json").read_text())
    assert run["zaug_version"]  # the version that started the run
    (model / "run.json").write_text(json.dumps(dict(run, zaug_version="0.0.1")))
    state = json.loads((model / "checkpoint" / "state.json").read_text())
    (model / "checkpoint" / "state.json").write_text(json.dumps({k: v for k, v in state.items() if k != "loop"}))
    with pytest.warns(ZaugWarning, match="started by zaug 0.0.1"):
        with pytest.raises(InputError, match="checkpoint in .* is damaged .*--overwrite"):
            zaugnet.fit([small], model, TINY)


def test_zaug_info_on_a_model_folder_says_what_it_holds(small, tmp_path, run_cli):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    proc = run_cli("info", out)
    assert proc.returncode == 0, proc.stderr
    assert "zaugnet (fast preset) model, zaug" in proc.stdout and "3 steps" in proc.stdout
    assert "self-check" in proc.stdout and "checkpoint/" in proc.stdout
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["finished"] and info["train_voxel_size"] == pytest.approx(list(small.voxel_size))
    (out / "config.json").unlink()
    proc = run_cli("info", out)
    assert "an unfinished zaugnet (fast preset) run" in proc.stdout and "at step 3" in proc.stdout


def test_a_model_below_interpolation_on_its_self_check_is_said_so_by_info_and_predict(small, tmp_path, run_cli):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    write_volume(small, tmp_path / "small.tif")
    config = json.loads((out / "config.json").read_text())
    for gain, said in ((-0.5, True), (0.5, False)):
        (out / "config.json").write_text(json.dumps(dict(config, self_check=dict(config["self_check"],
                                                                                   gain_db=gain))))
        info = run_cli("info", out).stdout
        proc = run_cli("predict", out, tmp_path / "small.tif", "-o", tmp_path / f"o{gain}.tif", "--factor", "2")
        assert proc.returncode == 0, proc.stderr
        assert ("0.50 dB below interpolation" in info) == said
        assert ("warning: Its self-check scored this model 0.50 dB below interpolation" in proc.stderr) == said


def test_zaug_info_on_an_unfinished_run_gives_the_command_that_resumes_it(small, tmp_path, run_cli):
    write_volume(small, tmp_path / "day 1.tif")
    proc = run_cli("train", "day 1.tif", "--method", "zaugnet", "--steps", "2", "--seed", "5", "--checkpoint-every",
                   "0.001", "--crop", ":,:40,:", "-o", "m", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "m" / "config.json").unlink()  # as a run killed after its last checkpoint
    (tmp_path / "m" / "model.safetensors").unlink()
    said = run_cli("info", "m", cwd=tmp_path).stdout
    assert "at step 2 of 2 (checkpoint" in said
    command = said.splitlines()[1].strip()
    assert command == (f"zaug train --method zaugnet --preset fast --steps 2 --seed 5 --crop :,:40,: -o m "
                       f"{shlex.quote(str(tmp_path / 'day 1.tif'))}")  # the stack wherever the command runs
    other = run_cli(*shlex.split(command.replace("--seed 5", "--seed 6"))[1:], cwd=tmp_path)
    assert other.returncode != 0 and "other settings (seed); " in other.stderr and "'zaug info m' gives" in other.stderr
    proc = run_cli(*shlex.split(command)[1:], cwd=tmp_path)  # the command as given: it resumes, not refused
    assert proc.returncode == 0, proc.stderr
    from zaug.methods import resume_command  # the options of reading and of the restoration methods come back

    run = {"method": "selfnet", "preset": "fast", "seed": 0, "budget": {"steps": 2}, "factor": 3.0, "sigma": 0.81,
           "sigma_auto": True, "renoise": True, "init": "/my models/a", "data": [
               {"file": "a.tif", "path": "/d/my a.tif", "read_with": "--axes ZXY --voxel-size 1.0 0.25 0.25"}]}
    assert resume_command(tmp_path / "m", run).endswith(
        "--factor 3.0 --init '/my models/a' --sigma auto --renoise --axes ZXY --voxel-size 1.0 0.25 0.25 -o "
        f"{shlex.quote(str(tmp_path / 'm'))} '/d/my a.tif'")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["summary"]["resumed"] is True
    assert "training stack: day 1.tif, planes 0:16, rows 0:40, columns 0:56 (--crop): 16x40x56" in \
        run_cli("info", "m", cwd=tmp_path).stdout


def test_a_stack_of_another_range_trains_on_its_own_scaling_not_as_a_blank(small, tmp_path):
    eight_bit = small.replace(data=(np.asarray(small.data, np.float32) / 256).astype(np.uint8))
    with pytest.warns(ZaugWarning, match="intensities of training stack 2 .* scaled by its own percentiles"):
        out = zaugnet.fit([small, eight_bit], tmp_path / "m", TINY)
    # the scaling stored for prediction is the 16-bit stack's alone (was: pulled down by the 8-bit one's)
    stored = json.loads((out / "config.json").read_text())["normalisation"]
    assert (stored["low"], stored["high"]) == pytest.approx(zaugnet._normalisation([np.asarray(small.data,
                                                                                               np.float32)]))
    # zaug info names both stacks, not the first one's voxel size alone
    assert ("2 training stacks (the voxel size above is the first's): cells3d_nuclei_crop.tif, 16x48x56 uint16 at "
            "0.29 x 0.26 x 0.26 um; cells3d_nuclei_crop.tif, 16x48x56 uint8 at 0.29 x 0.26 x 0.26 um"
            ) in format_model_info(describe_model(out))


def test_a_blank_channel_is_named_and_left_out_of_training(small, tmp_path):
    data = np.stack([np.asarray(small.data), np.zeros_like(small.data)])
    two = small.replace(data=data, axes="CZYX")
    with pytest.warns(ZaugWarning, match="^channel 1 is blank .* not trained on"):
        out = zaugnet.fit([two], tmp_path / "m", TINY)
    assert list(json.loads((out / "config.json").read_text())["validation_planes"]) == ["0"]  # one stack
    with pytest.raises(InputError, match="every channel and time point .* is blank"):
        zaugnet.fit([small.replace(data=np.stack([np.zeros_like(small.data), np.ones_like(small.data)]),
                                   axes="CZYX")], tmp_path / "m2", TINY)


def test_too_few_planes_for_training_name_the_number_that_works():
    with pytest.raises(InputError, match="at least 8 are needed"):
        split_validation(7)
    train, val = split_validation(8)
    assert triplet_indices(8, 2, planes=train) == [(5, 6, 7)]
    with pytest.raises(InputError, match="at least 10 are needed"):
        split_validation(9, min_planes=5)  # ZAugNet+ holds out 5
    train, _ = split_validation(10, min_planes=5)
    assert triplet_indices(10, 2, all_positions=True, planes=train) == [(7, 8, 9)]


def test_self_check_says_when_the_gain_is_noise_removal_and_when_it_rests_on_too_few_planes():
    score = lambda psnr, sharp: {"psnr": psnr, "ssim": 0.5, "sharpness": sharp}  # noqa: E731
    sc = {"planes": 1, "model": score(30.0, 0.45), "linear": score(28.9, 0.8), "cubic": score(28.7, 0.9),
          "gain_db": 1.13, "gain_over_smoothing_db": -0.12}
    line = zaugnet.format_self_check(sc)
    assert "No better than interpolation followed by smoothing" in line and "Only 1 held-out plane: too few" in line
    sc.update(planes=5, gain_over_smoothing_db=0.3)
    line = zaugnet.format_self_check(sc)
    assert "No better" not in line and "too few" not in line and "5 held-out planes of your stack:" in line


def test_training_stacks_of_different_z_spacings_are_said_to_be_learnt_as_one(small, tmp_path):
    coarse = small.replace(voxel_size=(0.5,) + small.voxel_size[1:])
    with pytest.warns(ZaugWarning, match=r"z spacings differ \(0.29 to 0.5 um\).* their mean \(0.395 um\)"):
        zaugnet.fit([small, coarse], tmp_path / "m", dict(TINY, check_only=True))  # was: silently
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        zaugnet.fit([small, small.replace(voxel_size=(0.3,) + small.voxel_size[1:])], tmp_path / "m",
                    dict(TINY, check_only=True))


def test_hostile_or_damaged_model_files_are_refused_before_they_cost_memory(small, tmp_path, run_cli):
    import shutil
    import zipfile

    out = zaugnet.fit([small], tmp_path / "m", dict(TINY, checkpoint_every_s=0.0))
    config = json.loads((out / "config.json").read_text())
    wide = tmp_path / "wide"
    shutil.copytree(out, wide)  # a network of 500,000 channels described beside weights of 32: never built
    (wide / "config.json").write_text(json.dumps(dict(config, net=dict(config["net"], widths=[500000, 48, 32]))))
    with pytest.raises(InputError, match=r"do not fit the network .*\(32, 2, 3, 3\) stored, \(250000, 2, 3, 3\)"):
        zaugnet.load(wide)
    (wide / "config.json").write_text(json.dumps(dict(config, net=dict(config["net"], widths=[-3, 48, 32]))))
    with pytest.raises(InputError, match="describes networks this zaug cannot build"):
        zaugnet.load(wide)
    if hasattr(os, "mkfifo"):  # a pipe or a device in place of a file would block or never end
        (wide / "config.json").write_text(json.dumps(config))
        (wide / "model.safetensors").unlink()
        (wide / "model.safetensors").symlink_to("/dev/zero")
        with pytest.raises(InputError, match="model.safetensors is not a regular file"):
            zaugnet.load(wide)
    # a checkpoint whose loop state no run saves (a negative step trained on for ever)
    (out / "config.json").unlink()
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    state["loop"]["step"] = -1000000000
    (out / "checkpoint" / "state.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match=r"checkpoint in .* is damaged \(ValueError: step -1000000000 is not a count"):
        zaugnet.fit([small], out, dict(TINY, checkpoint_every_s=0.0))
    (out / "checkpoint" / "state.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError, match="state.json nests too deeply"):
        zaugnet.fit([small], out, dict(TINY, checkpoint_every_s=0.0))
    # a package whose description expands (YAML aliases) or inflates far beyond any model's
    aliases = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\nname: *b\n"
    for name, entry, said in (("aliases.zip", aliases, "uses YAML aliases"),
                              ("inflated.zip", "name: x\n" + " " * 2_000_000, "holds 2,000,008 bytes")):
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_DEFLATED) as package:
            package.writestr("rdf.yaml", entry)
        proc = run_cli("info", tmp_path / name)
        assert proc.returncode == 2 and said in proc.stderr and len(proc.stdout) < 1000, proc.stderr


def test_links_in_a_model_folder_are_neither_counted_nor_followed_when_it_is_cleaned(small, tmp_path):
    out = zaugnet.fit([small], tmp_path / "m", TINY)
    if not hasattr(os, "symlink"):
        pytest.skip("no symbolic links here")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.bin").write_bytes(b"\0" * 3_000_000)
    import shutil

    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    (out / "checkpoint").symlink_to(elsewhere, target_is_directory=True)
    assert describe_model(out)["sizes_mb"]["checkpoint"] == 0.0  # not 3 MB "that may be deleted"
    (out / "config.json").unlink()  # an unfinished run, with a link left by a write killed half-way
    (out / "checkpoint").unlink()
    (out / ".zaug-old-1-2-checkpoint").symlink_to(elsewhere, target_is_directory=True)
    zaugnet.fit([small], out, TINY)
    assert not (out / ".zaug-old-1-2-checkpoint").exists() and (elsewhere / "big.bin").exists()


@pytest.mark.parametrize("unit, scale", [("m", 1e-6), ("um", 1.0), ("nm", 1e3)])
def test_training_spacings_are_compared_in_any_unit(unit, scale):
    """Spacings were rounded to 6 decimals: 0.2 and 0.4 um in metres were both 0 (no warning), 0.45 and 0.55 um
    were 0 and 1e-06 (a warning)."""
    from zaug.methods.zaugnet import _warn_if_spacings_differ

    with pytest.warns(ZaugWarning, match="z spacings differ"):
        _warn_if_spacings_differ([np.arange(5) * 0.2 * scale, np.arange(5) * 0.4 * scale], unit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_spacings_differ([np.arange(5) * 0.45 * scale, np.arange(5) * 0.55 * scale], unit)
