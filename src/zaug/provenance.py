"""Which planes of a stack the microscope acquired, and how zaug made the others.

Every stack zaug interpolates or restores records, in its metadata and in the
file it is written to, the planes that are the input's planes unchanged
(*acquired*) and the steps that made the rest: zaug's version, the method, the
model (its folder name, a digest of its weights, its training steps and
self-check) and the spacings before and after. A measurement taken from a
predicted plane can then always be told from one taken from an acquired plane,
in Fiji (each plane's label, Image > Show Info), OMERO (a key-value annotation),
napari or Python; and a zaug output given back to training or evaluation is said
to be one (it would learn from, or be scored against, predictions).

In memory, ``Volume.metadata`` holds ``"acquired_z"`` (the physical positions of
the acquired planes, so that crops, plane subsets and unit changes keep it
right) and ``"history"`` (one dict per step). A file holds the acquired planes
by index (:func:`file_record`), whatever voxel size it is later read with.

>>> import numpy as np
>>> from zaug import Volume
>>> from zaug.predict import upsample_z
>>> vol = Volume(np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8), (2.0, 0.5, 0.5), "um")
>>> out = upsample_z(vol, "linear", factor=2)
>>> acquired_mask(out).tolist()
[True, False, True, False, True]
>>> print(summary(out))  # doctest: +ELLIPSIS
made by zaug ...: linear interpolation, 3 planes 2 um apart to 5 planes 1 um apart; 3 of 5 planes acquired, 2 predicted
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np

from .errors import ZaugWarning
from .volume import position_tolerance

#: the most steps a record keeps (the oldest are dropped): a record read from a file stays small
MAX_STEPS = 20

#: what a step's "operation" may say
OPERATIONS = ("interpolation", "restoration")


def acquired_mask(volume) -> np.ndarray:
    """Per plane of ``volume``: True where it is an acquired plane (all of a stack zaug did not make).

    >>> import numpy as np
    >>> from zaug import Volume
    >>> acquired_mask(Volume(np.zeros((3, 4, 4)), metadata={"acquired_z": [0.0, 2.0]})).tolist()
    [True, False, True]
    """
    positions = volume.metadata.get("acquired_z")
    if positions is None:
        return np.ones(volume.nz, bool)
    positions = np.sort(np.asarray(positions, np.float64))
    if positions.size == 0:
        return np.zeros(volume.nz, bool)
    from .predict import acquired_planes

    z = volume.z_coords()  # each plane against the nearest recorded position, within the stack's tolerance
    return acquired_planes(positions, z, tol=position_tolerance(z))[1]


def is_made_by_zaug(volume) -> bool:
    """Whether ``volume`` (or the file it was read from) is a zaug output."""
    return bool(volume.metadata.get("history"))


def after_step(volume, z_out: np.ndarray, operation: str, method) -> dict:
    """The metadata of the stack that ``method`` makes from ``volume`` with planes at ``z_out``.

    Interpolation keeps the acquired planes that lie at an output position
    (:func:`zaug.predict.keep_acquired` copies them); restoration changes every plane.
    """
    from .predict import acquired_planes

    z_in = volume.z_coords()
    z_out = np.asarray(z_out, np.float64)
    if operation == "interpolation":
        idx, at = acquired_planes(z_in, z_out)
        kept = at & acquired_mask(volume)[idx]
    else:
        kept = np.zeros(len(z_out), bool)
    step = {"zaug": _version(), "operation": operation, "method": method_name(method),
            "input": _input_facts(volume, z_in),
            "output": _stack_facts(None, z_out, volume.unit)}
    model = model_facts(method)
    if model:
        step["model"] = model
    history = [dict(s) for s in volume.metadata.get("history") or ()] + [step]
    return dict(volume.metadata, method=step["method"], acquired_z=[float(z) for z in z_out[kept]],
                history=history[-MAX_STEPS:])


def noise_matched(metadata: dict) -> dict:
    """``metadata`` with its last step marked as having had noise added to its new planes."""
    history = [dict(s) for s in metadata.get("history") or ()]
    if history:
        history[-1]["noise_matched"] = True
    return dict(metadata, history=history, noise_matched=True)


def method_name(method) -> str:
    if isinstance(method, str):
        return method
    return str(getattr(method, "name", type(method).__name__))


def model_facts(method) -> dict | None:
    """A learned model's identity: folder name, weights digest, preset, training steps, self-check gain."""
    inner = getattr(method, "method", None)  # a wrapper for tiles (zaug.restore.RestorationTiles)
    if inner is not None and not isinstance(inner, str):
        method = inner
    config = getattr(method, "config", None)
    folder = getattr(method, "model_dir", None)
    if config is None and folder is None:
        return None
    facts: dict = {}
    if folder is not None:
        facts["folder"] = Path(folder).name
        weights = Path(folder) / "model.safetensors"
        if weights.is_file():
            facts["weights_sha256"] = _digest(weights)
    if config is not None:
        for key in ("method", "preset"):
            if isinstance(getattr(config, key, None), str):
                facts[key] = getattr(config, key)
        summary = getattr(config, "summary", None) or {}
        if isinstance(summary, dict) and summary.get("steps") is not None:
            facts["steps"] = int(summary["steps"])
        check = getattr(config, "self_check", None) or {}
        if isinstance(check, dict) and check.get("gain_db") is not None:
            facts["self_check_gain_db"] = round(float(check["gain_db"]), 3)
    return facts


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _stack_facts(source, z: np.ndarray, unit: str) -> dict:
    from .io._units import significant  # zaug.io reads records with this module: not at import
    facts = {"planes": int(len(z)), "z_spacing": significant(float(np.mean(np.diff(z)))) if len(z) > 1 else None,
             "unit": unit}
    if len(z) > 2 and not np.allclose(np.diff(z), np.mean(np.diff(z)), rtol=1e-6, atol=0):
        facts["uneven"] = True
    if source:
        facts["file"] = Path(str(source)).name
    return facts


def _input_facts(volume, z_in: np.ndarray) -> dict:
    facts = _stack_facts(volume.metadata.get("source"), z_in, volume.unit)
    if volume.metadata.get("region"):  # the box --crop (Volume.crop) kept, in the file's voxels
        facts["region"] = [[None if v is None else int(v) for v in pair] for pair in volume.metadata["region"]]
    if isinstance(volume.metadata.get("series"), int):  # which image series (scene) of a file of several
        facts["series"] = int(volume.metadata["series"])
    return facts


def _version() -> str:
    from . import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# for people


def plane_labels(volume) -> list[str] | None:
    """A label per plane (``"acquired"``, ``"predicted (zaugnet)"``, ...) for a zaug output, else None."""
    if not is_made_by_zaug(volume):
        return None
    history = volume.metadata["history"]
    methods = "+".join(dict.fromkeys(str(s.get("method")) for s in history))  # each once, in order
    made = f"{'restored' if history[-1].get('operation') == 'restoration' else 'predicted'} ({methods})"
    return ["acquired" if a else made for a in acquired_mask(volume)]


def summary(volume) -> str | None:
    """One line on how zaug made ``volume`` and how many of its planes are acquired; None if it did not."""
    if not is_made_by_zaug(volume):
        return None
    steps = "; then ".join(_describe_step(s) for s in volume.metadata["history"])
    return f"made by zaug {volume.metadata['history'][-1].get('zaug', '?')}: {steps}; {plane_counts(volume)}"


def plane_counts(volume) -> str:
    """``'30 of 59 planes acquired, 29 predicted'`` (restored, for a restoration)."""
    acquired = int(acquired_mask(volume).sum())
    made = "restored" if volume.metadata["history"][-1].get("operation") == "restoration" else "predicted"
    return f"{acquired} of {volume.nz} planes acquired, {volume.nz - acquired} {made}"


def _describe_step(step: dict) -> str:
    what = "restoration" if step.get("operation") == "restoration" else "interpolation"
    name = f"{step.get('method') or 'unnamed'} {what}"
    model = step.get("model") or {}
    if model:
        weights = f", weights {model['weights_sha256']}" if model.get("weights_sha256") else ""
        name += f" (model {model.get('folder', '?')}{weights})"
    parts = [name]
    src, dst = step.get("input") or {}, step.get("output") or {}
    if src.get("planes") and dst.get("planes"):
        parts.append(f"{_planes(src)} to {_planes(dst)}")
    if src.get("file"):
        src = dict(src, file="".join(c if c.isprintable() else "?" for c in src["file"]))  # one line, always
        box = src.get("region")
        region = " region " + ",".join(f"{a if a is not None else ''}:{b if b is not None else ''}" for a, b in box) \
            if box else ""
        series = f" series {src['series']}" if src.get("series") is not None else ""
        parts.append(f"from {src['file']}{series}{region}")
    if step.get("noise_matched"):
        parts.append("noise matched")
    return ", ".join(parts)


def _planes(facts: dict) -> str:
    text = f"{facts['planes']} planes"
    spacing = facts.get("z_spacing")
    if isinstance(spacing, (int, float)):
        text += f" {spacing:g} {facts.get('unit', '')}".rstrip() + " apart"
        text += " on average" if facts.get("uneven") else ""
    return text


def warn_if_made(volume, use: str, stacklevel: int = 3) -> None:
    """Warn that ``volume`` is a zaug output with predicted planes before it is used for ``use``."""
    if not is_made_by_zaug(volume):
        return
    predicted = int((~acquired_mask(volume)).sum())
    if predicted == 0:
        return
    name = volume.metadata.get("name") or "the stack"
    consequence = {"training": "a model trained on it learns from zaug's own predictions, not from the microscope",
                   "evaluation": "the planes removed and scored include predictions, not measurements"}[use]
    warnings.warn(ZaugWarning(f"{name} was made by zaug: {predicted} of its {volume.nz} planes are predicted; "
                              f"{consequence} (use the acquired stack it was made from)."), stacklevel=stacklevel)


def said_once(volume, use: str):
    """``volume`` after :func:`warn_if_made` for ``use``, without its record, so that the steps that use it
    (an evaluation's trainings) do not say it again."""
    warn_if_made(volume, use, stacklevel=4)
    if not is_made_by_zaug(volume):
        return volume
    return volume.replace(metadata={k: v for k, v in volume.metadata.items() if k not in ("history", "acquired_z")})


# ---------------------------------------------------------------------------------------------
# in files


def file_record(volume) -> dict | None:
    """What a file holds of ``volume``'s provenance: acquired planes by index and the steps; None if none."""
    if not is_made_by_zaug(volume):
        return None
    return {"acquired_planes": [int(i) for i in np.flatnonzero(acquired_mask(volume))],
            "history": [dict(s) for s in volume.metadata["history"]][-MAX_STEPS:]}


def file_record_text(volume) -> str | None:
    record = file_record(volume)
    return None if record is None else json.dumps(record, separators=(",", ":"))


def from_file_record(record, volume, path) -> dict:
    """``volume``'s metadata with the record read from ``path`` (JSON text or a dict); a damaged record is
    said and left out (its planes then all count as acquired)."""
    if record is None:
        return volume.metadata
    problem = None
    try:
        if isinstance(record, (str, bytes)):
            if len(record) > 4 * 2**20:
                raise ValueError("larger than 4 MB")
            record = json.loads(record)
        history, indices = _checked(record, volume.nz)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        problem = str(exc) if not isinstance(exc, RecursionError) else "nested too deep"
    if problem is not None:
        warnings.warn(ZaugWarning(f"the zaug record in {path} of how its planes were made is damaged ({problem}); "
                                  "it is ignored, so every plane counts as acquired."), stacklevel=4)
        return volume.metadata
    z = volume.z_coords()
    return dict(volume.metadata, history=history, acquired_z=[float(z[i]) for i in indices])


def _checked(record, nz: int) -> tuple[list[dict], list[int]]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    history, indices = record.get("history"), record.get("acquired_planes")
    if not isinstance(history, list) or not history or not all(isinstance(s, dict) for s in history):
        raise ValueError("no list of steps")
    if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise ValueError("the acquired planes are not a list of plane numbers")
    if any(i < 0 or i >= nz for i in indices) or len(set(indices)) != len(indices):
        raise ValueError(f"its acquired plane numbers do not fit the file's {nz} planes")
    steps = [_plain(step, STEP_FIELDS) for step in history[-MAX_STEPS:]]
    for step in steps:
        if step.get("operation") not in OPERATIONS:
            raise ValueError(f"a step's operation is {step.get('operation')!r}")
    return steps, sorted(indices)


_STACK_FIELDS = {"planes": int, "z_spacing": float, "unit": str, "file": str, "uneven": bool, "region": list,
                 "series": int}
#: what a step read from a file may hold, and of which type (anything else is left out: a file is not trusted)
STEP_FIELDS = {"zaug": str, "operation": str, "method": str, "noise_matched": bool,
               "input": _STACK_FIELDS, "output": _STACK_FIELDS,
               "model": {"folder": str, "weights_sha256": str, "method": str, "preset": str, "steps": int,
                         "self_check_gain_db": float}}


def _finite(value) -> float | None:
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _plain(entry: dict, fields: dict) -> dict:
    kept = {}
    for key, kind in fields.items():
        value = entry.get(key)
        if isinstance(kind, dict):
            if isinstance(value, dict):
                kept[key] = _plain(value, kind)
        elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            number = _finite(value)  # JSON's NaN and Infinity (and 10**400) are not numbers to print or write back
            if number is not None:
                kept[key] = number
        elif isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            kept[key] = value[:200] if isinstance(value, str) else value
    if isinstance(kept.get("region"), list):  # three [start, stop] pairs of plane/pixel numbers
        box = kept["region"]
        if not (len(box) == 3 and all(isinstance(p, list) and len(p) == 2 and
                                      all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in p)
                                      for p in box)):
            del kept["region"]
    return kept
