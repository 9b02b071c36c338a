"""What ``zaug evaluate --restore`` tells the user besides the scores: why an isotropy ratio is missing, and
that a stack already anisotropic is not what the protocol simulates from."""

import json
import warnings

import numpy as np
import pytest

from zaug.cli import main
from zaug.errors import ZaugWarning
from zaug.evaluate_restore import evaluate_restoration
from zaug.io import read_volume, write_volume
from zaug.report import write_restoration_report
from zaug.sample import load_sample

from .conftest import shared


def test_a_small_stack_says_why_its_isotropy_ratio_is_missing(tmp_path, capsys):
    vol = load_sample()
    write_volume(vol.replace(data=np.ascontiguousarray(vol.data[20:36, :64, :64])), tmp_path / "small.tif")
    assert main(["evaluate", str(tmp_path / "small.tif"), "--restore", "--factor", "4", "--methods", "linear",
                 "--report", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    reason = ("The isotropy ratio of the simulated input could not be measured: its 4 planes are too few for an "
              "axial profile (at least 5 are needed).")
    assert reason in out and reason in (tmp_path / "rep" / "report.md").read_text()
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["reference"]["input"]["isotropy_note"] == reason.split(": ", 1)[1][:-1]
    assert results["reference"]["original"]["isotropy_note"] is None


def test_an_anisotropic_stack_warns_that_the_protocol_simulates_from_a_fine_one(tmp_path, capsys):
    vol = read_volume(shared("neubias_xyz_8bit__chromosomes.tif"))
    crop = vol.replace(data=np.ascontiguousarray(vol.data[:, 40:88, 30:78]))
    with pytest.warns(ZaugWarning, match=r"this stack is already 4\.43-fold anisotropic .*use `zaug predict`"):
        result = evaluate_restoration(crop, 4, "avgpool", ["linear"], keep_predictions=True)
    assert len(result["warnings"]) == 1 and "17.7-fold" in result["warnings"][0]
    report = write_restoration_report(result, tmp_path / "rep").read_text()
    assert f"**Warning:** {result['warnings'][0]}" in report
    write_volume(crop, tmp_path / "aniso.tif")
    assert main(["evaluate", str(tmp_path / "aniso.tif"), "--restore", "--factor", "4", "--methods", "linear"]) == 0
    assert "zaug: warning: this stack is already 4.43-fold anisotropic" in capsys.readouterr().err
    fine = load_sample()  # 0.29 um in z, 0.26 um laterally: what the protocol expects
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)
        result = evaluate_restoration(fine.replace(data=fine.data[:, :48, :48]), 4, "avgpool", ["linear"])
    assert result["warnings"] == []


@pytest.mark.parametrize("restore", [True, False])
def test_a_method_the_stack_is_too_small_for_is_refused_before_any_method_trains(restore, monkeypatch):
    from zaug import InputError
    from zaug.evaluate import evaluate_drop_slice
    from zaug.methods import niiv, zaugnet

    trained = []

    def counting(module):
        fit = module.fit

        def counted(volumes, out_dir, options=None):
            if not (options or {}).get("check_only"):
                trained.append(module.__name__)
            return fit(volumes, out_dir, options)
        return counted

    for module in (niiv, zaugnet):
        monkeypatch.setattr(module, "fit", counting(module))
    sample = load_sample()
    with pytest.raises(InputError, match="too small for Self-Net" if restore else
                       r"zaugnet\+ trains on the planes kept: x2 keeps 8 of the stack's 16, and it needs 10 \(a stack "
                       r"of at least 19 planes\)"):
        if restore:  # niiv fits in 20 x 20 planes, Self-Net does not: niiv would train for nothing
            evaluate_restoration(sample.replace(data=sample.data[:12, :20, :20]), 4, "gaussian",
                                 methods=("linear", "niiv", "selfnet"), train_options={"steps": 2, "progress": False})
        else:  # ZAugNet trains on the 8 kept planes, ZAugNet+ needs 10
            evaluate_drop_slice(sample.replace(data=sample.data[:16, :20, :20]), 2,
                                methods=("linear", "zaugnet", "zaugnet+"),
                                train_options={"steps": 2, "progress": False})
    assert trained == []
