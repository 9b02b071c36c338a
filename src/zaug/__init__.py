"""zaug: self-supervised axial resolution enhancement for 3D microscopy."""

__version__ = "0.1.0"

from .errors import InputError, OutputError, ZaugError, ZaugWarning  # noqa: E402
from .volume import Volume  # noqa: E402

__all__ = ["Volume", "ZaugError", "InputError", "OutputError", "ZaugWarning", "__version__"]
