"""Spelling of physical units across file formats, and conversions between them."""

from __future__ import annotations

_TO_SHORT = {
    "micron": "um", "microns": "um", "micrometer": "um", "micrometre": "um", "micrometers": "um",
    "micrometres": "um", "um": "um", "\u00b5m": "um", "\u03bcm": "um", "\\u00b5m": "um",
    "nanometer": "nm", "nanometre": "nm", "nanometers": "nm", "nm": "nm",
    "picometer": "pm", "picometre": "pm", "pm": "pm",
    "millimeter": "mm", "millimetre": "mm", "mm": "mm", "centimeter": "cm", "centimetre": "cm", "cm": "cm",
    "meter": "m", "metre": "m", "m": "m", "angstrom": "A", "\u00e5": "A", "\u212b": "A",
    "inch": "in", "inches": "in", "in": "in",
    # OME's "reference frame" is a length in no stated unit: as unknown as pixels
    "pixel": "pixel", "pixels": "pixel", "px": "pixel", "": "pixel", "reference frame": "pixel",
}
_TO_NGFF = {"um": "micrometer", "nm": "nanometer", "pm": "picometer", "mm": "millimeter", "cm": "centimeter",
            "m": "meter", "A": "angstrom", "in": "inch"}
_TO_OME = {"um": "\u00b5m", "nm": "nm", "pm": "pm", "mm": "mm", "cm": "cm", "m": "m", "A": "\u00c5",
           "in": "in", "pixel": "pixel"}
_METRES = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "nm": 1e-9, "pm": 1e-12, "A": 1e-10, "in": 0.0254}
COMMON_UNIT = "um"  # what mixed units are converted to
# time units: short form, then OME's symbol, NGFF's (UDUNITS-2) name and ImageJ's spelling
_TIME = {"s": ("s", "second", "sec"), "ms": ("ms", "millisecond", "ms"), "us": ("\u00b5s", "microsecond", "us"),
         "min": ("min", "minute", "min"), "h": ("h", "hour", "hour"), "d": ("d", "day", "day")}
_TIME_NAMES = {name.lower(): short for short, names in _TIME.items() for name in (short, *names)}
_TIME_NAMES.update({"sec": "s", "secs": "s", "seconds": "s", "msec": "ms", "milliseconds": "ms", "\u03bcs": "us",
                    "minutes": "min", "mins": "min", "hr": "h", "hrs": "h", "hours": "h", "days": "d"})


def normalize_unit(unit: str | None) -> str:
    """Short form of a unit name: ``'micron'``, ``'\\u00b5m'`` -> ``'um'``."""
    if unit is None:
        return "pixel"
    key = str(unit).strip()
    return _TO_SHORT.get(key.lower(), _TO_SHORT.get(key, key))


def checked_unit(unit: str) -> str:
    """:func:`normalize_unit` of a unit a user gives, refused in one sentence when zaug does not know it."""
    from ..errors import InputError

    short = normalize_unit(unit)
    if short != "pixel" and short not in _METRES:
        raise InputError(f"unknown unit {unit!r}; use um, nm, mm, cm, m, pm or A.")
    return short


def ngff_unit(unit: str) -> str | None:
    """UDUNITS-2 name used by OME-Zarr, or None for pixel units."""
    return _TO_NGFF.get(unit)


def ome_unit(unit: str) -> str | None:
    """Symbol used by OME-XML (``'pixel'`` for pixel units), or None for a unit OME does not know."""
    return _TO_OME.get(unit)


def imagej_unit(unit: str) -> str:
    """ImageJ's spelling (``micron`` for um)."""
    return "micron" if unit == "um" else unit


def conversion_factor(unit: str, to: str) -> float | None:
    """Factor that turns a length in ``unit`` into one in ``to``, or None when either is not physical.

    Examples
    --------
    >>> conversion_factor("nm", "um")
    0.001
    >>> conversion_factor("pixel", "um") is None
    True
    """
    if unit == to:
        return 1.0
    if unit not in _METRES or to not in _METRES:
        return None
    return _METRES[unit] / _METRES[to]


def without_binary_noise(value: float) -> float:
    """``value`` rounded to 12 significant digits, as a product of decimal lengths should read.

    Examples
    --------
    >>> 0.29 * conversion_factor("um", "nm"), without_binary_noise(0.29 * conversion_factor("um", "nm"))
    (289.99999999999994, 290.0)
    """
    return float(f"{value:.12g}")


def significant(value: float, digits: int = 6) -> float:
    """``value`` rounded to ``digits`` significant digits: the same in every unit, as ``round`` to decimals is not.

    >>> significant(0.58e-6), round(0.58e-6, 6)
    (5.8e-07, 1e-06)
    """
    return float(f"{value:.{digits}g}")


def origin_entries(origin: dict[str, float]) -> dict:
    """The read-metadata entries ``z_origin`` and ``yx_origin`` of an origin ``{axis: value}``, where not zero."""
    entries: dict = {}
    if origin.get("z", 0.0) != 0:
        entries["z_origin"] = origin["z"]
    if origin.get("y", 0.0) != 0 or origin.get("x", 0.0) != 0:
        entries["yx_origin"] = (origin.get("y", 0.0), origin.get("x", 0.0))
    return entries


def unconvertible_units(sizes: dict[str, tuple[float, str]], source: str) -> dict:
    """The read-metadata entry for sizes whose units cannot be converted to one: a warning, no size."""
    listed = ", ".join(f"{a} in {u}" for a, (_, u) in sizes.items())
    return {"warnings": [f"{source} gives the voxel size in units that cannot be converted to one ({listed}), "
                         "so it is taken as unknown; pass --voxel-size Z Y X and --unit."]}


def in_one_unit(sizes: dict[str, tuple[float, str]]) -> tuple[dict[str, float], str] | None:
    """Express lengths given in several units in one.

    Parameters
    ----------
    sizes : dict
        ``{name: (value, unit)}`` with units in zaug's short form.

    Returns
    -------
    (values, unit) or None
        The values in their shared unit when they have one, else all in
        :data:`COMMON_UNIT`; None when they mix units that cannot be converted
        (pixels with micrometres, an unknown name).

    Examples
    --------
    >>> in_one_unit({"z": (0.29, "um"), "y": (260.0, "nm")})
    ({'z': 0.29, 'y': 0.26}, 'um')
    """
    units = {unit for _, unit in sizes.values()}
    if len(units) <= 1:
        return {k: v for k, (v, _) in sizes.items()}, (units.pop() if units else "pixel")
    factors = {unit: conversion_factor(unit, COMMON_UNIT) for unit in units}
    if any(f is None for f in factors.values()):
        return None
    return {k: without_binary_noise(v * factors[unit]) for k, (v, unit) in sizes.items()}, COMMON_UNIT


def time_unit(unit: str | None) -> str | None:
    """Short form of a time unit (``'second'``, ``'sec'`` -> ``'s'``), or None when it is not one."""
    return _TIME_NAMES.get(str(unit).strip().lower()) if unit is not None else None


def time_unit_in(unit: str, form: str) -> str:
    """A short time unit as OME (``'ome'``), NGFF (``'ngff'``) or ImageJ (``'imagej'``) spell it."""
    return _TIME[unit][("ome", "ngff", "imagej").index(form)]
