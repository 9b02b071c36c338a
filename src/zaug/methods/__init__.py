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
import os
import shlex
from pathlib import Path

from ..classic import CLASSICAL_METHODS, ClassicalInterpolator
from ..errors import InputError
from ..volume import region_text

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


def is_model_folder(path) -> bool:
    """Whether ``path`` is a folder zaug trained into (a finished model, or a run that did not finish)."""
    path = Path(path)
    return path.is_dir() and not str(path).rstrip("/").endswith(".zarr") and (
        (path / "config.json").is_file() or (path / "run.json").is_file())


def describe_package(path) -> dict | None:
    """What a bioimage.io package (``.zip`` or folder with ``rdf.yaml``) that ``zaug export`` wrote says of
    its model, or None for anything else.

    >>> describe_package(".") is None
    True
    """
    import zipfile

    path = Path(path)
    try:
        if path.is_dir():
            rdf_file = path / "rdf.yaml"
            raw = _capped(rdf_file.stat().st_size, path, lambda: rdf_file.read_bytes()) if rdf_file.is_file() else None
        elif path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as package:
                raw = (_capped(package.getinfo("rdf.yaml").file_size, path, lambda: package.read("rdf.yaml"))
                       if "rdf.yaml" in package.namelist() else None)
        else:
            raw = None
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError):  # unreadable: not a package to us
        return None
    if raw is None:
        return None
    rdf = _package_description(raw, path)
    if not isinstance(rdf, dict):
        return None
    zaug = (rdf.get("config") or {}).get("zaug") if isinstance(rdf.get("config"), dict) else None
    return {"path": str(path), "package": True, "name": _short(rdf.get("name")),
            "format_version": _short(rdf.get("format_version")), "zaug": zaug if isinstance(zaug, dict) else None}


#: the largest package description (rdf.yaml) read: zaug's are a few kB
RDF_MAX_BYTES = 1_000_000


def _capped(size: int, path: Path, read):
    if size > RDF_MAX_BYTES:
        raise InputError(f"{path}: its rdf.yaml holds {size:,} bytes, far more than a model description; it is not "
                         "read (a damaged or hostile package?).")
    return read()


def _package_description(raw: bytes, path: Path):
    """rdf.yaml's content, read safely: no Python objects, and no aliases (a few lines of them can expand into
    gigabytes)."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("it uses YAML aliases")
            return super().compose_node(parent, index)

    try:
        return yaml.load(raw.decode("utf-8"), Loader=NoAliases)  # noqa: S506 - a SafeLoader
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else \
            "it nests too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise InputError(f"{path}: its rdf.yaml cannot be read as a model description ({reason}).") from None


def _short(value, most: int = 80):
    """A field of a package's description as printed: a short scalar, else a mark that it is not one."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value) if isinstance(value, str) else f"<{type(value).__name__}>"
    return text if len(text) <= most else text[:most] + "..."


def format_package_info(info: dict) -> str:
    """:func:`describe_package` in words."""
    zaug = info["zaug"]
    text = f"{info['path']}: a bioimage.io model package ({info['name']}, format {info['format_version']})"
    if not zaug:
        return text + ", not exported by zaug."
    size = zaug.get("train_voxel_size")
    size = (" x ".join(f"{v:g}" for v in size) if isinstance(size, list) and len(size) == 3
            and all(isinstance(v, (int, float)) for v in size) else "?")
    field = {key: _short(zaug.get(key)) for key in ("version", "method", "preset", "steps", "train_unit")}
    lines = [text + f", exported by zaug {field['version']} from a {field['method']} ({field['preset']} "
             f"preset) model trained {field['steps']} steps at voxel size {size} {field['train_unit']}"]
    method = zaug.get("method")
    if zaug.get("self_check") and method in LEARNED:
        try:
            lines.append(_short(learned_module(method).format_self_check(zaug["self_check"]), 1000))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    lines.append("It runs in bioimage.io tools (bioimageio.core, deepImageJ, ilastik); zaug predict uses the model "
                 "folder it was exported from.")
    return "\n".join(lines)


#: The configuration class of each learned method's model files, and the name its messages use.
CONFIGS = {"zaugnet": ("ZAugNetConfig", "ZAugNet"), "zaugnet+": ("ZAugNetConfig", "ZAugNet"),
           "niiv": ("NiivConfig", "niiv"), "selfnet": ("SelfNetConfig", "selfnet"), "resin": ("ResinConfig", "resin")}


def _check_config(path: Path, raw: dict) -> None:
    """Refuse a finished model's config.json as loading it for prediction would (an edit, a removed key)."""
    from ._common import newer_hint, validated_config

    if not raw:
        raise InputError(f"{path}/config.json is not a zaug model configuration (it holds no settings).")
    method = raw.get("method")
    if method not in CONFIGS:
        raise InputError(f"{path}/config.json names the method {method!r}, which this zaug does not know (known: "
                         f"{', '.join(CONFIGS)}){newer_hint(str(raw.get('zaug_version', '')))}.")
    class_name, name = CONFIGS[method]
    validated_config(getattr(learned_module(method), class_name), raw, path, name)


def describe_model(path) -> dict:
    """What a model folder holds, read from its files without loading a network.

    Returns
    -------
    dict
        ``finished``; ``method``, ``preset``, ``zaug_version``, ``train_voxel_size``, ``train_unit``,
        ``steps``, ``seconds``, ``self_check`` and ``training_stacks`` (shape, type, voxel size of each) of a
        finished model, or the ``step`` an unfinished run
        reached; ``sizes_mb`` of the weights and of the resume state (``checkpoint/``).

    Examples
    --------
    >>> describe_model(".")
    Traceback (most recent call last):
    ...
    zaug.errors.InputError: . is not a zaug model folder (no config.json or run.json).
    """
    path = Path(path)
    if not is_model_folder(path):
        raise InputError(f"{path} is not a zaug model folder (no config.json or run.json).")

    from ._common import _read_json

    def read(name) -> dict:  # what is not a readable JSON object counts as empty
        value = _read_json(path / name)
        return value if isinstance(value, dict) else {}

    def megabytes(part: Path) -> float:  # links are not followed: what they point to is not the model's
        if part.is_symlink():
            return 0.0
        files = ([Path(root, name) for root, _, names in os.walk(part) for name in names] if part.is_dir()
                 else [part] if part.is_file() else [])
        return round(sum(f.lstat().st_size for f in files if not f.is_symlink() and f.is_file()) / 1e6, 1)

    config, run = read("config.json"), read("run.json")
    info = {"path": str(path), "finished": (path / "config.json").is_file(),
            "method": config.get("method", run.get("method")), "preset": config.get("preset", run.get("preset")),
            "zaug_version": config.get("zaug_version", run.get("zaug_version")),
            "sizes_mb": {"weights": megabytes(path / "model.safetensors"),
                         "checkpoint": megabytes(path / "checkpoint")}}
    if info["finished"]:
        _check_config(path, config)
        summary = config.get("summary") or {}
        stacks = run.get("data")
        info.update(train_voxel_size=config.get("train_voxel_size"), train_unit=config.get("train_unit"),
                    steps=summary.get("steps"), seconds=summary.get("seconds"),
                    self_check=config.get("self_check") or {},
                    sigma_estimate=config.get("sigma_estimate") if isinstance(config.get("sigma_estimate"), dict)
                    else {},
                    training_stacks=stacks if isinstance(stacks, list) else [], init=run.get("init"))
    else:
        loop = read("checkpoint/state.json").get("loop") or {}
        info.update(step=loop.get("step", 0), budget=run.get("budget"), resume_command=resume_command(path, run))
    return info


def resume_command(path: Path, run: dict) -> str:
    """The ``zaug train`` command an unfinished run's ``run.json`` was started with, as far as it records it:
    what resume compares (method, preset, budget, seed, the method's options, the stacks by file name)."""
    def flag(name, value):
        return f"--{name} {shlex.quote(value) if isinstance(value, str) else repr(value)}"

    parts = ["zaug train", flag("method", run.get("method")), flag("preset", run.get("preset"))]
    budget = run.get("budget") if isinstance(run.get("budget"), dict) else {}
    parts += [flag(key, budget[key]) for key in ("steps", "minutes") if budget.get(key) is not None]
    parts += [flag("seed", run.get("seed"))] if run.get("seed") is not None else []
    parts += ["--no-adversarial"] if run.get("adversarial") is False else []
    parts += [flag(key, run[key]) for key in ("factor", "degradation", "init") if run.get(key) is not None]
    sigma = "auto" if run.get("sigma_auto") else run.get("sigma")
    parts += [flag("sigma", sigma)] if sigma is not None else []
    parts += [f"--{'' if run['renoise'] else 'no-'}renoise"] if isinstance(run.get("renoise"), bool) else []
    parts += [flag("axial-angle", run["axial_angle"])] if run.get("axial_angle") else []
    rows = [row for row in run.get("data") or [] if isinstance(row, dict)]
    if rows and rows[0].get("read_with"):  # the reading options apply to every stack
        parts.append(str(rows[0]["read_with"]))
    stacks = [shlex.quote(str(row.get("path") or row["file"])) if row.get("path") or row.get("file") else "STACK"
              for row in rows]
    return " ".join(parts + ["-o", shlex.quote(str(path))] + (stacks or ["STACK"]))


def below_interpolation(self_check) -> str:
    """A sentence for a model whose self-check scored it below the best interpolation, else ``''``.

    >>> below_interpolation({"gain_db": -0.43})[:68]
    'Its self-check scored this model 0.43 dB below interpolation on held'
    >>> below_interpolation({"gain_db": 0.8})
    ''
    """
    gain = self_check.get("gain_db") if isinstance(self_check, dict) else None
    if not isinstance(gain, (int, float)) or not gain < 0:
        return ""
    return (f"Its self-check scored this model {-gain:.2f} dB below interpolation on held-out data of the stacks it "
            "was trained on: interpolation (zaug predict cubic) may serve better; train longer, or compare both on "
            "your data with zaug evaluate.")


def format_model_info(info: dict) -> str:
    """:func:`describe_model`'s dict as the lines ``zaug info MODEL_DIR`` prints."""
    name = f"{info['method']} ({info['preset']} preset)" if info.get("preset") else str(info["method"])
    version = f", zaug {info['zaug_version']}" if info.get("zaug_version") else ""
    sizes = info["sizes_mb"]
    if not info["finished"]:
        budget = info.get("budget") or {}
        of = (f" of {budget['steps']}" if budget.get("steps") else
              f" of a {budget['minutes']:g}-minute budget" if budget.get("minutes") else "")
        said = (f"{info['path']}: an unfinished {name} run{version}, at step {info['step']}{of} "
                f"(checkpoint {sizes['checkpoint']:g} MB); run the same 'zaug train' command again to resume it")
        if not info.get("resume_command"):
            return said + "."
        return (f"{said}:\n  {info['resume_command']}\n(a stack renamed or moved since resumes too, given by its new "
                "name; other settings start a new run, which needs --overwrite or another -o).")
    lines = [f"{info['path']}: {name} model{version}"]
    if info.get("train_voxel_size"):
        lines.append("trained on voxel size z {:g}, y {:g}, x {:g} {}".format(*info["train_voxel_size"],
                                                                             info.get("train_unit") or "")
                     + (f"; {info['steps']} steps in {info['seconds']:.0f} s" if info.get("steps") else ""))
    stacks = info.get("training_stacks") or []
    try:
        shown = [(f"{st['file']}, " if st.get("file") else "")
                 + (f"{region_text(st['region'])} (--crop): " if st.get("region") else "")
                 + f"{'x'.join(map(str, st['shape']))} {st['dtype']}"
                 + (f" at {' x '.join(f'{v:g}' for v in st['voxel_size'])} {st['unit']}" if len(stacks) > 1 else "")
                 for st in stacks[:4]]
        if len(stacks) > 1:  # the voxel size above is the first stack's
            lines.append(f"{len(stacks)} training stacks (the voxel size above is the first's): " + "; ".join(shown)
                         + (f"; and {len(stacks) - 4} more" if len(stacks) > 4 else ""))
        elif stacks:
            lines.append(f"training stack: {shown[0]}")
    except (KeyError, TypeError, ValueError, AttributeError):  # an older or edited run.json: leave it out
        pass
    if info.get("init"):
        lines.append(f"started from the weights of {info['init']}")
    if (info.get("sigma_estimate") or {}).get("sigma") is not None:  # --sigma auto
        from ..data.lateral import format_sigma_estimate

        try:
            lines.append("--sigma auto: " + format_sigma_estimate(info["sigma_estimate"]))
        except (KeyError, TypeError, ValueError):  # an older or edited estimate: leave it out
            pass
    if info.get("self_check") and info.get("method") in LEARNED:
        try:
            lines.append(learned_module(info["method"]).format_self_check(info["self_check"]))
        except (KeyError, TypeError, ValueError):  # an older or edited self-check: leave it out
            pass
        if below := below_interpolation(info["self_check"]):
            lines.append(below)
    lines.append(f"weights {sizes['weights']:g} MB" + (f"; checkpoint/ {sizes['checkpoint']:g} MB (the training's "
                                                       "last state: prediction and --init do not use it, so it may "
                                                       "be deleted)" if sizes["checkpoint"] else ""))
    return "\n".join(lines)


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
            from ..checkpoint import read_json

            raw = read_json(config_file)
        except (OSError, ValueError) as exc:
            raise InputError(f"{config_file} cannot be read as a zaug model configuration ({exc}).") from exc
        method = raw.get("method") if isinstance(raw, dict) else None
        if not isinstance(method, str) or method not in LEARNED:
            from ._common import newer_hint

            hint = newer_hint(raw.get("zaug_version", "")) if isinstance(raw, dict) else ""
            raise InputError(f"{config_file} names no method this zaug can load (method {method!r}; "
                             f"known: {', '.join(LEARNED)}{hint}).")
        return learned_module(method).load(path, device=device)
    if spec in LEARNED:
        raise InputError(f"{spec!r} must be trained first: run 'zaug train STACK --method {spec} -o MODEL_DIR' "
                         "and pass MODEL_DIR.")
    if describe_package(spec) is not None:
        raise InputError(f"{spec} is a bioimage.io package: it runs in bioimage.io tools (bioimageio.core, "
                         "deepImageJ, ilastik); zaug predict uses the model folder it was exported from.")
    raise InputError(f"{spec!r} is neither a method ({', '.join(CLASSICAL_METHODS)}) nor a model folder.")
