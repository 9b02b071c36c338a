"""What every learned method needs around training: devices and model folders."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, field_validator

from .. import __version__
from ..errors import InputError, OutputError, ZaugWarning
from ..checkpoint import load_model, read_json, save_model
from ..io._atomic import clear_own_folder
from ..train import Budget, run_training


class ModelConfig(BaseModel):
    """Fields every saved model has in its ``config.json``."""

    model_config = ConfigDict(extra="forbid")
    zaug_version: str = __version__
    seed: int = 0
    train_voxel_size: list[float]
    train_unit: str
    summary: dict = {}
    self_check: dict = {}

    @field_validator("zaug_version")
    @classmethod
    def _a_version_number(cls, version: str) -> str:
        if not re.match(r"\d+(\.\d+)+", version):
            raise ValueError(f"{version!r} is not a zaug version such as {__version__}")
        return version


def data_identity(volumes) -> list[dict]:
    """What identifies the training stacks of a run: shape, type, voxel size and a checksum of a sparse
    grid of their voxels (an unfinished run is resumed only on the same stacks)."""
    rows = []
    for v in volumes:
        step = tuple(max(1, n // 16) for n in v.data.shape)
        sample = np.ascontiguousarray(np.asarray(v.data[tuple(slice(None, None, k) for k in step)]))
        row = {"shape": list(v.data.shape), "dtype": str(v.dtype), "voxel_size": list(v.voxel_size),
               "unit": v.unit, "checksum": hashlib.sha1(sample.tobytes()).hexdigest()[:16]}
        # for the user (zaug info and the command that resumes a run), not compared: a renamed file still resumes
        if v.metadata.get("source"):
            source = Path(str(v.metadata["source"]))
            row["file"], row["path"] = source.name, str(source.absolute())
        if v.metadata.get("region"):  # the box --crop kept (the checksum compares the voxels)
            row["region"] = [list(pair) for pair in v.metadata["region"]]
        if v.metadata.get("read_with"):  # the command line's reading options (--axes, --voxel-size, --crop, ...)
            row["read_with"] = str(v.metadata["read_with"])
        rows.append(row)
    return rows


#: what a run's identity records of its stacks for the user only: resume compares the rest
FOR_THE_USER = ("file", "path", "region", "read_with")


def _as_compared(identity):
    """A run's identity as resume compares it: the stacks by their content, not their names or how they were
    read (:data:`FOR_THE_USER`)."""
    if not isinstance(identity, dict) or not isinstance(identity.get("data"), list):
        return identity
    return dict(identity, data=[{k: v for k, v in row.items() if k not in FOR_THE_USER}
                                if isinstance(row, dict) else row for row in identity["data"]])


def load_config(config_class: type[BaseModel], model_dir: str | Path, name: str):
    """A saved model's weights and validated configuration; a model from a newer zaug is named as such
    (refused where this zaug cannot read its configuration, else loaded with a warning)."""
    tensors, raw = load_model(Path(model_dir))
    config = validated_config(config_class, raw, model_dir, name)
    version = str(raw.get("zaug_version", ""))
    if "zaug_version" not in raw:
        warnings.warn(ZaugWarning(f"{model_dir}/config.json does not say which zaug wrote it; check its results "
                                  "against what it gave before."), stacklevel=3)
    elif _version_key(version) > _version_key(__version__):
        warnings.warn(ZaugWarning(f"{model_dir} was written by zaug {version}, newer than this zaug {__version__}; "
                                  "upgrade zaug if its results are not what that version gave."), stacklevel=3)
    return tensors, config


def validated_config(config_class: type[BaseModel], raw, model_dir, name: str):
    """``raw`` (a model's config.json) as ``config_class``, or one sentence that names what is wrong with it."""
    if not isinstance(raw, dict):
        raise InputError(f"{model_dir}/config.json is not a zaug model configuration (it holds no settings).")
    try:
        return config_class.model_validate(raw)
    except ValueError as exc:
        raise InputError(f"{model_dir}/config.json is not a valid {name} configuration ({_first_error(exc)}"
                         f"{newer_hint(str(raw.get('zaug_version', '')))}).") from exc


def newer_hint(version: str) -> str:
    """``; it was written by zaug X, newer than this zaug Y: upgrade zaug`` where it was, else ``''``."""
    if _version_key(str(version)) > _version_key(__version__):
        return f"; it was written by zaug {version}, newer than this zaug {__version__}: upgrade zaug"
    return ""


def _first_error(exc: ValueError) -> str:
    """The first problem pydantic found, named by its field: ``train_plane_spacing: missing``."""
    errors = getattr(exc, "errors", None)
    if not callable(errors) or not errors():
        return str(exc).splitlines()[0]
    first = errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the file"
    kind = first.get("type", "")
    what = {"missing": "missing", "extra_forbidden": "not a setting this zaug knows"}.get(kind, first.get("msg", ""))
    what = what.removeprefix("Value error, ")  # pydantic's prefix to the sentence of a validator
    return f"{where}: {what}"


@contextlib.contextmanager
def building_networks(model_dir: str | Path, config) -> Iterator[None]:
    """Say in one sentence that a configuration describes networks this zaug cannot build (an edited file, or
    one from a newer zaug), rather than fail inside a network's constructor."""
    try:
        yield
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError, RuntimeError) as exc:
        raise InputError(f"{model_dir}/config.json describes networks this zaug cannot build "
                         f"({type(exc).__name__}: {exc}{newer_hint(config.zaug_version)}).") from exc


def _version_key(version: str) -> tuple[int, ...]:
    """``'0.10.2'`` -> ``(0, 10, 2)``, ``'0.2.0rc1'`` -> ``(0, 2, 0)``; a part without leading digits counts as 0."""
    return tuple(int(m.group()) if (m := re.match(r"\d+", part)) else 0 for part in version.split("+")[0].split("."))


def restoration_summary(config) -> dict:
    """What an evaluation reports of a restoration model's training: steps, self-check, the blur it assumed."""
    estimate = getattr(config, "sigma_estimate", {}) or {}
    return {"steps": config.summary.get("steps"), "self_check_gain_db": config.self_check.get("gain_db"),
            "sigma": config.sigma,  # None: factor / 2
            "sigma_measured_by": estimate.get("method") if estimate.get("sigma") is not None else None,
            "renoise": getattr(config, "renoise", False)}


#: Every option a method's ``fit`` reads (each method refuses those it does not use, by name).
FIT_OPTIONS = frozenset({
    "method", "preset", "steps", "minutes", "seed", "device", "progress", "overwrite", "stop", "checkpoint_every_s",
    "adversarial", "max_gap", "patch", "batch", "lr", "init", "net", "ema", "lateral", "calibrate", "tta", "model_dir",
    "factor", "degradation", "sigma", "renoise", "axial_angle", "cube", "check_only"})


def preset_and_budget(opts: dict, presets: dict) -> tuple[str, Budget]:
    """The preset name (checked) and the training budget from fit options (a misspelt one refused)."""
    unknown = sorted(set(opts) - FIT_OPTIONS)
    if unknown:
        import difflib

        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, FIT_OPTIONS, 1))
                 else repr(key) for key in unknown]
        raise InputError(f"unknown training option{'s' * (len(unknown) > 1)} {', '.join(hints)}; the options are "
                         f"{', '.join(sorted(FIT_OPTIONS))}.")
    preset = opts.get("preset") or "fast"
    if preset not in presets:
        raise InputError(f"unknown preset {preset!r}; use {' or '.join(presets)}.")
    steps = opts.get("steps")
    return preset, Budget(steps=steps, minutes=None if steps else opts.get("minutes"))


# fit options that only some methods use, with the command-line flag that sets them
METHOD_OPTIONS = {"degradation": "--degradation", "sigma": "--sigma", "renoise": "--renoise",
                  "axial_angle": "--axial-angle", "init": "--init"}


def refuse_options(opts: dict, method: str, names: tuple[str, ...]) -> None:
    """Refuse, in one sentence, an option ``method`` does not use (rather than ignore it silently)."""
    for key in names:
        if opts.get(key) not in (None, False):  # (0 and 0.0 equal False: the defaults)
            raise InputError(f"{METHOD_OPTIONS[key]} does not apply to {method}; leave it out.")


def resolve_device(device: str | None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; refuse CUDA when absent."""
    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda.") from exc
    if chosen.type not in ("cpu", "cuda") and not _available(chosen.type):
        raise InputError(f"--device {device} was asked for but this PyTorch has no usable {chosen.type} device; "
                         "use --device cpu (or auto).")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise InputError(f"--device {device} names GPU {chosen.index}, but this machine has "
                         f"{torch.cuda.device_count()} (cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    return chosen


def _available(kind: str) -> bool:
    """Whether PyTorch can run on a device of ``kind`` (``mps``, ``xpu``, ...) here."""
    backend = getattr(torch.backends, kind, None) if kind == "mps" else getattr(torch, kind, None)
    try:
        return bool(backend is not None and backend.is_available())
    except (AttributeError, RuntimeError, AssertionError):
        return False


def prepare_run_dir(out: Path, identity: dict, budget: Budget, overwrite: bool) -> Path:
    """Create the model folder, resume an unfinished identical run, refuse to clobber.

    ``identity`` describes the run (method, settings, data); an unfinished run
    in ``out`` is resumed only when it was started with the same identity and
    budget. ``--overwrite`` removes only what zaug writes in a model folder and
    refuses a folder that holds anything else.
    """
    identity = dict(identity, budget={"steps": budget.steps, "minutes": budget.minutes})
    identity = json.loads(json.dumps(identity))  # tuples -> lists, as read back
    marker = out / "run.json"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give a folder for the model.")
    if out.exists():
        _recover_checkpoint(out)
        for leftover in out.iterdir():  # of a write killed half-way (this run holds the folder)
            if leftover.name.startswith((".zaug-partial-", ".zaug-old-")):
                # a link is removed, never what it points to
                shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        if not _is_model_folder(out):
            raise OutputError(f"{out} is not empty and not a zaug model folder; choose another output.")
        if overwrite:
            clear_own_folder(out, MODEL_FOLDER_ENTRIES, "a zaug model folder", keep=(LOCK_NAME,))
        elif (out / "config.json").exists():
            further = (f", or train on from its weights into another folder (--init {out} -o NEW_FOLDER)"
                       if identity.get("method") in ("zaugnet", "zaugnet+") else "")
            raise OutputError(f"{out} already holds a trained model; pass --overwrite to replace it{further}.")
        elif not (out / "checkpoint").exists():
            marker.unlink()  # a run that failed before its first checkpoint: nothing to resume
        else:
            earlier = _read_json(marker)
            started_by = earlier.pop("zaug_version", None) if isinstance(earlier, dict) else None
            before, now = _as_compared(earlier), _as_compared(identity)
            if before != now:
                differ = _differences(before, now)
                raise OutputError(f"{out} holds an unfinished run with other settings ({differ}); pass "
                                  "--overwrite to start again, or use the same settings to resume it ('zaug info "
                                  f"{out}' gives them).")
            if started_by is not None and started_by != __version__:
                warnings.warn(ZaugWarning(f"the run in {out} was started by zaug {started_by}; this zaug "
                                          f"({__version__}) resumes it, so its steps come from two versions."),
                              stacklevel=3)
    out.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(json.dumps(dict(identity, zaug_version=__version__), indent=1), encoding="utf-8")
    return out


def _recover_checkpoint(out: Path) -> None:
    """Put back a complete checkpoint that a kill left under a hidden name.

    A checkpoint folder is replaced in two renames (the old one aside, the new
    one in); a kill between them leaves no ``checkpoint`` but a complete new
    one (``.zaug-partial-``) and the previous one (``.zaug-old-``). The newer
    complete one is resumed from rather than cleaned away with the rest.
    """
    if (out / "checkpoint").exists():
        return
    complete = [p for prefix in (".zaug-partial-", ".zaug-old-")
                for p in sorted(out.glob(f"{prefix}*checkpoint"), key=lambda p: -p.stat().st_mtime)
                if p.is_dir() and (p / "state.json").is_file() and (p / "state.safetensors").is_file()]
    if complete:
        os.replace(complete[0], out / "checkpoint")


def _differences(earlier, now) -> str:
    """What differs between two run identities, named (the stacks, not their checksums)."""
    if not isinstance(earlier, dict):
        return "unreadable"
    names = {"data": "the stacks", "budget": "the budget (--steps / --minutes)"}
    keys = [k for k in dict.fromkeys([*earlier, *now]) if earlier.get(k) != now.get(k)]
    return ", ".join(names.get(k, k.replace("_", " ")) for k in keys) or "none named"


#: Held (flock) by the training that writes into a model folder.
LOCK_NAME = ".zaug-lock"
#: What zaug writes in a model folder (anything else there is the user's).
MODEL_FOLDER_ENTRIES = ("run.json", "config.json", "model.safetensors", "checkpoint", LOCK_NAME)


def one_training_per_folder(fit):
    """Make ``fit(volumes, out_dir, options)`` refuse a model folder that another training is writing
    into (another process, or another napari widget run in this one), rather than let two runs mix."""
    @functools.wraps(fit)
    def locked(volumes, out_dir, options=None):
        from ..volume import Volume

        if isinstance(volumes, Volume) or not all(isinstance(v, Volume) for v in volumes):
            raise InputError("fit takes a list of zaug Volumes (one or more stacks): fit([volume], out_dir, options).")
        from ..provenance import warn_if_made

        for volume in volumes:  # a zaug output's predicted planes are not measurements to learn from
            warn_if_made(volume, "training", stacklevel=4)
        with _folder_lock(Path(out_dir)):
            return fit(volumes, out_dir, options)

    return locked


@contextlib.contextmanager
def _folder_lock(out: Path):
    if out.exists() and not out.is_dir():
        yield  # refused with its own sentence
        return
    made, lock = not out.exists(), out / LOCK_NAME
    new_lock = not lock.exists()
    made_parents = [p for p in out.absolute().parents if not p.exists()]  # nearest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle, unlock = open(lock, "a", encoding="utf-8"), None
    except OSError as exc:  # a read-only folder, a full disk
        raise OutputError(f"cannot write the model folder {out}: {exc.strerror or exc}; choose another "
                          "folder.") from None
    try:
        try:  # a lock per open file: a second run in this process is refused as another process is
            unlock = _lock_exclusively(handle)
        except OSError:
            raise OutputError(f"another training is writing into {out}; wait for it to end, or choose "
                              "another folder.") from None
        yield
    finally:
        if unlock is not None:
            with contextlib.suppress(OSError):
                unlock()
        handle.close()  # releases the lock (as the end of the process does, however it ends)
        if made and out.is_dir() and [p.name for p in out.iterdir()] == [LOCK_NAME]:  # refused at once
            shutil.rmtree(out, ignore_errors=True)
            for parent in made_parents:  # and the folders made for it, as they were: absent
                try:
                    parent.rmdir()
                except OSError:  # something else was put there meanwhile
                    break
        elif new_lock and not (out / "run.json").exists():  # a folder that is not a run: leave it as it was
            lock.unlink(missing_ok=True)


def _lock_exclusively(handle):
    """Lock an open file without waiting (OSError if another handle holds it); returns what unlocks it."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return lambda: fcntl.flock(handle, fcntl.LOCK_UN)
    import msvcrt  # Windows: a lock on the file's first byte (released at close only after a delay)

    handle.seek(0)
    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def unlock():
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    return unlock


def _read_json(path: Path):
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a zaug model or run (its own files, with zaug's content)."""
    config, run = _read_json(folder / "config.json"), _read_json(folder / "run.json")
    return ((isinstance(config, dict) and "zaug_version" in config)
            or (isinstance(run, dict) and "method" in run))


def _progress_option(value) -> bool | type:
    return value if isinstance(value, type) else bool(value)  # a tqdm subclass passes through


def train_and_save(task, config: ModelConfig, out: Path, budget: Budget, opts: dict, description: str,
                   self_check=None) -> Path:
    """Run the shared training loop, then store summary, self-check and weights in ``out``.

    ``self_check`` computes the held-out scores (default: ``task.self_check()``).
    """
    device = getattr(task, "device", None)  # said on the bar: --device auto picks it
    description = f"{description} ({device.type})" if isinstance(device, torch.device) else description
    summary = run_training(task, out, budget, seed=config.seed, progress=_progress_option(opts.get("progress", True)),
                           description=description,
                           checkpoint_every_s=float(opts.get("checkpoint_every_s", 60.0)), stop=opts.get("stop"))
    config.summary = {k: summary[k] for k in ("steps", "seconds", "best", "resumed", "restarts")}
    if summary["restarts"]:
        warnings.warn(f"{description}: the validation score collapsed and training went back to its best "
                      f"weights {summary['restarts']} time(s); the model saved is the one that validated best.",
                      ZaugWarning, stacklevel=2)
    config.self_check = self_check() if self_check is not None else task.self_check()
    save_model(out, task.weights(), config.model_dump(mode="json"))
    return out
