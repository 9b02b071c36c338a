import json
import os

import numpy as np
import pytest
from scipy import ndimage

from zaug import InputError, Volume
from zaug.evaluate import drop_slice_split, evaluate_drop_slice, format_table, gains, smooth_oracle
from zaug.io import read_volume
from zaug.metrics import psnr
from zaug.report import write_drop_slice_report
from zaug.sample import load_sample

from .conftest import shared

# ../shared/data/README.md, PSNR of classical interpolation (drop-slice)
REFERENCE = {2: {"linear": 30.18, "cubic": 29.62}, 4: {"linear": 28.79, "cubic": 28.42}}


def test_split_follows_the_stated_convention():
    used, kept, removed = drop_slice_split(60, 2)
    assert used == 59 and kept.tolist() == list(range(0, 59, 2)) and removed.tolist() == list(range(1, 58, 2))
    used, kept, removed = drop_slice_split(60, 4)
    assert used == 57 and len(kept) == 15 and len(removed) == 42
    with pytest.raises(InputError):
        drop_slice_split(60, 1)
    with pytest.raises(InputError):
        drop_slice_split(3, 4)


@pytest.mark.parametrize("factor", [2, 4])
def test_cells3d_classical_psnr_matches_reference(factor):
    vol = read_volume(shared("cells3d_nuclei.tif"))
    result = evaluate_drop_slice(vol, factor, ["linear", "cubic"])
    for method, ref in REFERENCE[factor].items():
        assert result["methods"][method]["psnr"] == pytest.approx(ref, abs=0.05)


def test_sample_evaluation_scores_all_methods_and_the_oracle_beats_linear():
    result = evaluate_drop_slice(load_sample(), 2, ["linear", "cubic", "linear+smooth"])
    m = result["methods"]
    assert set(m) == {"linear", "cubic", "linear+smooth"}
    # the sample is noisy confocal data: smoothing alone buys PSNR
    assert m["linear+smooth"]["sigma"] > 0
    assert m["linear+smooth"]["psnr"] > m["linear"]["psnr"]
    assert m["linear+smooth"]["sharpness"] < m["linear"]["sharpness"]
    for r in m.values():
        assert set(r["cf_psnr"]) == {"low", "mid", "high"}
        assert len(r["psnr_per_plane"]) == 29


def _noisy_synthetic():
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.random((21, 48, 48)), (2, 2, 2))
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    return clean + rng.normal(0, 0.08, clean.shape)


def test_oracle_picks_positive_sigma_on_noise_and_beats_linear():
    noisy = _noisy_synthetic().astype(np.float32)
    result = evaluate_drop_slice(Volume(noisy, (1, 1, 1)), 2, ["linear", "linear+smooth"])
    assert result["methods"]["linear+smooth"]["sigma"] > 0.3
    assert result["methods"]["linear+smooth"]["psnr"] > result["methods"]["linear"]["psnr"] + 0.5


def test_a_method_that_only_blurs_does_not_beat_the_oracle():
    rng = np.random.default_rng(1)
    truth = np.clip(_noisy_synthetic()[1::2], 0, 1)
    linear = np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1)
    oracle, sigma = smooth_oracle(linear, truth)
    for s in (0.5, 1.0, 1.5, 2.5):
        blurred = ndimage.gaussian_filter(linear, (0, s, s))
        assert psnr(blurred, truth) <= psnr(oracle, truth) + 1e-6


def test_gains_name_the_best_baselines():
    results = {"linear": {"psnr": 30.0, "sharpness": 1}, "cubic": {"psnr": 29.0, "sharpness": 1},
               "linear+smooth": {"psnr": 31.0, "sharpness": 0.8}, "zaugnet": {"psnr": 30.6, "sharpness": 0.9}}
    g = gains(results)["zaugnet"]
    assert g["best_classical"] == "linear" and g["gain_db"] == pytest.approx(0.6)
    assert g["best_baseline"] == "linear+smooth" and g["gain_over_baselines_db"] == pytest.approx(-0.4)


def test_report_writes_markdown_json_and_figures(tmp_path):
    result = evaluate_drop_slice(load_sample(), 4, ["linear", "cubic"], keep_predictions=True)
    report = write_drop_slice_report(result, tmp_path / "rep")
    text = report.read_text()
    assert "first (N-1)//k*k+1 planes" in text and "| cubic |" in text
    assert (tmp_path / "rep" / "orthoviews.png").stat().st_size > 10_000
    assert (tmp_path / "rep" / "cf_psnr_sweep.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert data["factor"] == 4 and "arrays" not in data
    # from Python as from the command line: an earlier report (or a user's report.md) is not replaced
    from zaug import OutputError

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.md").write_text("my lab notes")
    with pytest.raises(OutputError, match="already holds report.md"):
        write_drop_slice_report(result, tmp_path / "rep")
    for overwrite in (False, True):  # the user's own report.md, not an earlier report: not even with --overwrite
        with pytest.raises(OutputError, match="holds a report.md that zaug did not write"):
            write_drop_slice_report(result, tmp_path / "notes", overwrite=overwrite)
    assert (tmp_path / "notes" / "report.md").read_text() == "my lab notes"
    assert not (tmp_path / "notes" / "results.json").exists()
    assert write_drop_slice_report(result, tmp_path / "rep", overwrite=True) == report


def test_verdict_does_not_call_low_band_losses_structure():
    from zaug.evaluate import verdict

    cf = lambda low: {"low": low, "mid": 30.0, "high": 25.0}  # noqa: E731
    results = {"linear": {"psnr": 30.0, "sharpness": 1, "cf_psnr": cf(46.5)},
               "cubic": {"psnr": 29.6, "sharpness": 1, "cf_psnr": cf(48.0)},
               "linear+smooth": {"psnr": 30.7, "sharpness": 0.8, "cf_psnr": cf(46.4)},
               "zaugnet": {"psnr": 31.0, "sharpness": 0.8, "cf_psnr": cf(46.2)}}
    g = gains(results)["zaugnet"]
    assert g["best_low_band"] == "cubic" and g["low_band_gain_db"] == pytest.approx(-1.8)
    assert "noise removal" in verdict("zaugnet", g)
    results["zaugnet"]["cf_psnr"] = cf(48.5)
    assert "recovers structure" in verdict("zaugnet", gains(results)["zaugnet"])


def test_uneven_planes_are_interpolated_at_their_positions_and_the_report_says_so(tmp_path):
    # intensity linear in the physical z position: exact for linear interpolation only if it uses the positions
    z = np.cumsum([0.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0])
    data = np.broadcast_to((z / z.max())[:, None, None], (len(z), 16, 16)).astype(np.float32)
    uneven = evaluate_drop_slice(Volume(data.copy(), (2, 1, 1), "um", z_positions=z), 2, ["linear"])
    assert uneven["methods"]["linear"]["rmse"] < 1e-6
    assert any("uneven (gaps 1 to 3 um, mean 2)" in c for c in uneven["conventions"])
    report = write_drop_slice_report(uneven, tmp_path).read_text()
    assert "z positions are uneven" in report
    # linear is exact here (PSNR infinite): results.json says null, strict JSON, not Python's Infinity
    assert uneven["methods"]["linear"]["psnr"] == np.inf

    def refuse(constant):
        raise ValueError(constant)

    saved = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert saved["methods"]["linear"]["psnr"] is None and saved["methods"]["linear"]["ssim"] == 1.0
    even = evaluate_drop_slice(Volume(data.copy(), (2, 1, 1)), 2, ["linear"])
    assert not any("uneven" in c for c in even["conventions"])


def test_report_explains_exact_reconstructions_and_cubic_on_too_few_planes(tmp_path):
    z, x = np.arange(5)[:, None, None], np.arange(16)[None, None, :]
    ramp = np.broadcast_to(10 * z + x, (5, 16, 16)).astype(np.uint16)  # linear along z: both exact
    result = evaluate_drop_slice(Volume(ramp, (1, 0.5, 0.5)), 2, ["linear", "cubic"])
    text = write_drop_slice_report(result, tmp_path).read_text()
    assert "PSNR inf: linear, cubic reproduced the scored planes exactly" in text
    assert "cubic: only 3 planes to interpolate from, so cubic is linear interpolation here" in text
    assert "note: cubic: only 3 planes" in format_table(result)  # the printed table says it too
    assert (tmp_path / "cf_psnr_sweep.png").stat().st_size > 5_000
    many = evaluate_drop_slice(load_sample(), 2, ["linear", "cubic"])
    assert not any(c.startswith("cubic: only") for c in many["conventions"])


def test_zaug_warnings_of_an_evaluation_are_kept_for_its_report(tmp_path):
    import warnings

    from zaug import ZaugWarning
    from zaug.evaluate import said_warnings

    said = []
    with pytest.warns(ZaugWarning, match="advice"), said_warnings(said):
        warnings.warn(ZaugWarning("an advice"))
        warnings.warn(UserWarning("not ours"))
    assert said == ["an advice"]
    result = evaluate_drop_slice(load_sample(), 4, ["linear"])
    assert result["warnings"] == []
    result["warnings"] = ["the input's z spacing differs"]
    assert "**Warning:** the input's z spacing differs" in write_drop_slice_report(result, tmp_path).read_text()


def test_sections_are_drawn_with_the_physical_aspect_of_non_square_pixels(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    aspects = []
    original = Axes.imshow
    monkeypatch.setattr(Axes, "imshow", lambda self, *a, **k: aspects.append(k.get("aspect")) or original(
        self, *a, **k))
    vol = load_sample()
    vol = vol.replace(data=vol.data[:9, :32, :32], voxel_size=(1.0, 0.1, 0.4))
    write_drop_slice_report(evaluate_drop_slice(vol, 2, ["linear"], keep_predictions=True), tmp_path)
    # xy planes: a row 0.1 high, a column 0.4 wide; xz sections: z rows 1 high against x columns 0.4 wide
    assert aspects.count(pytest.approx(0.25)) == 3 and aspects.count(pytest.approx(2.5)) == 3


def test_scratch_folders_that_killed_evaluations_left_are_removed_and_no_others(tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys
    import tempfile

    from zaug.evaluate import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40]
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True).stdout.strip()  # a process that has exited: its folder is an orphan
    orphan, running = tmp_path / f"zaug-eval-{host}-{ended}-abc", tmp_path / f"zaug-eval-{host}-{os.getpid()}-def"
    elsewhere, foreign = tmp_path / f"zaug-eval-otherhost-{ended}-ghi", tmp_path / "zaug-eval-notes"
    for folder in (orphan, running, elsewhere, foreign):
        (folder / "model").mkdir(parents=True)
    with scratch_folder() as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path and tmp.name.startswith(f"zaug-eval-{host}-{os.getpid()}-")
        assert not orphan.exists()
        assert running.exists() and elsewhere.exists() and foreign.exists()  # alive, another host's, not ours
    assert not tmp.exists()
