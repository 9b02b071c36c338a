"""The demo (classical methods only here: the README's `make demo` trains ZAugNet)."""

import numpy as np
import pytest

from zaug import OutputError, ZaugError
from zaug.demo import run_demo
from zaug.io import read_volume
from zaug.predict import upsample_z
from zaug.sample import load_sample


def test_demo_replaces_only_its_own_earlier_output(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(out, train=False, print_fn=lambda *a: None)
    assert set(result["methods"]) >= {"linear", "cubic"}
    assert (out / "sample_x2_cubic.tif").exists() and (out / "report" / "report.md").exists()
    (out / "mine.txt").write_text("notes")  # the user's file in the demo folder
    with pytest.raises(OutputError, match="did not write .*mine.txt"):
        run_demo(out, train=False, print_fn=lambda *a: None)
    assert (out / "mine.txt").exists() and (out / "sample_x2_cubic.tif").exists()
    (out / "mine.txt").unlink()
    run_demo(out, train=False, print_fn=lambda *a: None)  # an earlier demo alone is replaced
    assert (out / "sample_x2_cubic.tif").exists()


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "data.tif").write_text("x")
    with pytest.raises(OutputError, match="not an earlier demo output"):
        run_demo(tmp_path, train=False, print_fn=lambda *a: None)
    assert (tmp_path / "data.tif").read_text() == "x"


@pytest.mark.parametrize("inside", ["report/my_notes.md", "model/my_readme.txt"])
def test_demo_refuses_an_earlier_demo_holding_the_users_files_in_its_folders(tmp_path, inside):
    out = tmp_path / "demo"
    run_demo(out, train=False, print_fn=lambda *a: None)
    (out / "model").mkdir(exist_ok=True)
    (out / inside).write_text("mine")
    with pytest.raises(OutputError, match=f"did not write .*{inside}"):
        run_demo(out, train=False, print_fn=lambda *a: None)
    assert (out / inside).read_text() == "mine" and (out / "sample_x2_cubic.tif").exists()


def test_demo_replaces_an_earlier_models_checkpoint_whole(tmp_path):
    out = tmp_path / "demo"
    run_demo(out, train=False, print_fn=lambda *a: None)
    (out / "model" / "checkpoint").mkdir(parents=True)
    (out / "model" / "checkpoint" / "state.safetensors").write_text("zaug's")
    run_demo(out, train=False, print_fn=lambda *a: None)
    assert not (out / "model").exists()


def test_demo_takes_an_empty_folder_and_refuses_a_zero_budget_before_writing(tmp_path):
    (tmp_path / "empty").mkdir()
    run_demo(tmp_path / "empty", train=False, print_fn=lambda *a: None)
    assert (tmp_path / "empty" / "sample_x2_cubic.tif").exists()
    with pytest.raises(ZaugError, match="--minutes must be positive"):
        run_demo(tmp_path / "zero", minutes=0, print_fn=lambda *a: None)
    assert not (tmp_path / "zero").exists()


def test_demo_writes_the_evaluated_reconstruction_with_the_acquired_planes_exact(tmp_path):
    out = tmp_path / "demo"
    lines = []
    result = run_demo(out, train=False, print_fn=lines.append)
    assert "the 29 removed planes between them" not in "\n".join(lines)  # said only when training
    stack = read_volume(out / "sample_x2_cubic.tif")
    sample = load_sample()
    assert stack.dtype == sample.dtype and stack.nz == 59 and stack.voxel_size == sample.voxel_size
    np.testing.assert_array_equal(stack.data[::2], sample.data[:59:2])
    expected = upsample_z(sample.replace(data=sample.data[::2], voxel_size=(0.58, 0.26, 0.26)), "cubic", factor=2)
    np.testing.assert_array_equal(stack.data, expected.data)
    assert result["planes"]["removed"] == list(range(1, 59, 2))


@pytest.mark.slow
def test_demo_trains_and_says_which_planes_it_scores(tmp_path):
    lines = []
    result = run_demo(tmp_path / "demo", steps=2, device="cpu", print_fn=lines.append)
    text = "\n".join(lines)
    assert "the 29 removed planes between them are the test set (1 more, beyond the last kept plane, is left" in text
    assert len(result["planes"]["removed"]) == 29 and "zaugnet" in result["methods"]
    stack = read_volume(tmp_path / "demo" / "sample_x2_zaugnet.tif")
    np.testing.assert_array_equal(stack.data[::2], load_sample().data[:59:2])
    model = stack.metadata["history"][-1]["model"]  # the record names the model that made it
    assert model["folder"] == "model" and model["steps"] == 2 and len(model["weights_sha256"]) == 16


def test_an_interrupted_demo_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    import zaug.demo

    out = tmp_path / "demo"
    run_demo(out, train=False, print_fn=lambda *a: None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(*args, **kwargs):  # Ctrl-C while the new demo writes its stack
        raise KeyboardInterrupt

    monkeypatch.setattr(zaug.demo, "write_volume", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, train=False, print_fn=lambda *a: None)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # the half-built demo removed
