"""The demo (classical methods only here: the README's `make demo` trains ZAugNet)."""

import pytest

from zaug import OutputError
from zaug.demo import run_demo


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
