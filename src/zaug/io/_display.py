"""How a stack is shown: per-channel colour and display range, carried from file to file.

Kept in ``Volume.metadata["display"]`` as ``{"mode": ..., "channels": [...]}``, one entry per channel
with ``window`` (low, high) in the stored values, ``color`` (``"RRGGBB"``) and, from ImageJ only, a
``lut`` (3 x 256 uint8) that is not a plain ramp to one colour. Read from ImageJ's ``Ranges`` (``min``
and ``max`` for one channel), ``LUTs`` and ``mode``, OME's ``Channel Color`` and OME-Zarr's ``omero``
block; written back to each (a format keeps what it can hold). zaug keeps the input's value range, so a
display range stays valid.
"""

from __future__ import annotations

import re

import numpy as np

#: ImageJ modes and the OME-Zarr ``rdefs`` models they correspond to
_MODEL_OF_MODE = {"composite": "color", "color": "color", "grayscale": "greyscale"}


def _ramp_color(lut: np.ndarray) -> str | None:
    """The colour of a LUT that ramps from black to one colour (ImageJ's Red, Grays, Magenta ...)."""
    lut = np.asarray(lut)
    if lut.shape != (3, 256):
        return None
    color = _lut_top(lut)
    return color if np.abs(lut.astype(int) - _ramp(color)).max() <= 1 else None


def _lut_top(lut: np.ndarray) -> str:
    """The colour a LUT reaches at its brightest."""
    return "".join(f"{int(v):02X}" for v in np.asarray(lut)[:, -1])


def _color_of(channel: dict) -> str | None:
    """A channel's colour, or its LUT's brightest colour."""
    return channel["color"] or (_lut_top(channel["lut"]) if channel["lut"] is not None else None)


def _shown(channel: dict) -> bool:
    """Whether a channel's entry says anything."""
    return bool(channel["window"] or channel["color"] or channel["lut"] is not None)


def _ramp(color: str) -> np.ndarray:
    rgb = np.array([int(color[i:i + 2], 16) for i in (0, 2, 4)], float)
    return np.round(np.outer(rgb, np.arange(256) / 255.0)).astype(np.uint8)


def _channel(window=None, color=None, lut=None) -> dict:
    return {"window": None if window is None else (float(window[0]), float(window[1])),
            "color": color, "lut": lut}


def _display(channels: list[dict], mode: str | None) -> dict | None:
    if not any(map(_shown, channels)) and not mode:
        return None
    return {"mode": mode, "channels": channels}


def rgb_composite(dtype) -> dict:
    """Red, green and blue channels over the type's whole range: how an RGB image's samples look."""
    dtype = np.dtype(dtype)
    window = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if dtype.kind in "ui" else None
    return {"mode": "composite", "channels": [_channel(window, color) for color in ("FF0000", "00FF00", "0000FF")]}


def from_imagej(ij: dict, n_channels: int) -> dict | None:
    """Display settings from tifffile's ``imagej_metadata``."""
    ranges = ij.get("Ranges")
    luts = ij.get("LUTs")
    if luts is not None and np.ndim(luts) == 2:  # tifffile gives one channel's LUT as one array
        luts = [luts]
    windows = (np.reshape(np.asarray(ranges, float), (-1, 2)) if ranges is not None and len(ranges) % 2 == 0
               else None)
    if windows is None and n_channels == 1 and all(isinstance(ij.get(k), (int, float)) for k in ("min", "max")):
        windows = np.array([[ij["min"], ij["max"]]], float)  # ImageJ's display range of one channel
    if windows is not None and len(windows) != n_channels:
        windows = None
    if luts is not None and len(luts) != n_channels:
        luts = None
    channels = []
    for c in range(n_channels):
        lut = None if luts is None else np.asarray(luts[c], np.uint8)
        color = None if lut is None else _ramp_color(lut)
        channels.append(_channel(None if windows is None else windows[c], color,
                                 lut if lut is not None and color is None else None))
    mode = ij.get("mode")
    return _display(channels, mode if mode in _MODEL_OF_MODE and n_channels > 1 else None)


def to_imagej(display: dict | None, n_channels: int) -> dict:
    """ImageJ metadata entries (``Ranges``, ``LUTs``, ``mode``; ``min`` and ``max`` for one channel) for
    tifffile, where every channel has one."""
    channels = _fitting(display, n_channels)
    if channels is None:
        return {}
    found: dict = {}
    if all(ch["window"] for ch in channels):
        found["Ranges"] = tuple(v for ch in channels for v in ch["window"])
        if n_channels == 1:  # where ImageJ keeps one channel's display range
            found["min"], found["max"] = channels[0]["window"]
    if all(map(_color_of, channels)):
        found["LUTs"] = [ch["lut"] if ch["lut"] is not None else _ramp(ch["color"]) for ch in channels]
    if display.get("mode") and n_channels > 1:
        found["mode"] = display["mode"]
    return found


def from_ome_channels(colors: list[str | None]) -> dict | None:
    """Display settings from the ``Color`` attributes of OME ``Channel`` elements (signed RGBA integers)."""
    rgb = []
    for value in colors:
        try:
            rgba = int(value) & 0xFFFFFFFF if value is not None else None
        except ValueError:
            rgba = None
        rgb.append(None if rgba is None else f"{rgba >> 8:06X}")
    return from_colors(rgb)


def from_colors(colors: list[str | None]) -> dict | None:
    """Display settings from one ``"RRGGBB"`` colour (or None) per channel."""
    return _display([_channel(color=color) for color in colors], None)


def to_ome_colors(display: dict | None, n_channels: int) -> list[int] | None:
    """OME ``Channel Color`` values (signed RGBA), where every channel has a colour."""
    channels = _fitting(display, n_channels)
    if channels is None or not all(map(_color_of, channels)):
        return None
    return [int(np.array((int(_color_of(ch), 16) << 8) | 0xFF, np.uint32).view(np.int32)) for ch in channels]


def from_omero(omero: dict, n_channels: int) -> dict | None:
    """Display settings from an OME-Zarr ``omero`` block."""
    entries = [ch for ch in (omero or {}).get("channels", []) if isinstance(ch, dict)]
    if len(entries) != n_channels:
        return None
    channels = []
    for ch in entries:
        window, color = ch.get("window") or {}, ch.get("color")
        bounds = (window.get("start"), window.get("end"))
        valid = all(isinstance(v, (int, float)) for v in bounds)
        color = color.upper() if isinstance(color, str) and re.fullmatch(r"[0-9A-Fa-f]{6}", color) else None
        channels.append(_channel(bounds if valid else None, color))
    model = ((omero or {}).get("rdefs") or {}).get("model")
    mode = {"color": "composite", "greyscale": "grayscale"}.get(model) if n_channels > 1 else None
    return _display(channels, mode)


def channel_labels(volume) -> tuple[str, ...]:
    """The channel names to write: the C axis's, or the name of a volume's one channel (a one-channel file's,
    or the channel ``Volume.select`` took)."""
    if volume.channel_names:
        return tuple(volume.channel_names)
    one = volume.metadata.get("channel")
    return (str(one),) if one is not None and volume.n_channels == 1 else ()


#: Colours of channels that have none, as Fiji colours a composite's (one channel alone: grey)
DEFAULT_COLORS = ("FF0000", "00FF00", "0000FF", "FFFFFF", "00FFFF", "FF00FF", "FFFF00")


def to_omero(display: dict | None, names: tuple[str, ...], n_channels: int, dtype,
             value_range=None) -> dict | None:
    """An OME-Zarr ``omero`` block with the channel names, colours and windows, when any is known.

    NGFF 0.4's schema requires a ``color`` and a ``window`` for every channel
    it lists: a channel without them gets a default colour and, as its window,
    ``value_range(c)`` (the channel's lowest and highest value), within the
    type's range for integers.
    """
    channels = _fitting(display, n_channels) or [_channel() for _ in range(n_channels)]
    mode = (display or {}).get("mode")
    if not names and not any(map(_shown, channels)) and mode not in _MODEL_OF_MODE:
        return None
    limits = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    entries = []
    for c, ch in enumerate(channels):
        entry: dict = {"active": True}
        if names:
            entry["label"] = names[c]
        entry["color"] = _color_of(ch) or ("FFFFFF" if n_channels == 1 else DEFAULT_COLORS[c % len(DEFAULT_COLORS)])
        low, high = ch["window"] or (value_range(c) if value_range is not None else
                                     (float(limits.min), float(limits.max)) if limits else (0.0, 1.0))
        entry["window"] = {"start": float(low), "end": float(high),
                           "min": float(limits.min) if limits else min(float(low), 0.0),
                           "max": float(limits.max) if limits else float(high)}
        entries.append(entry)
    omero: dict = {"channels": entries}
    if mode in _MODEL_OF_MODE:
        omero["rdefs"] = {"model": _MODEL_OF_MODE[mode]}
    return omero


def select_channel(display: dict | None, channel: int) -> dict | None:
    """The display settings of one channel (its colour and range; the mode is for several)."""
    if not display or not 0 <= channel < len(display.get("channels", [])):
        return None
    return {"mode": None, "channels": [display["channels"][channel]]}


def _fitting(display: dict | None, n_channels: int) -> list[dict] | None:
    """The channels' settings, where there is one per channel."""
    if not display or len(display.get("channels", [])) != n_channels:
        return None
    return display["channels"]
