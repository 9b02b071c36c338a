import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared(name: str) -> Path:
    """A file of ../shared/data, or skip the test when it is absent (a user's fresh clone)."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared real-data set is only beside the project's own checkout")
    return path


@pytest.fixture
def run_cli_process():
    """Run the zaug command in a subprocess; returns CompletedProcess."""

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "zaug", *map(str, args)], capture_output=True, text=True,
                              cwd=cwd, timeout=600)

    return run


@pytest.fixture
def run_cli():
    """Run the zaug command line in this process, as ``zaug ARGS`` would run; returns CompletedProcess.

    Saves starting Python and importing torch for every call (a third of a short CLI test's time); the
    warning filters are a fresh interpreter's, and an exception that escapes the command line fails the
    test as a traceback would. ``run_cli_process`` runs a real process.
    """
    from zaug.cli import main

    def run(*args, cwd=None):
        argv = [str(a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        here = os.getcwd()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # as a fresh interpreter: shown once per place, deprecations hidden
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                if cwd is not None:
                    os.chdir(cwd)
                code = main(argv)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                os.chdir(here)
        return subprocess.CompletedProcess(["zaug", *argv], code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def blobs():
    """A small smooth synthetic uint16 stack (z, y, x) with structure along z."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[0:17, 0:32, 0:32].astype(np.float32)
    vol = np.zeros_like(z)
    for _ in range(6):
        cz, cy, cx = rng.uniform(2, 15), rng.uniform(4, 28), rng.uniform(4, 28)
        vol += np.exp(-((z - cz) ** 2 / 8 + (y - cy) ** 2 / 10 + (x - cx) ** 2 / 10))
    return (vol / vol.max() * 30000 + 500).astype(np.uint16)
