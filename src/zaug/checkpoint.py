"""Model and training-state files: safetensors for tensors, JSON for the rest.

Nothing is ever unpickled: weights, optimiser moments and random-generator
states are tensors in a ``.safetensors`` file; step counts, hyper-parameters
and the configuration are JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from .errors import InputError
from .io import atomic_path


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _under(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors stored under ``prefix.``, named without it."""
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_module_tensors(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    state = _under(prefix, tensors)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:  # torch's message runs over many lines: its first says what
        first = str(exc).strip().splitlines()[0].rstrip(":. ")
        raise InputError(f"the stored weights do not fit the network of their configuration ({first}).") from exc


def build_to_fit(build, prefix: str, tensors: dict[str, torch.Tensor], device) -> torch.nn.Module:
    """The network ``build()`` makes, on ``device``, with the stored weights under ``prefix`` loaded.

    It is first built without memory (PyTorch's meta device) and its parameters' shapes compared with the
    stored ones, so that a configuration edited to describe a huge network is refused before anything
    that size is allocated.
    """
    with torch.device("meta"):
        shell = build()
    stored = {k: tuple(v.shape) for k, v in _under(prefix, tensors).items()}
    wanted = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    if stored != wanted:
        name = (next((k for k in wanted if stored.get(k) != wanted[k]), None)
                or next(k for k in stored if k not in wanted))
        raise InputError(f"the stored weights do not fit the network of their configuration ({name}: "
                         f"{stored.get(name, 'missing')} stored, {wanted.get(name, 'none')} configured).")
    net = build().to(device)
    load_module_tensors(prefix, net, tensors)
    return net


def optimizer_state(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state into tensors and JSON-able hyper-parameters."""
    sd = opt.state_dict()
    tensors = {}
    for idx, per_param in sd["state"].items():
        for key, value in per_param.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def load_optimizer_state(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    # read whole, not memory-mapped: Windows cannot replace or delete a mapped file, and a resumed run
    # replaces the checkpoint it was loaded from
    return load(_regular_file(Path(path)).read_bytes())


#: the largest JSON file of a model folder read (zaug's are a few kB; a checkpoint's state a few hundred)
JSON_MAX_BYTES = 20_000_000


def read_json(path: Path):
    """A model folder's JSON file: a regular file (not a pipe or device, which would block or never end) of
    at most ``JSON_MAX_BYTES``, nested no deeper than Python parses; else OSError or ValueError."""
    path = _regular_file(Path(path))
    size = path.stat().st_size
    if size > JSON_MAX_BYTES:
        raise ValueError(f"{path.name} holds {size:,} bytes, far more than zaug writes there")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError(f"{path.name} nests too deeply") from None


def _regular_file(path: Path) -> Path:
    if path.exists() and not path.is_file():
        raise OSError(f"{path.name} is not a regular file (a pipe or device?)")
    return path


def save_state(directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``state.safetensors`` + ``state.json`` into ``directory`` atomically (as one folder)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        (tmp / "state.safetensors").write_bytes(save(tensors))  # save_file would make it private (mode 0600)
        (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=_json_default), encoding="utf-8")


def load_state(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    directory = Path(directory)
    try:
        tensors = _read_tensors(directory / "state.safetensors")
        meta = read_json(directory / "state.json")
    except (OSError, ValueError, SafetensorError) as exc:
        raise InputError(f"the checkpoint in {directory} is damaged ({exc}); pass --overwrite to start again.") from exc
    return tensors, meta


def save_model(model_dir: Path, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
    """``model.safetensors`` + ``config.json`` (written last: its presence marks a complete model)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.safetensors") as tmp:
        # as bytes: safetensors' save_file writes files only their owner can read, so a colleague or a
        # cluster worker running as another user could not load the model
        tmp.write_bytes(save(tensors, metadata={"format": "pt", "zaug_method": str(config.get("method"))}))
    with atomic_path(model_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=_json_default), encoding="utf-8")


def load_model(model_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    model_dir = Path(model_dir)
    cfg_file, weights = model_dir / "config.json", model_dir / "model.safetensors"
    if not cfg_file.exists() or not weights.exists():
        raise InputError(f"{model_dir} is not a complete zaug model (config.json and model.safetensors needed).")
    try:
        return _read_tensors(weights), read_json(cfg_file)
    except (OSError, ValueError, SafetensorError) as exc:
        raise InputError(f"the model in {model_dir} cannot be read ({exc}).") from exc


def _json_default(obj: Any):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")
