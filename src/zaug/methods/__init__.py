"""The registry of methods: classical ones by name, learned ones by name or model folder.

A learned method module provides

- ``fit(volumes, out_dir, options) -> Path``: train on the user's stacks, save
  the model (safetensors weights + ``config.json``) in ``out_dir``;
- ``load(model_dir, device) -> ZInterpolator``: the trained model, ready to
  predict.

Examples
--------
>>> from zaug.methods import resolve
>>> resolve("cubic")
ClassicalInterpolator('cubic')
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..classic import CLASSICAL_METHODS, ClassicalInterpolator
from ..errors import InputError

#: learned method name -> module implementing fit/load.
LEARNED = {
    "zaugnet": "zaug.methods.zaugnet",
    "zaugnet+": "zaug.methods.zaugnet",
    "niiv": "zaug.methods.niiv",
    "selfnet": "zaug.methods.selfnet",
    "resin": "zaug.methods.resin",
}
#: learned methods that restore isotropic volumes (the rest interpolate planes).
RESTORATION = ("niiv", "selfnet", "resin")
ORACLES = ("linear+smooth",)


def is_learned(name: str) -> bool:
    return name in LEARNED


def is_restoration(name: str) -> bool:
    """True for methods that restore isotropic volumes (niiv, ...) rather than interpolate planes."""
    return name in RESTORATION


def learned_module(name: str):
    """The module that trains and loads method ``name``."""
    if name not in LEARNED:
        raise InputError(f"unknown method {name!r}; known: {', '.join(available())}.")
    return importlib.import_module(LEARNED[name])


def available() -> list[str]:
    """Every method name: classical, learned, then the oracles evaluations can add."""
    return list(CLASSICAL_METHODS) + list(LEARNED) + list(ORACLES)


def method_names(methods) -> list[str]:
    """``methods`` as a list of names without repeats: a sequence, or one string such as ``"linear,cubic"``.

    >>> method_names("linear, cubic,linear")
    ['linear', 'cubic']
    """
    if isinstance(methods, str):
        methods = methods.split(",")
    return list(dict.fromkeys(str(m).strip() for m in methods if str(m).strip()))


def resolve(spec: str, device: str = "auto"):
    """A ready method from a classical name or a model folder.

    Returns a z-interpolator (:mod:`zaug.predict`) or, for restoration models,
    a plane restorer (:mod:`zaug.restore`).
    """
    if spec in CLASSICAL_METHODS:
        return ClassicalInterpolator(spec)
    path = Path(spec)
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.exists():
            if (path / "run.json").exists():
                raise InputError(f"{path} holds a training run that did not finish; run the same 'zaug train' "
                                 "command again to resume it.")
            raise InputError(f"{path} is not a zaug model folder (no config.json).")
        try:
            method = json.loads(config_file.read_text())["method"]
        except (ValueError, KeyError) as exc:
            raise InputError(f"{config_file} is not a valid zaug model configuration.") from exc
        return learned_module(method).load(path, device=device)
    if spec in LEARNED:
        raise InputError(f"{spec!r} must be trained first: run 'zaug train STACK --method {spec} -o MODEL_DIR' "
                         "and pass MODEL_DIR.")
    raise InputError(f"{spec!r} is neither a method ({', '.join(CLASSICAL_METHODS)}) nor a model folder.")
