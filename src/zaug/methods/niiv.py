"""niiv: arbitrary-scale isotropic restoration learned from lateral planes (seed 003).

The network sees a coarsely sampled axial-looking plane and answers the
intensity at any continuous coordinate, so one model gives any output z
spacing. It is trained only on the user's stack: xy planes degraded along one
lateral axis (average pooling, as niiv, or a Gaussian PSF then subsampling)
are the inputs, the original xy planes the targets. At prediction it restores
every xz and yz plane and fuses the two (:mod:`zaug.restore`).

Examples
--------
>>> import tempfile
>>> from zaug.methods import niiv
>>> from zaug.sample import load_sample
>>> vol = load_sample().replace(data=load_sample().data[::4, :64, :64], voxel_size=(1.16, 0.26, 0.26))
>>> scratch = tempfile.TemporaryDirectory()  # removed with its contents when done
>>> model = niiv.load(niiv.fit([vol], scratch.name + "/m", {"steps": 2, "progress": False}))
>>> model.name, round(model.config.factor, 2)
('niiv', 4.46)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from ..checkpoint import (build_to_fit, load_module_tensors, load_optimizer_state, module_tensors,
                          optimizer_state)
from ..data.lateral import (training_factor, degradation_model, lateral_pairs, n_samples, renoise_option,
                            resolve_sigma, split_lateral_validation)
from ..errors import InputError
from ..metrics import psnr, sharpness_ratio, ssim
from ..nets.edsr_liif import NIIV, niiv_preset, rows_to_coords
from ..restore import ClassicalRestorer
from ..train import seed_everything
from ..volume import Volume, check_volume
from ._common import (ModelConfig, building_networks, data_identity, load_config, one_training_per_folder,
                      prepare_run_dir, preset_and_budget, refuse_options, resolve_device, restoration_summary,
                      train_and_save)


class NiivTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patch_lr_rows: int  # low-res rows per training patch (the high-res patch is factor times taller)
    patch_width: int
    batch: int
    lr: float
    lr_final: float
    pool: int  # pairs drawn once from the training planes and re-sampled with flips


TRAINING_PRESETS = {
    "paper": NiivTraining(patch_lr_rows=12, patch_width=96, batch=16, lr=5e-5, lr_final=5e-5, pool=4096),
    "fast": NiivTraining(patch_lr_rows=10, patch_width=64, batch=16, lr=1e-3, lr_final=2e-5, pool=2048),
}


class NiivConfig(ModelConfig):
    """Everything needed to rebuild and use a trained niiv model (``config.json``)."""

    method: Literal["niiv"] = "niiv"
    preset: Literal["fast", "paper"] = "fast"
    net: dict
    training: NiivTraining
    factor: float
    degradation: Literal["avgpool", "gaussian"] = "avgpool"
    sigma: float | None = None
    sigma_estimate: dict = {}  # the measurement behind sigma 'auto' (measure_axial_sigma)
    renoise: bool = False  # lateral_pairs(renoise=)
    validation_planes: list[int] = []


@one_training_per_folder
def fit(volumes: list[Volume], out_dir: str | Path, options: dict | None = None) -> Path:
    """Train niiv on the lateral planes of the user's stack(s) and save it in ``out_dir``.

    Parameters
    ----------
    volumes : list of Volume
        Anisotropic stacks; the anisotropy factor comes from the first one's
        voxel size unless ``options["factor"]`` is given.
    options : dict
        ``preset``, ``steps`` or ``minutes``, ``seed``, ``device``,
        ``factor``, ``degradation`` ('avgpool' | 'gaussian'), ``sigma``,
        ``progress``, ``overwrite``, ``stop``, ``check_only`` (as in :func:`zaug.methods.zaugnet.fit`).
    """
    opts = dict(options or {})
    refuse_options(opts, "niiv", ("axial_angle", "init"))
    preset, budget = preset_and_budget(opts, TRAINING_PRESETS)
    if not volumes:
        raise InputError("no training stack was given.")
    for vol in volumes:
        check_volume(vol, min_planes=2)
    factor = training_factor(volumes, opts.get("factor"))
    if factor < 1.5:
        raise InputError(f"the stack is nearly isotropic (anisotropy {factor:.2f}); nothing to restore. "
                         "Pass --factor if the voxel size in the file is wrong.")
    degradation, sigma = degradation_model(opts, "avgpool")
    renoise = renoise_option(opts, degradation, sigma)
    sigma, sigma_estimate = resolve_sigma(sigma, volumes, factor, advise=degradation == "gaussian")
    tp = TRAINING_PRESETS[preset]
    config = NiivConfig(preset=preset, net=niiv_preset(preset), training=tp, factor=factor,
                        degradation=degradation, sigma=sigma, sigma_estimate=sigma_estimate, renoise=renoise,
                        seed=int(opts.get("seed") or 0),
                        train_voxel_size=list(volumes[0].voxel_size), train_unit=volumes[0].unit)
    train_vols, val_vol, config.validation_planes = split_lateral_validation(volumes)
    patch = _patch_size(tp, factor, degradation, volumes)
    identity = {"method": "niiv", "preset": preset, "seed": config.seed, "factor": factor,
                "degradation": degradation, "sigma": config.sigma, "renoise": renoise,
                "data": data_identity(volumes)}
    if sigma_estimate:  # --sigma auto: a resume measures again, and must be asked to
        identity["sigma_auto"] = True
    resolve_device(opts.get("device", "auto"))  # refused before the run folder is made
    if opts.get("check_only"):  # every refusal made, nothing trained or written (see zaug.evaluate)
        return None
    out = prepare_run_dir(Path(out_dir), identity, budget, bool(opts.get("overwrite")))
    rng = seed_everything(config.seed)
    pool = _pairs(train_vols, config, patch, tp.pool, rng)
    val = _pairs([val_vol], config, patch, 64, np.random.default_rng(config.seed + 1))
    device = resolve_device(opts.get("device", "auto"))
    task = NiivTask(config, pool, val, device)
    return train_and_save(task, config, out, budget, opts, "niiv")


def _patch_size(tp: NiivTraining, factor: float, degradation: str, volumes: list[Volume]) -> tuple[int, int]:
    smallest = min(min(v.spatial_shape[1:]) for v in volumes)
    h = int(math.ceil(tp.patch_lr_rows * factor))
    h, w = min(h, smallest), min(tp.patch_width, smallest)
    if n_samples(h, factor, degradation) < 3:
        raise InputError(f"the planes ({smallest} pixels) are too small for anisotropy {factor:.2f}: "
                         "at least 3 low-resolution rows per training patch are needed.")
    return h, w


def _pairs(volumes: list[Volume], config: NiivConfig, patch, n: int, rng) -> dict:
    per_volume = max(1, n // len(volumes))
    lows, highs, rows = [], [], None
    for vol in volumes:
        lo, hi, rows = lateral_pairs(vol, config.factor, config.degradation, patch, rng, per_volume,
                                     sigma=config.sigma, renoise=config.renoise)
        lows.append(lo)
        highs.append(hi)
    return {"low": np.concatenate(lows), "high": np.concatenate(highs), "rows": rows}


class NiivTask:
    """One niiv training run for :func:`zaug.train.run_training`."""

    def __init__(self, config: NiivConfig, pool: dict, val: dict, device: torch.device):
        self.config, self.pool, self.val, self.device = config, pool, val, device
        self.net = NIIV(**config.net).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.training.lr)
        h_lr, w = pool["low"].shape[1:]
        self.coords = rows_to_coords(pool["rows"], h_lr, w).to(device)

    def step(self, rng: np.random.Generator, progress: float) -> dict[str, float]:
        tp = self.config.training
        lr_now = tp.lr_final + 0.5 * (tp.lr - tp.lr_final) * (1 + math.cos(math.pi * progress))
        for group in self.opt.param_groups:
            group["lr"] = lr_now
        idx = rng.integers(0, len(self.pool["low"]), tp.batch)
        low, high = self.pool["low"][idx], self.pool["high"][idx]
        if rng.random() < 0.5:  # flip columns: the degraded axis (rows) keeps its sampling
            low, high = low[:, :, ::-1], high[:, :, ::-1]
        low = torch.from_numpy(np.ascontiguousarray(low))[:, None].to(self.device)
        high = torch.from_numpy(np.ascontiguousarray(high)).to(self.device)
        self.net.train()
        pred = self.net(low, self.coords).reshape(high.shape)
        loss = torch.nn.functional.l1_loss(pred, high)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach())}

    def restorer(self) -> "NiivRestorer":
        return NiivRestorer(self.net, self.config, self.device)

    def _val_predictions(self) -> dict[str, np.ndarray]:
        rows = self.val["rows"]
        low = self.val["low"]
        return {"model": self.restorer().restore_planes(low, rows),
                "linear": ClassicalRestorer("linear").restore_planes(low, rows),
                "cubic": ClassicalRestorer("cubic").restore_planes(low, rows)}

    def validate(self) -> dict[str, float]:
        preds = self._val_predictions()
        truth = self.val["high"]
        val_psnr = psnr(preds["model"], truth)
        base = max(psnr(preds["linear"], truth), psnr(preds["cubic"], truth))
        return {"score": val_psnr, "val_psnr": val_psnr, "val_gain_db": val_psnr - base, "val_baseline": "interp"}

    def self_check(self) -> dict:
        preds = self._val_predictions()
        truth = self.val["high"]
        scores = {name: {"psnr": psnr(p, truth), "ssim": ssim(p, truth), "sharpness": sharpness_ratio(p, truth)}
                  for name, p in preds.items()}
        best = max(("linear", "cubic"), key=lambda m: scores[m]["psnr"])
        scores.update(planes=len(truth), best_classical=best, gain_db=scores["model"]["psnr"] - scores[best]["psnr"])
        return scores

    def weights(self) -> dict[str, torch.Tensor]:
        return module_tensors("niiv", self.net)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        load_module_tensors("niiv", self.net, weights)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = dict(self.weights())
        opt_tensors, meta = optimizer_state("opt", self.opt)
        tensors.update(opt_tensors)
        return tensors, {"opt": meta}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.load_weights(tensors)
        load_optimizer_state("opt", self.opt, tensors, meta["opt"])


def format_self_check(sc: dict) -> str:
    m = sc["model"]
    return (f"self-check on {sc['planes']} held-out lateral patches degraded like axial planes: model PSNR "
            f"{m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} vs linear {sc['linear']['psnr']:.2f} dB, cubic "
            f"{sc['cubic']['psnr']:.2f} dB: {sc['gain_db']:+.2f} dB over the best interpolation; sharpness "
            f"{m['sharpness']:.2f} (1.00 = as sharp as the real planes).")


class NiivRestorer:
    """A trained niiv network as a :class:`zaug.restore.PlaneRestorer`."""

    def __init__(self, net: NIIV, config: NiivConfig, device: torch.device, chunk: int = 1 << 16):
        self.net, self.config, self.device, self.chunk = net, config, device, chunk
        self.name = "niiv"
        self.training_summary = restoration_summary(config)

    @torch.no_grad()
    def restore_planes(self, planes_lr: np.ndarray, out_rows: np.ndarray) -> np.ndarray:
        self.net.eval()
        n, h_lr, w = planes_lr.shape
        coords = rows_to_coords(np.asarray(out_rows), h_lr, w).to(self.device)
        lr = torch.from_numpy(np.ascontiguousarray(planes_lr, np.float32))[:, None].to(self.device)
        values = self.net.predict_coords(lr, coords, chunk=self.chunk)
        return values.reshape(n, len(out_rows), w).float().cpu().numpy()


def load(model_dir: str | Path, device: str = "auto") -> NiivRestorer:
    """Load a trained niiv model as a plane restorer."""
    tensors, config = load_config(NiivConfig, model_dir, "niiv")
    dev = resolve_device(device)
    with building_networks(model_dir, config):
        net = build_to_fit(lambda: NIIV(**config.net), "niiv", tensors, dev)
    restorer = NiivRestorer(net, config, dev)
    restorer.model_dir = Path(model_dir)  # named in the record of what it makes (zaug.provenance)
    return restorer
