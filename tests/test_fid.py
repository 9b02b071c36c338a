"""FID and KID: the Inception-v3 graph, the two distances, the weights file, and both in evaluations.

No official weights exist on a test machine; the network gets random He-initialised
weights (saved as the official file's layout, classifier included), which exercises
every path except the meaning of the numbers. The architecture itself was checked
feature-for-feature against torch-fidelity's implementation
(docs/results/2026-12-03/fid/inception_crosscheck.py).
"""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors.torch import save_file

from zaug import InputError
from zaug.evaluate import evaluate_drop_slice, format_table
from zaug.evaluate_restore import evaluate_restoration
from zaug.fid import (FID_WEIGHTS_ENV, FIDScorer, axial_planes, fid, frechet_distance, kernel_distance,
                      kernel_distance_and_error, load_inception, plane_features)
from zaug.nets.inception import FIDInceptionV3
from zaug.report import write_drop_slice_report
from zaug.sample import load_sample


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights in the layout of pt_inception-2015-12-05 (with its 1008-class classifier)."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    tensors = {k: v.contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    tensors.update({"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    path = tmp_path_factory.mktemp("fid") / "pt_inception.safetensors"
    save_file(tensors, str(path))
    return path


def test_network_has_the_reference_layout():
    net = FIDInceptionV3()
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    # torchvision's inception_v3 without its auxiliary head and classifier: 21,785,568 parameters
    assert sum(p.numel() for p in net.parameters()) == 21_785_568
    assert len(keys) == 470
    for name in ("Conv2d_1a_3x3.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.running_var",
                 "Mixed_7c.branch3x3dbl_3b.conv.weight", "Mixed_7a.branch7x7x3_4.bn.bias"):
        assert name in keys
    assert net(torch.zeros(2, 3, 299, 299)).shape == (2, 2048)


def test_frechet_distance_matches_closed_forms_and_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2048))  # fewer samples than features: the low-rank route
    y = 1.5 * x + 0.1  # S_y = 2.25 S_x, so tr((S_x S_y)^1/2) = 1.5 tr(S_x)
    exact = np.sum((0.5 * x.mean(0) + 0.1) ** 2) + 0.25 * np.trace(np.cov(x, rowvar=False))
    assert frechet_distance(x, y) == pytest.approx(exact, rel=1e-9)
    assert frechet_distance(y, x) == pytest.approx(exact, rel=1e-9)
    a, b = rng.normal(size=(600, 16)), rng.normal(0.2, 1.4, size=(500, 16))  # the symmetric route
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * scipy.linalg.sqrtm(sa @ sb).real)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InputError, match="at least two"):
        frechet_distance(a[:1], b)


def test_weights_file_problems_are_one_sentence(tmp_path, weights):
    with pytest.raises(InputError, match="do not exist: download https://github.com/mseitzer/pytorch-fid"):
        load_inception(tmp_path / "absent.safetensors")
    pickled = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    pickled.write_bytes(b"not opened")
    with pytest.raises(InputError, match="never unpickles a file"):
        load_inception(pickled)
    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(other))
    with pytest.raises(InputError, match="is not the FID Inception-v3 weights"):
        load_inception(other)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="cannot read the FID weights"):
        load_inception(broken)
    with pytest.raises(InputError, match="does not ship"):
        fid(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), weights=None)


def test_kernel_distance_equals_the_pairwise_sums_and_is_unbiased_where_fid_is_not():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 16)), rng.normal(size=(5, 16))

    def k(x, y):
        return (x @ y / 16 + 1) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    within_b = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    across = sum(k(x, y) for x in a for y in b) / (7 * 5)
    assert kernel_distance(a, b) == pytest.approx(within_a + within_b - 2 * across, rel=1e-12)
    # 200 pairs of 20-sample sets from one distribution: KID averages 0, FID far above it
    same = [(rng.gamma(2.0, size=(20, 64)), rng.gamma(2.0, size=(20, 64))) for _ in range(200)]
    kids = np.array([kernel_distance(x, y) for x, y in same])
    assert abs(kids.mean()) < 3 * kids.std() / np.sqrt(len(kids))
    assert min(frechet_distance(x, y) for x, y in same) > 50
    shifted = [kernel_distance(x, y + 0.5) for x, y in same[:20]]
    assert min(shifted) > kids.mean() + 5 * kids.std()
    with pytest.raises(InputError, match="KID needs"):
        kernel_distance(a[:1], b)


def test_kernel_distance_error_is_the_jackknife_and_matches_the_spread_of_estimates():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(9, 8)), rng.normal(size=(6, 8)) + 0.4
    kid, se = kernel_distance_and_error(a, b)
    assert kid == kernel_distance(a, b)
    # the closed form equals the delete-one estimates computed one by one
    left_a = np.array([kernel_distance(np.delete(a, i, 0), b) for i in range(9)])
    left_b = np.array([kernel_distance(a, np.delete(b, j, 0)) for j in range(6)])
    jackknife = 8 / 9 * np.sum((left_a - left_a.mean()) ** 2) + 5 / 6 * np.sum((left_b - left_b.mean()) ** 2)
    assert se == pytest.approx(np.sqrt(jackknife), rel=1e-10)
    # 300 pairs of 30-sample sets half a standard deviation apart: the error is the estimates' spread
    draws = [kernel_distance_and_error(rng.standard_t(5, (30, 16)), rng.standard_t(5, (30, 16)) + 0.5)
             for _ in range(300)]
    kids, ses = np.array(draws).T
    assert np.mean(ses) == pytest.approx(np.std(kids), rel=0.15)
    assert np.isnan(kernel_distance_and_error(a[:2], b)[1])


def test_fid_orders_sets_by_how_far_they_are_from_the_truth(weights):
    planes = load_sample().data[::12].astype(np.float32)
    truth = (planes - planes.min()) / (planes.max() - planes.min())
    rng = np.random.default_rng(1)
    slightly = np.clip(truth + rng.normal(0, 0.01, truth.shape), 0, 1)
    badly = np.clip(truth + rng.normal(0, 0.2, truth.shape), 0, 1)
    scorer = FIDScorer(truth, load_inception(weights), weights.name)
    assert scorer(truth) == pytest.approx(0.0, abs=1e-6)
    assert 0 < scorer(slightly) < scorer(badly)
    assert fid(badly, truth, weights=weights) == pytest.approx(scorer(badly), rel=1e-6)
    scores = scorer.scores(badly)
    assert scores["fid"] == pytest.approx(scorer(badly), rel=1e-9)
    assert scores["kid"] == pytest.approx(kernel_distance(plane_features(badly, scorer.network),
                                                          scorer.truth_features), rel=1e-9)
    assert scores["kid_se"] > 0
    assert scorer.scores(slightly)["kid"] < scores["kid"]


def test_drop_slice_evaluation_reports_fid_per_method(tmp_path, weights):
    vol = load_sample()
    vol = vol.replace(data=vol.data[:17, :64, :64])
    result = evaluate_drop_slice(vol, 2, ["linear", "cubic"], fid_weights=weights, keep_predictions=True)
    assert result["fid"] == {"weights": weights.name, "planes": 8}
    truth, removed = result["arrays"]["truth"], result["arrays"]["removed"]
    expected = fid(result["arrays"]["cubic"][removed], truth[removed], weights=weights)
    assert result["methods"]["cubic"]["fid"] == pytest.approx(expected, rel=1e-6)
    assert result["methods"]["linear"]["fid"] > 0 and "kid" in result["methods"]["linear"]
    assert any(c.startswith("FID = ") and "KID = " in c for c in result["conventions"])
    head, row = format_table(result).splitlines()[1:3]
    assert head.split()[-2:] == ["FID", "KIDx1000±SE"]
    kid, se = map(float, row.split()[-1].split("±"))
    linear = result["methods"]["linear"]
    assert (kid, se) == pytest.approx((1e3 * linear["kid"], 1e3 * linear["kid_se"]), abs=0.006)
    report = write_drop_slice_report(result, tmp_path / "report")
    assert "| FID | KID x 1000 |" in report.read_text()
    assert f"| {1e3 * linear['kid']:.2f} ± {1e3 * linear['kid_se']:.2f} |" in report.read_text()
    assert json.loads((tmp_path / "report" / "results.json").read_text())["methods"]["linear"]["fid"] > 0
    plain = evaluate_drop_slice(vol, 2, ["linear"])
    assert "fid" not in plain and "fid" not in plain["methods"]["linear"]


@pytest.mark.slow  # (suite time) FID in an evaluation stays in the default suite with the drop-slice case
def test_restoration_evaluation_scores_fid_on_axial_planes(weights, monkeypatch):
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(weights))  # the environment variable alone switches FID on
    vol = load_sample()
    vol = vol.replace(data=vol.data[:, 40:52, 40:50])
    result = evaluate_restoration(vol, 4, "gaussian", ["linear", "cubic"])
    assert result["fid"]["planes"] == 12 + 10
    assert {m: r["fid"] > 0 for m, r in result["methods"].items()} == {"linear": True, "cubic": True}
    assert all(np.isfinite(r["kid"]) for r in result["methods"].values())
    planes = axial_planes(np.zeros((7, 48, 40)))
    assert planes.shape == (88, 7, 48)


def test_cli_fid_weights_error_exits_with_one_sentence(run_cli, tmp_path):
    from zaug.sample import sample_path

    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"x")
    proc = run_cli("evaluate", sample_path(), "--factor", "2", "--fid-weights", bad)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "never unpickles a file" in proc.stderr


@pytest.mark.slow  # FID's integration is tested on drop-slice and restoration evaluations in the default suite
def test_oblique_evaluation_reports_fid(tmp_path, weights):
    from zaug.evaluate_oblique import evaluate_oblique, format_oblique_table
    from zaug.report import write_oblique_report

    vol = load_sample()
    vol = vol.replace(data=vol.data[:20, 40:52, 40:50], voxel_size=(0.26, 0.26, 0.26))
    result = evaluate_oblique(vol, 45, 4, ["input"], fid_weights=weights)
    assert result["fid"]["planes"] == 12 + 10 and result["methods"]["input"]["fid"] > 0
    assert "FID" in format_oblique_table(result).splitlines()[1]
    assert "| FID |" in write_oblique_report(result, tmp_path / "r").read_text()
