import subprocess
import sys
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
def run_cli():
    """Run the zaug command in a subprocess; returns CompletedProcess."""

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "zaug", *map(str, args)], capture_output=True, text=True,
                              cwd=cwd, timeout=600)

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
