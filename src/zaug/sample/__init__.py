"""The small real stack shipped with zaug for the demo and tests (see ATTRIBUTION.md)."""

from importlib import resources
from pathlib import Path


def sample_path() -> Path:
    """Path of ``cells3d_nuclei_crop.tif`` (60 x 128 x 128, uint16, 0.29/0.26/0.26 um)."""
    return Path(str(resources.files(__name__) / "cells3d_nuclei_crop.tif"))


def load_sample():
    """The sample as a :class:`zaug.Volume`."""
    from ..io import read_volume

    return read_volume(sample_path())
