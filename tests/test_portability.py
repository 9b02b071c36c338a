"""What differs on Windows and macOS: text encodings, mapped files, path spellings, locks."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zaug
from zaug.errors import OutputError

SOURCE = Path(zaug.__file__).parent
TEXT_CALLS = {"read_text", "write_text"}


def _text_calls_without_encoding(tree):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, keywords = node.func, {k.arg for k in node.keywords}
        if isinstance(func, ast.Attribute) and func.attr in TEXT_CALLS:
            named = func.attr
        elif isinstance(func, ast.Name) and func.id == "open":
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and "b" in str(mode.value):
                continue
            named = "open"
        else:
            continue
        if "encoding" not in keywords:
            yield named, node.lineno


def test_every_text_file_is_read_and_written_as_utf8():
    # Windows' default (cp1252) cannot write a report naming an input such as "pile ł.tif"
    found = [f"{path.relative_to(SOURCE)}:{line} {name}"
             for path in sorted(SOURCE.rglob("*.py"))
             for name, line in _text_calls_without_encoding(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []


def test_paths_the_console_cannot_encode_are_escaped_not_fatal(tmp_path):
    import tifffile

    path = tmp_path / "pile ł 日本.tif"
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.uint8), imagej=True, resolution=(4, 4),
                     metadata={"spacing": 1.0, "unit": "um", "axes": "ZYX"})
    env = dict(os.environ, PYTHONIOENCODING="cp1252")  # a Windows console, or its output redirected
    done = subprocess.run([sys.executable, "-m", "zaug", "info", str(path)], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    assert b"pile \\u0142" in done.stdout


@pytest.mark.parametrize("typed", ["D:\\data\\nuclei.ome.zarr\\", "data/nuclei.zarr/", "C:\\x\\a.TIF"])
def test_format_of_a_folder_typed_with_its_trailing_separator(typed):
    from zaug.io import format_of

    assert format_of(typed) == ("tiff" if typed.endswith("TIF") else "ome-zarr")


def test_an_output_that_is_the_input_under_another_name_is_refused(tmp_path):
    # a case-insensitive disk (macOS, Windows) makes Stack.tif and stack.tif one file; a hard link does here
    from zaug.io import check_output_path

    src = tmp_path / "Stack.tif"
    src.write_bytes(b"acquired")
    other = tmp_path / "stack.tif"
    os.link(src, other)
    with pytest.raises(OutputError, match="is the input file"):
        check_output_path(other, inputs=[src], overwrite=True)
    assert src.read_bytes() == b"acquired"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to list mapped files")
def test_loaded_checkpoints_and_models_keep_no_file_mapped(tmp_path):
    # Windows cannot replace or delete a mapped file: the next checkpoint after a resume would fail
    import torch

    from zaug.checkpoint import load_model, load_state, save_model, save_state

    save_state(tmp_path / "checkpoint", {"w": torch.ones(64, 64)}, {"step": 3})
    save_model(tmp_path / "model", {"w": torch.ones(64, 64)}, {"method": "zaugnet"})
    kept = [load_state(tmp_path / "checkpoint")[0], load_model(tmp_path / "model")[0]]
    mapped = Path("/proc/self/maps").read_text(encoding="utf-8")
    assert str(tmp_path) not in mapped
    assert all(float(t["w"].sum()) == 4096 for t in kept)


def test_training_folder_lock_without_fcntl_uses_the_windows_lock(tmp_path, monkeypatch):
    from zaug.methods import _common

    calls, held = [], set()

    class FakeMsvcrt:
        LK_NBLCK, LK_UNLCK = 2, 0

        @staticmethod
        def locking(fd, mode, nbytes):
            calls.append(mode)
            if mode == FakeMsvcrt.LK_UNLCK:
                held.clear()
            elif held:
                raise OSError(36, "locked")
            else:
                held.add(fd)

    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", FakeMsvcrt)
    with _common._folder_lock(tmp_path / "model"):
        with pytest.raises(OutputError, match="another training is writing"):
            with _common._folder_lock(tmp_path / "model"):
                pass
    assert calls == [FakeMsvcrt.LK_NBLCK, FakeMsvcrt.LK_NBLCK, FakeMsvcrt.LK_UNLCK]  # unlocked before closing
    with _common._folder_lock(tmp_path / "model"):  # free again
        pass
