"""Spelling of physical units across file formats."""

_TO_SHORT = {
    "micron": "um", "microns": "um", "micrometer": "um", "micrometre": "um", "um": "um",
    "\u00b5m": "um", "\u03bcm": "um", "\\u00b5m": "um", "nanometer": "nm", "nm": "nm",
    "millimeter": "mm", "mm": "mm", "centimeter": "cm", "cm": "cm", "meter": "m", "m": "m",
    "angstrom": "A", "pixel": "pixel", "pixels": "pixel", "px": "pixel", "": "pixel",
}
_TO_NGFF = {"um": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter",
            "m": "meter", "A": "angstrom"}
_TO_OME = {"um": "\u00b5m", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m", "A": "\u00c5"}


def normalize_unit(unit: str | None) -> str:
    """Short form of a unit name: ``'micron'``, ``'\\u00b5m'`` -> ``'um'``."""
    if unit is None:
        return "pixel"
    key = str(unit).strip()
    return _TO_SHORT.get(key.lower(), _TO_SHORT.get(key, key))


def ngff_unit(unit: str) -> str | None:
    """UDUNITS-2 name used by OME-Zarr, or None for pixel units."""
    return _TO_NGFF.get(unit)


def ome_unit(unit: str) -> str | None:
    """Symbol used by OME-XML, or None for pixel units."""
    return _TO_OME.get(unit)


def imagej_unit(unit: str) -> str:
    """ImageJ's spelling (``micron`` for um)."""
    return "micron" if unit == "um" else unit
