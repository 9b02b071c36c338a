"""The README's Python examples run as written, on a copy of the shipped sample named as they name it."""

import re
import shutil

import pytest

from zaug.io import read_volume
from zaug.sample import sample_path

from .conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(code, tmp_path, monkeypatch):
    shutil.copy(sample_path(), tmp_path / "stack.tif")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    if "stack_x2.ome.zarr" in code:  # what the example's comment promises
        before, after = read_volume("stack.tif"), read_volume("stack_x2.ome.zarr")
        assert after.nz == 2 * before.nz - 1 and after.dtype == before.dtype
        assert after.voxel_size[0] == pytest.approx(before.voxel_size[0] / 2)
    if "acquired_mask(again)" in code:  # the acquired planes are the input's, as the example says
        from zaug.provenance import acquired_mask, summary

        again = read_volume("stack_x2.ome.zarr")
        assert (again.data[acquired_mask(again)] == read_volume("stack.tif").data).all()
        assert summary(again).endswith("60 of 119 planes acquired, 59 predicted")
