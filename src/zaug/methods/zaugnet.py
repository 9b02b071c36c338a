"""ZAugNet and ZAugNet+: self-supervised z-slice interpolation (seed papers 000/001).

ZAugNet predicts the plane half-way between two planes (x2 per pass, iterated
for x4, x8). ZAugNet+ adds the relative position ``t`` as an input, so one
pass gives any position: any output spacing, and non-uniform input spacing.

Both learn from the user's own stack: consecutive plane triplets teach the
network to predict a plane from its two neighbours, whose distance is then
twice the spacing it interpolates at prediction time (ZAugNet+ learns several
distances at once). Training uses the paper's losses: Laplacian pyramid (with
the low-pass residual), teacher loss, flow distillation and, unless disabled,
a WGAN-GP critic.

At prediction each new plane is linear interpolation plus weighted shares of
the model's and of cubic interpolation's departures from it, band by band of
in-plane detail, the weights fitted on triplets along the input's lateral axes
whose outer planes are as far apart as the planes being interpolated between
(:meth:`ZAugNetModel.calibration_weights`), then scaled down where the new
planes would vary more than the acquired ones (:func:`variance_cap`).

Examples
--------
>>> from zaug.methods import zaugnet
>>> from zaug.sample import load_sample
>>> import tempfile
>>> vol = load_sample().replace(data=load_sample().data[:12, :64, :64])
>>> scratch = tempfile.TemporaryDirectory()  # removed with its contents when done
>>> model_dir = zaugnet.fit([vol], scratch.name + "/m", {"steps": 2, "progress": False})
>>> model = zaugnet.load(model_dir)
>>> model.name, model.config.method
('zaugnet', 'zaugnet')
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, field_validator
from scipy import ndimage

from ._common import (ModelConfig, building_networks, data_identity, load_config, one_training_per_folder,
                      prepare_run_dir, preset_and_budget, refuse_options, resolve_device, train_and_save)
from ..checkpoint import (build_to_fit, load_model, load_module_tensors, load_optimizer_state, module_tensors,
                          optimizer_state)
from ..classic import interpolate_stack
from ..data.triplets import (LateralTripletSampler, TripletSampler, fewest_planes, split_validation,
                             training_runs, triplet_indices)
from ..errors import InputError, ZaugError, ZaugWarning  # noqa: F401  (ZaugWarning: also imported from here)
from ..evaluate import smooth_oracle
from ..io._units import conversion_factor, significant
from ..losses import gradient_penalty, laplacian_pyramid_loss
from ..metrics import psnr, sharpness_ratio, ssim
from ..progress import advance, part
from ..nets.critic import Critic, critic_preset
from ..nets.ifnet import IFNet, ifnet_preset
from ..nets.zstack import (BAND_SIGMAS, band_split, band_weights, clipping_offset, run_generator, tiled_generator,
                           transfer_planes, weighted_departure)
from ..train import seed_everything
from ..volume import Volume, check_volume, position_tolerance

MODES = ("auto", "direct", "transfer")
DEFAULT_MODE = "direct"
#: Most that noise removal alone can gain over linear interpolation at a plane midway between two.
DENOISING_BOUND_DB = 10 * math.log10(1.5)
#: Weight of each measured plane against the model's estimate of it from its neighbours ('transfer' mode).
TRANSFER_ALPHA = 0.5
#: In-plane Gaussian (pixels) before :func:`variance_cap` compares new and acquired planes.
CAP_SMOOTHING = 1.0


class TrainingPreset(BaseModel):
    """Training hyper-parameters of a preset."""

    model_config = ConfigDict(extra="forbid")
    patch: int
    batch: int
    lr: float
    lr_final: float
    n_critic: int  # generator updated every n_critic-th iteration, critic every iteration
    lambda_adv: float = 1e-3
    lambda_distill: float = 1e-2
    lambda_gp: float = 10.0
    betas: tuple[float, float] = (0.5, 0.999)


TRAINING_PRESETS = {
    # the paper: Adam 1e-4, betas (0.5, 0.999), n_critic 5, 256x256 planes (batch 128 on 2 GPUs)
    "paper": TrainingPreset(patch=256, batch=16, lr=1e-4, lr_final=1e-4, n_critic=5),
    # CPU: small patches, every iteration updates the generator, cosine-decayed larger step size
    "fast": TrainingPreset(patch=64, batch=8, lr=5e-4, lr_final=2e-5, n_critic=1),
}


class ZAugNetConfig(ModelConfig):
    """Everything needed to rebuild and use a trained model (saved as ``config.json``)."""

    method: Literal["zaugnet", "zaugnet+"] = "zaugnet"
    preset: Literal["fast", "paper"] = "fast"
    net: dict
    critic: dict
    training: TrainingPreset
    adversarial: bool = True
    max_gap: int = 2
    lateral: float = 0.0  # share of training batches drawn from lateral (xz/yz) triplets
    ema: float = 0.0  # decay of the moving average of the generator's weights (0: off)
    normalisation: dict  # {"low": p0.1, "high": p99.99} of the training data
    train_plane_spacing: float  # mean z spacing of the training stacks
    triplet_spacing: list[float]  # outer-plane distances seen in training (physical)
    validation_planes: dict = {}

    @field_validator("normalisation")
    @classmethod
    def _low_below_high(cls, value: dict) -> dict:
        low, high = value.get("low"), value.get("high")
        numbers = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high))
        if not numbers or not high > low:
            raise ValueError("needs finite 'low' and 'high' intensities with high above low")
        return value

    @field_validator("train_plane_spacing")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise ValueError("must be a positive spacing")
        return value


# ---------------------------------------------------------------------------------------------
# training


@one_training_per_folder
def fit(volumes: list[Volume], out_dir: str | Path, options: dict | None = None) -> Path:
    """Train ZAugNet (or ZAugNet+) on the user's stacks and save the model in ``out_dir``.

    Parameters
    ----------
    volumes : list of Volume
        The user's stacks (T and C are split into separate stacks).
    out_dir : path-like
        Model folder. An interrupted run in it is resumed; a finished model
        is replaced only with ``options["overwrite"]``.
    options : dict
        ``method`` ('zaugnet' | 'zaugnet+'), ``preset`` ('fast' | 'paper'),
        ``steps`` or ``minutes``, ``seed``, ``device`` ('auto' | 'cpu' | 'cuda'),
        ``adversarial`` (bool), ``max_gap`` (ZAugNet+), ``progress`` (bool),
        ``overwrite`` (bool), ``patch``/``batch``/``lr`` overrides, ``init``
        (a model folder of the same method and preset whose generator the run
        starts from, or ``'prior'`` for the one shipped with zaug, see
        :func:`prior_dir`), ``stop`` (a ``threading.Event``: set, the run
        saves its step and raises :class:`~zaug.train.TrainingStopped`),
        ``check_only`` (make every refusal, then return None: nothing trained
        or written; :func:`zaug.evaluate.check_trainable`).

    Returns
    -------
    pathlib.Path
        The model folder (None with ``check_only``).
    """
    opts = dict(options or {})
    method = opts.get("method") or "zaugnet"
    if method not in ("zaugnet", "zaugnet+"):
        raise InputError(f"unknown method {method!r}; use zaugnet or zaugnet+.")
    refuse_options(opts, method, ("degradation", "sigma", "renoise", "axial_angle"))
    preset, budget = preset_and_budget(opts, TRAINING_PRESETS)
    plus = method == "zaugnet+"
    stacks, z_coords, labels = _training_stacks(volumes, method)
    _warn_if_spacings_differ(z_coords, volumes[0].unit)
    max_gap = int(opts.get("max_gap") or (2 if method == "zaugnet" else 6))
    train_trips, val_trips, val_info, runs = [], [], {}, []
    for s, stack in enumerate(stacks):
        train_planes, val_planes = split_validation(len(stack), fraction=0.15, min_planes=VALIDATION_PLANES[method])
        train_trips.append(triplet_indices(len(stack), max_gap, all_positions=plus, planes=train_planes))
        val_trips.append(triplet_indices(len(stack), 2, planes=val_planes))
        val_info[str(s)] = sorted(val_planes)
        runs.append(training_runs(len(stack), train_planes))
    if not plus:
        _warn_if_off_centre(train_trips, z_coords)
    low, high = _pooled_normalisation(stacks)
    scaling = [_training_scaling(s, (low, high), label, len(stacks)) for s, label in zip(stacks, labels)]
    norm = [np.clip((s - lo) / (hi - lo), 0, 1).astype(np.float32) for s, (lo, hi) in zip(stacks, scaling)]
    base = TRAINING_PRESETS[preset].model_copy(update={k: opts[k] for k in ("patch", "batch", "lr") if opts.get(k)})
    config = ZAugNetConfig(
        method=method, preset=preset, net=dict(ifnet_preset(preset), **opts.get("net", {}), position_input=plus),
        critic=critic_preset(preset), training=base, adversarial=bool(opts.get("adversarial", True)),
        max_gap=max_gap, lateral=float(opts.get("lateral") or 0.0), ema=float(opts.get("ema") or 0.0),
        seed=int(opts.get("seed") or 0), normalisation={"low": low, "high": high},
        train_voxel_size=list(volumes[0].voxel_size), train_unit=volumes[0].unit,
        train_plane_spacing=float(np.mean([np.mean(np.diff(z)) for z in z_coords])),
        triplet_spacing=sorted({significant(float(z[k] - z[i])) for z, trips in zip(z_coords, train_trips)
                                for i, _, k in trips}),
        validation_planes=val_info,
    )
    identity = {"method": config.method, "preset": config.preset, "seed": config.seed,
                "adversarial": config.adversarial, "max_gap": config.max_gap, "lateral": config.lateral,
                "ema": config.ema,
                "data": data_identity(volumes), "normalisation": config.normalisation}
    init = _initial_weights(opts.get("init"), config)  # refused before the run folder is made
    if init is not None:
        # named absolutely: zaug info and a resume from another folder then mean the same model
        identity["init"] = "prior" if str(opts["init"]) == "prior" else str(Path(opts["init"]).absolute())
    device = resolve_device(opts.get("device", "auto"))  # refused before the run folder is made
    if opts.get("check_only"):  # every refusal made, nothing trained or written (see zaug.evaluate)
        return None
    out = prepare_run_dir(Path(out_dir), identity, budget, bool(opts.get("overwrite")))
    sampler = TripletSampler(norm, train_trips, z_coords, patch=config.training.patch)
    lateral = None
    if config.lateral > 0:
        # per lateral axis: outer planes as far apart as the acquired ones
        gaps = tuple(max(1, int(round(config.train_plane_spacing / (2 * size)))) for size in volumes[0].voxel_size[1:])
        segments = [norm[s][run] for s, stack_runs in enumerate(runs) for run in stack_runs]
        lateral = LateralTripletSampler(segments, [gaps] * len(segments), patch=config.training.patch)
    seed_everything(config.seed)  # the networks' initial weights too
    task = ZAugNetTask(config, sampler, _validation_set(norm, val_trips, z_coords), device, lateral)
    if init is not None:
        task.load_generator(init)
    return train_and_save(task, config, out, budget, opts, method,
                          self_check=lambda: self_check(task, norm, val_trips, z_coords))


#: Folder of the priors shipped with the package (see ``priors/README.md``).
PRIORS = Path(__file__).resolve().parents[1] / "priors"


def prior_dir(method: str = "zaugnet", preset: str = "fast") -> Path:
    """Folder of the shipped prior for ``method`` and ``preset`` (``--init prior``)."""
    folder = PRIORS / f"{method.replace('+', 'plus')}-{preset}"
    if not (folder / "config.json").exists():
        shipped = ", ".join(sorted(p.name for p in PRIORS.glob("*-*") if p.is_dir())) or "none"
        raise InputError(f"zaug ships no prior for {method} with the {preset} preset (shipped: {shipped}); "
                         "give --init a model folder of your own instead.")
    return folder


def _initial_weights(source, config: "ZAugNetConfig") -> dict[str, torch.Tensor] | None:
    """The generator to start from: a model folder of the same method and network, or ``'prior'``."""
    if not source:
        return None
    folder = prior_dir(config.method, config.preset) if str(source) == "prior" else Path(source)
    tensors, raw = load_model(folder)
    if raw.get("method") != config.method or raw.get("net") != config.model_dump(mode="json")["net"]:
        raise InputError(f"the model in {folder} ({raw.get('method')}, network {raw.get('net')}) does not match "
                         f"this run ({config.method}, network {config.net}); start from a model of the same "
                         "method and preset.")
    return tensors


#: the fewest planes held out of a training stack to validate on: a triplet (ZAugNet+: its positions too)
VALIDATION_PLANES = {"zaugnet": 3, "zaugnet+": 5}
#: the self-check's SSIM window
SMALLEST_PLANE = 7


def fewest_training_planes(method: str) -> int:
    """The fewest planes a training stack of ``method`` needs: the validation block and 5 to train on."""
    return fewest_planes(0.15, VALIDATION_PLANES[method])


def _training_stacks(volumes: list[Volume], method: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """The ZYX stacks to train on (every channel and time point), their z positions, and names for messages;
    a blank channel or time point (constant) is left out, with a warning: it holds nothing to learn."""
    if not volumes:
        raise InputError("no training stack was given.")
    stacks, z_coords, labels, blank = [], [], [], []
    fewest, name = fewest_training_planes(method), "ZAugNet+" if method == "zaugnet+" else "ZAugNet"
    for n, vol in enumerate(volumes):
        check_volume(vol, min_planes=3)
        if vol.nz < fewest:
            raise InputError(f"the stack has {vol.nz} planes and {name} needs at least {fewest} to train on: "
                             f"{fewest - 5} held out to validate on, 5 to learn from.")
        if min(vol.spatial_shape[1:]) < SMALLEST_PLANE:
            raise InputError(f"the planes are {vol.spatial_shape[1]} x {vol.spatial_shape[2]} pixels and {name} "
                             f"needs at least {SMALLEST_PLANE} x {SMALLEST_PLANE} (the window of its self-check's "
                             "SSIM).")
        for index, stack in vol.stacks():
            stack = np.asarray(stack, dtype=np.float32)
            label = _stack_label(vol, n, index, len(volumes))
            if stack.min() == stack.max():
                blank.append(label)
                continue
            stacks.append(stack)
            z_coords.append(vol.z_coords())
            labels.append(label)
    if not stacks:
        raise InputError("every channel and time point of the training stacks is blank (constant); there is "
                         "nothing to learn from.")
    if blank:
        warnings.warn(ZaugWarning(f"{'; '.join(blank)} {'is' if len(blank) == 1 else 'are'} blank (every voxel "
                                  "the same) and not trained on."), stacklevel=3)
    units = {vol.unit for vol in volumes}
    if len(units) > 1:
        raise InputError(f"the training stacks use different units ({', '.join(sorted(units))}); "
                         "give them the same with --voxel-size/--unit.")
    return stacks, z_coords, labels


def _warn_if_spacings_differ(z_coords: list[np.ndarray], unit: str) -> None:
    """Say when the training stacks' z spacings differ by more than half: one model learns them all, and the
    spacing that prediction compares an input's with is their mean."""
    spacings = sorted({significant(float(np.mean(np.diff(z)))) for z in z_coords})
    if spacings[-1] > 1.5 * spacings[0]:
        mean = float(np.mean([np.mean(np.diff(z)) for z in z_coords]))
        warnings.warn(ZaugWarning(
            f"the training stacks' z spacings differ ({spacings[0]:g} to {spacings[-1]:g} {unit}): one model learns "
            f"them all, and prediction compares an input's spacing with their mean ({mean:.4g} {unit}); train "
            "one model per spacing if they are to be enhanced apart."), stacklevel=3)


def _stack_label(vol: Volume, n: int, index: tuple[int, ...], n_volumes: int) -> str:
    """'training stack 2 (a), channel 1' (channels counted from 0, as --channel counts), for messages."""
    name = vol.metadata.get("name")
    parts = [f"training stack {n + 1}" + (f" ({name})" if name else "")] if n_volumes > 1 or not index else []
    return ", ".join(parts + ([vol.stack_name(index)] if index else []))


def _warn_if_off_centre(trips: list, z_coords: list) -> None:
    """ZAugNet has no position input: on unevenly spaced planes it learns off-centre planes as midpoints."""
    ts = [(z[j] - z[i]) / (z[k] - z[i]) for z, stack_trips in zip(z_coords, trips) for i, j, k in stack_trips]
    off = [t for t in ts if abs(t - 0.5) > 0.05]
    if off:
        warnings.warn(ZaugWarning(
            f"the planes are unevenly spaced: in {len(off)} of {len(ts)} training triplets the middle plane is "
            f"not half-way (relative positions {min(ts):.2f} to {max(ts):.2f}), and zaugnet learns every one as "
            "a midpoint; zaugnet+ (--method zaugnet+) uses the planes' positions."), stacklevel=3)


def _normalisation(stacks: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([s[:: max(1, len(s) // 16)].ravel() for s in stacks])
    low, high = np.percentile(values, (0.1, 99.99))
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


def _pooled_normalisation(stacks: list[np.ndarray]) -> tuple[float, float]:
    """The scaling stored with the model: the training stacks' percentiles together, leaving out stacks far
    from the rest (an 8-bit stack beside 16-bit ones pulled the low end down), which train and predict on their
    own (:func:`_training_scaling`)."""
    pooled = _normalisation(stacks)
    outliers = [len(stacks) > 1 and _far_apart(_normalisation([s]), pooled) for s in stacks]
    if any(outliers) and not all(outliers):
        pooled = _normalisation([s for s, outlier in zip(stacks, outliers) if not outlier])
    return pooled


def _far_apart(own: tuple[float, float], reference: tuple[float, float]) -> bool:
    """Whether intensities spanning ``own`` would reach a network scaled for ``reference`` as a nearly
    constant or clipped plane: a range under a tenth or over ten times the reference's, or almost wholly
    outside it (8-bit data beside 16-bit, a dim channel)."""
    low, high = reference
    lo, hi = (own[0] - low) / (high - low), (own[1] - low) / (high - low)
    return not (0.1 <= hi - lo <= 10.0 and lo < 0.9 and hi > 0.1)


def _training_scaling(stack: np.ndarray, pooled: tuple[float, float], label: str, n: int) -> tuple[float, float]:
    """The pooled intensity scaling, or the stack's own where the two are far apart (as prediction scales
    such a stack), with a warning: one scaling for all would train on it as a blank."""
    own = _normalisation([stack])
    if n == 1 or not _far_apart(own, pooled):
        return pooled
    warnings.warn(ZaugWarning(
        f"the intensities of {label} (0.1-99.99 percentiles {own[0]:.4g} to {own[1]:.4g}) are far from those "
        f"of the other training stacks ({pooled[0]:.4g} to {pooled[1]:.4g}); it is scaled by its own "
        "percentiles, as prediction scales such a stack."), stacklevel=4)
    return own


def _validation_set(norm, val_trips, z_coords):
    out = []
    for s, trips in enumerate(val_trips):
        for i, j, k in trips:
            z = z_coords[s]
            out.append((norm[s][i], norm[s][k], norm[s][j], float((z[j] - z[i]) / (z[k] - z[i]))))
    return out


class ZAugNetTask:
    """One ZAugNet training run for :func:`zaug.train.run_training`."""

    def __init__(self, config: ZAugNetConfig, sampler: TripletSampler, val, device: torch.device,
                 lateral: LateralTripletSampler | None = None):
        self.config, self.sampler, self.val, self.device = config, sampler, val, device
        self.lateral = lateral
        tp = config.training
        self.gen = IFNet(**config.net).to(device)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=tp.lr, betas=tp.betas)
        # the model that is validated and saved: the trained generator or its moving average
        self.model = copy.deepcopy(self.gen) if config.ema > 0 else self.gen
        self.g_updates = 0
        self.critic = Critic(**config.critic).to(device) if config.adversarial else None
        self.opt_d = (torch.optim.Adam(self.critic.parameters(), lr=tp.lr, betas=tp.betas)
                      if self.critic is not None else None)
        self.iteration = 0

    def _lr(self, progress: float) -> float:
        tp = self.config.training
        return tp.lr_final + 0.5 * (tp.lr - tp.lr_final) * (1 + math.cos(math.pi * progress))

    def step(self, rng: np.random.Generator, progress: float) -> dict[str, float]:
        tp = self.config.training
        for opt in filter(None, (self.opt_g, self.opt_d)):
            for group in opt.param_groups:
                group["lr"] = self._lr(progress)
        source = self.lateral if self.lateral is not None and rng.random() < self.config.lateral else self.sampler
        i0, i1, gt, t = (torch.from_numpy(a).to(self.device) for a in source.sample(tp.batch, rng))
        t_in = t if self.config.net["position_input"] else None
        self.gen.train()
        out = self.gen(i0, i1, t=t_in, gt=gt)
        losses = {}
        if self.critic is not None:  # critic every iteration (WGAN-GP)
            d_real = self.critic(gt).mean()
            d_fake = self.critic(out.pred.detach()).mean()
            gp = gradient_penalty(self.critic, gt, out.pred.detach())
            loss_d = d_fake - d_real + tp.lambda_gp * gp
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses["critic"] = float(loss_d.detach())
        self.iteration += 1
        rec = laplacian_pyramid_loss(out.pred, gt)
        if self.iteration % tp.n_critic == 0 or self.critic is None:
            loss_g = rec + laplacian_pyramid_loss(out.teacher_pred, gt) + tp.lambda_distill * out.distill_loss
            if self.critic is not None:
                loss_g = loss_g - tp.lambda_adv * self.critic(out.pred).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self._update_average()
        losses["loss"] = float(rec.detach())
        return losses

    @torch.no_grad()
    def _update_average(self) -> None:
        """Exponential moving average of the generator's weights (noisy targets make SGD iterates noisy)."""
        self.g_updates += 1
        if self.model is self.gen:
            return
        decay = min(self.config.ema, (1 + self.g_updates) / (10 + self.g_updates))
        for avg, current in zip(self.model.parameters(), self.gen.parameters()):
            avg.lerp_(current, 1.0 - decay)

    @torch.no_grad()
    def predict(self, i0: np.ndarray, i1: np.ndarray, t: float, tta: bool = False) -> np.ndarray:
        self.model.eval()
        a = torch.from_numpy(np.ascontiguousarray(i0, np.float32))[None, None].to(self.device)
        b = torch.from_numpy(np.ascontiguousarray(i1, np.float32))[None, None].to(self.device)
        tt = t if self.config.net["position_input"] else None
        return run_generator(self.model, a, b, tt, tta)[0, 0].float().cpu().numpy()

    def validate(self) -> dict[str, float]:
        # flattened: the training stacks may differ in plane size (PSNR pools one MSE over all voxels)
        preds = np.concatenate([self.predict(a, b, t).ravel() for a, b, _, t in self.val])
        truth = np.concatenate([g.ravel() for _, _, g, _ in self.val])
        linear = np.concatenate([(a * (1 - t) + b * t).ravel() for a, b, _, t in self.val])
        val_psnr, lin_psnr = psnr(preds, truth), psnr(linear, truth)
        return {"score": val_psnr, "val_psnr": val_psnr, "val_linear_psnr": lin_psnr,
                "val_gain_db": val_psnr - lin_psnr}

    def weights(self) -> dict[str, torch.Tensor]:
        return module_tensors("generator", self.model)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        load_module_tensors("generator", self.model, weights)

    def load_generator(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from these generator weights (another model's); the critic and the optimisers stay fresh."""
        self.load_weights(weights)
        if self.model is not self.gen:
            load_module_tensors("generator", self.gen, weights)

    def restart_from(self, weights: dict[str, torch.Tensor]) -> None:
        """After a collapse (:data:`zaug.train.COLLAPSE_DB`): the best generator, a new critic, fresh optimisers.

        On cellseg3d x2 a ZAugNet+ run's reconstruction loss jumped from 0.03 to 0.11 within a hundred steps
        and its validation fell from 30.9 to 18.4 dB for good; without the critic it did not. The critic that
        won the game is the part that cannot stay.
        """
        tp = self.config.training
        self.load_generator(weights)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=tp.lr, betas=tp.betas)
        if self.critic is not None:
            self.critic = Critic(**self.config.critic).to(self.device)
            self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=tp.lr, betas=tp.betas)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = dict(self.weights())
        if self.model is not self.gen:
            tensors.update(module_tensors("training_generator", self.gen))
        g_opt, g_meta = optimizer_state("opt_g", self.opt_g)
        tensors.update(g_opt)
        meta = {"iteration": self.iteration, "g_updates": self.g_updates, "opt_g": g_meta}
        if self.critic is not None:
            tensors.update(module_tensors("critic", self.critic))
            d_opt, d_meta = optimizer_state("opt_d", self.opt_d)
            tensors.update(d_opt)
            meta["opt_d"] = d_meta
        return tensors, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.load_weights(tensors)
        if self.model is not self.gen:
            load_module_tensors("training_generator", self.gen, tensors)
        self.g_updates = int(meta.get("g_updates", 0))
        load_optimizer_state("opt_g", self.opt_g, tensors, meta["opt_g"])
        if self.critic is not None:
            load_module_tensors("critic", self.critic, tensors)
            load_optimizer_state("opt_d", self.opt_d, tensors, meta["opt_d"])
        self.iteration = int(meta["iteration"])


def self_check(task: ZAugNetTask, norm, val_trips, z_coords) -> dict:
    """Scores on the held-out validation planes: the model vs linear, cubic and smoothing.

    Cubic uses up to two further planes on each side at the same spacing (they
    may be training planes: they are inputs, never targets).
    """
    preds, truth, linear, cubic = [], [], [], []
    for s, trips in enumerate(val_trips):
        stack, z = norm[s], z_coords[s]
        for i, j, k in trips:
            t = float((z[j] - z[i]) / (z[k] - z[i]))
            preds.append(task.predict(stack[i], stack[k], t, tta=True))  # as at prediction
            truth.append(stack[j])
            linear.append(stack[i] * (1 - t) + stack[k] * t)
            gap = k - i
            idx = [m for m in (i - gap, i, k, k + gap) if 0 <= m < len(stack)]
            cubic.append(np.clip(interpolate_stack(stack[idx], z[idx], np.array([z[j]]), "cubic")[0], 0, 1))
    if not truth:
        return {}
    preds, truth, linear, cubic = map(_stack_centres, (preds, truth, linear, cubic))
    smooth, sigma = smooth_oracle(linear, truth)
    scores = {}
    for name, arr in (("model", preds), ("linear", linear), ("cubic", cubic), ("linear+smooth", smooth)):
        scores[name] = {"psnr": psnr(arr, truth), "ssim": ssim(arr, truth), "sharpness": sharpness_ratio(arr, truth)}
    best = max(("linear", "cubic"), key=lambda m: scores[m]["psnr"])
    scores["planes"] = len(truth)
    scores["stacks"] = sum(1 for trips in val_trips if trips)
    scores["smooth_sigma"] = sigma
    scores["gain_db"] = scores["model"]["psnr"] - scores[best]["psnr"]
    scores["best_classical"] = best
    scores["gain_over_smoothing_db"] = scores["model"]["psnr"] - max(scores[best]["psnr"],
                                                                      scores["linear+smooth"]["psnr"])
    return scores


def _stack_centres(planes: list[np.ndarray]) -> np.ndarray:
    """Stack planes, cropped to their common central part when the training stacks differ in plane size."""
    ny, nx = min(p.shape[0] for p in planes), min(p.shape[1] for p in planes)
    starts = [((p.shape[0] - ny) // 2, (p.shape[1] - nx) // 2) for p in planes]
    return np.stack([p[y:y + ny, x:x + nx] for p, (y, x) in zip(planes, starts)])


def format_self_check(sc: dict) -> str:
    """The self-check in words."""
    if not sc:
        return "self-check: no held-out planes."
    m = sc["model"]
    stacks = sc.get("stacks", 1)
    where = "your stack" if stacks == 1 else f"your {stacks} stacks"
    return (f"self-check on {sc['planes']} held-out planes of {where}: model PSNR {m['psnr']:.2f} dB, "
            f"SSIM {m['ssim']:.3f} vs linear {sc['linear']['psnr']:.2f} dB / {sc['linear']['ssim']:.3f}, "
            f"cubic {sc['cubic']['psnr']:.2f} dB / {sc['cubic']['ssim']:.3f}: {sc['gain_db']:+.2f} dB over the "
            f"best interpolation, {sc['gain_over_smoothing_db']:+.2f} dB over interpolation+smoothing; "
            f"sharpness {m['sharpness']:.2f} (1.00 = as sharp as the real planes). Measured on planes twice as "
            "far apart as those the model will interpolate between."
            + (" No better than interpolation followed by smoothing: what it gains is noise removal, and its new "
               "planes will be smoother than the acquired ones." if sc["gain_over_smoothing_db"] <= 0 else "")
            + (f" Only {sc['planes']} held-out plane{'s' * (sc['planes'] != 1)}: too few to go by."
               if sc["planes"] < 3 else ""))


# ---------------------------------------------------------------------------------------------
# prediction


def load(model_dir: str | Path, device: str = "auto") -> "ZAugNetModel":
    """Load a trained model for prediction."""
    tensors, config = load_config(ZAugNetConfig, model_dir, "ZAugNet")
    device = resolve_device(device)
    with building_networks(model_dir, config):
        model = ZAugNetModel(config, tensors, device)
    model.model_dir = Path(model_dir)  # named in the record of what it makes (zaug.provenance)
    return model


class ZAugNetModel:
    """A trained ZAugNet / ZAugNet+ as a z-interpolator (see :mod:`zaug.predict`).

    Parameters
    ----------
    config : ZAugNetConfig
    tensors : dict
        Generator weights.
    device : torch.device
    tile : int
        Planes larger than this are processed in overlapping tiles.
    batch : int
        Plane pairs per forward pass.
    tta : bool
        Average the prediction over the 8 flips/rotations of the planes.
    calibrate : bool
        Weight the model's and cubic's departures from linear interpolation as
        lateral triplets of the input say at the spacing of use (see
        :meth:`calibration_weights`); ``calibration`` records the weights used
        per spacing.
    cap_variance : bool
        With ``calibrate``: scale those weights down where the new planes would
        vary more than the acquired ones (:func:`variance_cap`);
        ``calibration_scale`` records the factor per spacing.
    mode : {'auto', 'direct', 'transfer'}
        ``'direct'``: the model interpolates between neighbouring input planes,
        half as far apart as the planes of its training triplets. ``'transfer'``:
        the model is used only at its training gap, and its estimates carried to
        the output positions by :func:`transfer_interpolate` (no calibration).
        ``'auto'``: as :meth:`resolved_mode` says from the self-check.
    """

    # context each side of a tile in blockwise prediction (zaug.blockwise), as much as the overlap of the
    # model's own tiles of large planes
    lateral_margin = 32
    spacing_checked = False  # set on the copy :meth:`for_stack` makes: its tiles are not checked again

    def __init__(self, config: ZAugNetConfig, tensors: dict, device: torch.device, tile: int = 512,
                 overlap: int = 32, batch: int = 4, tta: bool = True, calibrate: bool = True,
                 mode: str = DEFAULT_MODE, cap_variance: bool = True):
        self.config, self.device = config, device
        self.mode = check_mode(mode)
        self.calibrate, self.calibration = calibrate, {}
        self.cap_variance = cap_variance
        self.calibration_scale: dict = {}  # per spacing: the variance cap's factor on the lateral weights
        self.calibration_unfitted: set = set()  # spacings no lateral triplet of the stack was fine enough to fit
        self.input_unit: str | None = None  # the unit of the z positions given (set by upsample_z): else trained
        self.fixed_calibration: dict | None = None  # set by for_stack: the same weights for every tile
        self.fixed_normalisation: tuple[float, float] | None = None  # likewise the intensity scaling
        self.normalisation: tuple[float, float] = (config.normalisation["low"], config.normalisation["high"])
        self._pixel_size = None  # (y, x) of the stack being interpolated, when known
        self.name = config.method
        if tile <= 2 * overlap:
            raise InputError(f"the tile side ({tile}) must be more than twice the overlap ({overlap}).")
        self.net = build_to_fit(lambda: IFNet(**config.net), "generator", tensors, device).eval()
        self.tile, self.overlap, self.batch, self.tta = tile, overlap, batch, tta
        self.training_summary = {"steps": config.summary.get("steps"), "seconds": config.summary.get("seconds"),
                                 "self_check_gain_db": config.self_check.get("gain_db"),
                                 "restarts": config.summary.get("restarts", 0)}

    @property
    def block_tile(self) -> int:
        """Blockwise tile size whose tile plus margins is one pass of the network."""
        return max(16, self.tile - 2 * self.lateral_margin)

    @property
    def plus(self) -> bool:
        return bool(self.config.net["position_input"])

    def interpolate(self, stack: np.ndarray, z_in: np.ndarray, z_out: np.ndarray,
                    pixel_size: tuple[float, float] | None = None) -> np.ndarray:
        """Planes at ``z_out`` (see :class:`zaug.predict.ZInterpolator`).

        ``pixel_size`` (y, x) sets the lateral triplets of the calibration; the
        training stack's is assumed when it is not given.
        """
        z_in, z_out = np.asarray(z_in, np.float64), np.asarray(z_out, np.float64)
        if not self.spacing_checked:
            self._check_spacing(z_in)
        # measured on this stack (each channel / time point its own), unless fixed for all its tiles
        self.calibration = {} if self.fixed_calibration is None else dict(self.fixed_calibration)
        self.calibration_scale = {}
        if self.fixed_calibration is None:
            self.calibration_unfitted = set()
        self._pixel_size = tuple(pixel_size) if pixel_size is not None else None
        low, high = self.normalisation = self.fixed_normalisation or self._normalisation_for(stack)
        # not clipped: the network sees [0, 1] (what it learnt on), and adds its departure from linear
        # interpolation to the linear interpolation of the planes as they are (no intensity is cut off)
        x = (np.asarray(stack, np.float32) - np.float32(low)) / np.float32(high - low)
        transfer = self.resolved_mode() == "transfer"
        if transfer and len(z_in) < 3:
            warnings.warn(ZaugWarning(f"the transfer mode estimates each acquired plane from its two neighbours, "
                                      f"which {len(z_in)} planes do not have: they were interpolated in direct "
                                      "mode."), stacklevel=2)
        if transfer and len(z_in) >= 3:
            out = self._transfer(x, z_in, z_out)
        else:
            out = self._positions(x, z_in, z_out) if self.plus else self._doubling(x, z_in, z_out)
        out = out * np.float32(high - low) + np.float32(low)
        if not np.isfinite(out).all():
            raise ZaugError("the model produced invalid values (NaN) on this stack; nothing was written: check the "
                            "input, or train on this stack.")
        # acquired planes are returned exactly as measured (no normalisation round trip)
        idx = np.clip(np.searchsorted(z_in, z_out), 0, len(z_in) - 1)
        tol = position_tolerance(z_in)
        for n in np.flatnonzero(np.abs(z_in[idx] - z_out) <= tol):
            out[n] = stack[idx[n]]
        return out

    def for_stack(self, sample: np.ndarray, z_in: np.ndarray, z_out: np.ndarray,
                  pixel_size: tuple[float, float] | None = None) -> "ZAugNetModel":
        """A copy that uses the calibration weights of ``sample`` for every tile of one stack.

        Blockwise prediction (:mod:`zaug.blockwise`) cuts a stack into lateral
        tiles; weights measured per tile would differ from tile to tile and
        show as seams. ``sample`` (a central crop of the stack, float ZYX) is
        interpolated once to measure them.
        """
        model = copy.copy(self)
        model._check_spacing(np.asarray(z_in, np.float64))
        model.spacing_checked = True  # once for the stack, not again for every tile
        model.fixed_calibration = None
        model.fixed_normalisation = self.fixed_normalisation or model._normalisation_for(sample)
        if model.calibrate and model.resolved_mode() == "direct":  # transfer: no weights to measure
            model.interpolate(sample, z_in, z_out, pixel_size=pixel_size)
        model.fixed_calibration = dict(model.calibration)
        return model

    def _normalisation_for(self, stack: np.ndarray) -> tuple[float, float]:
        """The training stack's intensity scaling, or this stack's own where the two are far apart.

        The network learnt on the training stack scaled to [0, 1] by its 0.1 and 99.99 percentiles. A stack
        whose range is less than a tenth of that, or more than ten times it, or almost wholly outside it
        (8-bit data on a 16-bit model, a dim channel) would reach the network as a nearly constant or
        clipped plane; it is scaled by its own percentiles instead, with a warning.
        """
        low, high = self.config.normalisation["low"], self.config.normalisation["high"]
        own_low, own_high = _normalisation([np.asarray(stack, np.float32)])
        if not _far_apart((own_low, own_high), (low, high)):  # a dimmer crop or a brighter stack: as trained
            some = np.asarray(stack[:: max(1, len(stack) // 16)], np.float32)  # the planes _normalisation reads
            beyond = float(np.mean((some < low) | (some > high)))
            if beyond > 0.05:
                warnings.warn(ZaugWarning(
                    f"{beyond:.0%} of this stack's voxels lie outside the training stack's intensity range "
                    f"({low:.4g} to {high:.4g}); the model sees them clipped, so there the new planes are close "
                    "to linear interpolation: train on stacks like this one for the model's full effect."),
                    stacklevel=4)
            return low, high
        warnings.warn(ZaugWarning(
            f"this stack's intensities (0.1-99.99 percentiles {own_low:.4g} to {own_high:.4g}) are far from the "
            f"training stack's ({low:.4g} to {high:.4g}); it is scaled by its own percentiles for the model: "
            "check the result, or train on stacks like this one."), stacklevel=4)
        return own_low, own_high

    def _check_spacing(self, z_in: np.ndarray) -> None:
        gaps = np.diff(z_in)
        spacing, narrow, wide = float(np.mean(gaps)), float(gaps.min()), float(gaps.max())
        unit = self.input_unit or self.config.train_unit
        # the training spacing in the input's unit (a stack in nm on a model trained in um)
        scale = conversion_factor(self.config.train_unit, unit) or 1.0
        trained = self.config.train_plane_spacing * scale
        if narrow / trained < 0.4 or wide / trained > 2.5:  # each gap, not the mean: an uneven stack has both
            seen = f"{spacing:g}" if wide - narrow <= 1e-6 * wide else f"gaps {narrow:g} to {wide:g}"
            warnings.warn(ZaugWarning(
                f"the input's z spacing ({seen}) differs from that of the training stack ({trained:g} "
                f"{unit}); the model may not transfer, consider training on this stack."), stacklevel=3)
        elif self.resolved_mode() == "direct" and self.config.triplet_spacing and \
                spacing < 0.55 * min(self.config.triplet_spacing) * scale:
            # as intended when a model learns from the stack it enhances, but the self-check does not
            # measure it (cells3d x4: ZAugNet+ lost 1 dB to linear interpolation there)
            warnings.warn(ZaugWarning(
                f"the model learnt from planes at least {min(self.config.triplet_spacing) * scale:g} {unit} apart and "
                f"interpolates here between planes {spacing:g} {unit} apart; its self-check measured the "
                "former only: 'zaug evaluate' on a finely sampled stack measures the latter (and the "
                "'transfer' mode, which uses the model at its training gap only)."), stacklevel=3)

    def calibration_weights(self, x: np.ndarray, spacing: float,
                            pixel_size: tuple[float, float] | None = None) -> tuple[float, float]:
        """How far the prediction moves from linear interpolation towards the model and towards cubic.

        A model that learnt from the stack's own triplets saw outer planes twice
        as far apart as those it interpolates between at prediction. Part of what
        it learnt, the correction for the curvature of the z profile, shrinks
        with the spacing, and the model cannot tell (cellseg3d x2: keeping all
        of it cost 1 dB against linear interpolation; 0.28 of it was best).
        Triplets of planes along the finer lateral axes of the input, with outer
        planes ``spacing`` apart, are interpolated like axial ones by the model
        and by a cubic spline; the weights ``(a, c)`` in [0, 1] of ``linear +
        a (model - linear) + c (cubic - linear)`` that fit their middle planes
        best (least squares) are returned, one pair per in-plane detail band
        (:data:`~zaug.nets.zstack.BAND_SIGMAS`, finest first; fitted along the
        lateral axis the triplets share with the xy planes). The two-plane
        model wins on fine detail, the spline through four planes on large
        structures (cells3d x2: +0.06 dB over one pair for all bands on four of
        five real stacks, -0.04 on the fifth; ``docs/results/2026-12-06``).
        A band with almost nothing in it keeps the pair fitted on all bands.
        ``(1, 0)``, the model alone, when no lateral triplet fits.

        Parameters
        ----------
        x : numpy.ndarray
            Normalised ZYX input stack.
        spacing : float
            Distance between the planes to be interpolated between (z units).
        pixel_size : (float, float), optional
            The stack's (y, x) pixel size in z units; by default the training
            stack's.
        """
        key = self._calibration_key(spacing)
        if key not in self.calibration:
            pixel = tuple(pixel_size) if pixel_size is not None else tuple(self.config.train_voxel_size[1:])
            self.calibration[key] = self._measure_weights(x, spacing, pixel)
            if self.calibration[key] == (1.0, 0.0):
                self.calibration_unfitted.add(key)
        return self.calibration[key]

    def _calibration_key(self, spacing: float) -> float:
        """The key of the weights for ``spacing``: with weights fixed for a stack (:meth:`for_stack`), those of
        the stack's nearest spacing, so that a tile cut along z (whose own mean spacing differs a little on an
        uneven stack) uses the stack's weights rather than measuring its own."""
        key = significant(float(spacing), 9)
        if self.fixed_calibration and key not in self.fixed_calibration:
            key = min(self.fixed_calibration, key=lambda fixed: abs(math.log(fixed / key)))
        return key

    def _measure_weights(self, x: np.ndarray, spacing: float, pixel: tuple[float, float], per_axis: int = 16,
                         rows: int = 96, cols: int = 256, line: int = 48, bands: bool = True) -> tuple:
        """Per-band weights (``bands=False``: one pair fitted on whole planes, as before the detail bands)."""
        x = np.clip(x, 0, 1)  # the range the network learnt on
        nb = len(BAND_SIGMAS) + 1
        gram, rhs = np.zeros((nb, 2, 2)), np.zeros((nb, 2))
        gram_all, rhs_all = np.zeros((2, 2)), np.zeros(2)

        def split(a):  # detail bands along the lateral axis these planes share with the xy planes (their last)
            return band_split(torch.from_numpy(np.asarray(a, np.float64)), dims=(-1,))

        for axis in (1, 2):
            gap = int(round(spacing / (2 * pixel[axis - 1])))
            n = x.shape[axis]
            if gap < 1 or n <= 2 * gap:
                continue
            # a line of lateral rows 2 * gap apart (the spline's knots), then the rows half-way between
            knots = np.arange(0, n, 2 * gap)[:line + 1]
            planes = np.moveaxis(np.take(x, np.concatenate([knots, knots[:-1] + gap]), axis=axis), axis, 0)
            z0, c0 = max(0, (planes.shape[1] - rows) // 2), max(0, (planes.shape[2] - cols) // 2)
            planes = np.ascontiguousarray(planes[:, z0:z0 + rows, c0:c0 + cols])
            k = len(knots)
            pick = np.unique(np.linspace(0, k - 2, per_axis).round().astype(int))
            model = np.stack(self._pairs(planes, [(int(i), int(i) + 1, 0.5) for i in pick], counted=False))
            cubic = interpolate_stack(planes[:k], knots, knots[pick] + gap, "cubic")
            linear = 0.5 * (planes[pick] + planes[pick + 1])
            truth = planes[k + pick]
            parts = np.stack([(model - linear).ravel(), (cubic - linear).ravel()]).astype(np.float64)
            gram_all += parts @ parts.T
            rhs_all += parts @ (truth - linear).ravel().astype(np.float64)
            for b, (dm, dc, e) in enumerate(zip(split(model - linear), split(cubic - linear), split(truth - linear))):
                parts = np.stack([dm.numpy().ravel(), dc.numpy().ravel()])
                gram[b] += parts @ parts.T
                rhs[b] += parts @ e.numpy().ravel()
        if not gram_all.any():
            return 1.0, 0.0
        whole = _best_weights(gram_all, rhs_all)
        if not bands:
            return whole
        # a band with (almost) nothing in it keeps the weights of the whole: a small pull towards them
        ridge = 1e-6 * float(np.trace(gram_all)) * np.eye(2)
        return tuple(_best_weights(g + ridge, r + ridge @ np.asarray(whole)) for g, r in zip(gram, rhs))

    def _predict_calibrated(self, source: np.ndarray, z_source: np.ndarray, stack: np.ndarray, z: np.ndarray,
                            jobs: list, spacing: float) -> list:
        """Planes of ``stack`` (at ``z``) for ``jobs`` = (a, b, t), weighted as measured on ``source``.

        Weights measured here (not fixed by :meth:`for_stack`) are the lateral
        calibration's, scaled down by :func:`variance_cap` where the new planes
        would vary more than the acquired planes of ``source`` (at ``z_source``)
        beside them.
        """
        if not jobs:  # every output position is an input plane (--z-spacing the input's own)
            return []
        preds = self._pairs(stack, jobs)
        for n, (a, b, t) in enumerate(jobs):  # the model's departure from what it saw, onto the planes as they are
            preds[n] = preds[n] + _clipping_offset(stack[a], stack[b], t)
        if not self.calibrate:
            return preds
        key = self._calibration_key(spacing)
        measured_here = key not in self.calibration
        weights = self.calibration_weights(source, spacing, self._pixel_size)
        at = np.array([z[a] + t * (z[b] - z[a]) for a, b, t in jobs])
        cubic = interpolate_stack(stack, z, at, "cubic") if any(c > 0 for _, c in band_weights(weights)) else None

        def parts(n):
            a, b, t = jobs[n]
            linear = np.float32(1 - t) * stack[a] + np.float32(t) * stack[b]
            d_cubic = None if cubic is None else torch.from_numpy(np.asarray(cubic[n] - linear, np.float32))
            departure = weighted_departure(torch.from_numpy(np.asarray(preds[n] - linear, np.float32)), d_cubic,
                                           weights).numpy()
            return linear, departure

        if measured_here and self.cap_variance and len(source) >= 2:  # parts() twice: no stack of departures
            hi = np.clip(np.searchsorted(z_source, at, side="right"), 1, len(z_source) - 1)
            u = np.clip((at - z_source[hi - 1]) / (z_source[hi] - z_source[hi - 1]), 0.0, 1.0)
            scale = variance_cap(((*parts(n), hi[n] - 1, hi[n], u[n]) for n in range(len(jobs))), source)
            weights = self.calibration[key] = scale_weights(weights, scale)
            self.calibration_scale[key] = scale
        return [linear + departure for linear, departure in map(parts, range(len(jobs)))]

    def resolved_mode(self) -> str:
        """'direct' or 'transfer': ``mode``, or for 'auto' what the self-check says.

        Interpolation between two noisy planes misses the middle one by the
        noise of that plane plus half the noise of the two; removing all the
        noise can gain at most ``10 log10(1.5)`` = 1.76 dB over linear
        interpolation. A model whose self-check (at its training gap) gains more
        has learnt mostly to correct the curvature of the z profile, which at
        half the gap is a quarter as large: it is then used at its training gap
        only ('transfer'). Otherwise its gain is mostly noise removal, which
        does not depend on the gap ('direct'). Not the default: on the drop-slice
        runs of ``docs/results/2026-12-04/transfer/`` it picked the better mode in
        six of seven and the wrong one on cellseg3d x4 (transfer -0.39 dB, direct
        +0.50 dB).
        """
        mode = check_mode(self.mode)
        if mode != "auto":
            return mode
        gain = self.self_check_gain_over_linear()
        return "transfer" if gain is not None and gain > DENOISING_BOUND_DB else "direct"

    def mode_reason(self) -> str:
        """Why :meth:`resolved_mode` is what it is, in words."""
        if self.mode != "auto":
            return "as asked"
        gain = self.self_check_gain_over_linear()
        if gain is None:
            return "auto: no self-check to go by"
        side = "more" if gain > DENOISING_BOUND_DB else "no more"
        return (f"auto: the self-check gained {gain:+.2f} dB over linear interpolation at the training gap, {side} "
                f"than removing noise alone can ({DENOISING_BOUND_DB:.2f} dB)")

    def self_check_gain_over_linear(self) -> float | None:
        """The self-check's PSNR of the model minus that of linear interpolation (dB), if measured."""
        sc = self.config.self_check or {}
        try:
            return float(sc["model"]["psnr"]) - float(sc["linear"]["psnr"])
        except (KeyError, TypeError, ValueError):
            return None

    def _transfer(self, x: np.ndarray, z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
        """Each inner input plane estimated from its two neighbours (the training gap), then carried to ``z_out``."""
        jobs = [(i - 1, i + 1, float((z_in[i] - z_in[i - 1]) / (z_in[i + 1] - z_in[i - 1])))
                for i in range(1, len(z_in) - 1)]
        with part(len(jobs)):
            estimates = np.stack(self._pairs(x, jobs))
        for n, (a, b, t) in enumerate(jobs):
            # plain ZAugNet predicts the midpoint whatever t: its clipped part is added back there, and the
            # estimate is then carried to t along the quadratic through the three
            estimates[n] += _clipping_offset(x[a], x[b], t if self.plus else 0.5)
            if not self.plus and abs(t - 0.5) > 1e-6:
                estimates[n] = _midpoint_to(estimates[n], x[a], x[b], t)
        return transfer_interpolate(x, estimates, z_in, z_out)

    def _positions(self, x: np.ndarray, z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
        """ZAugNet+: each output plane from its two neighbours at its relative position."""
        hi = np.clip(np.searchsorted(z_in, z_out, side="right"), 1, len(z_in) - 1)
        lo = hi - 1
        t = (z_out - z_in[lo]) / (z_in[hi] - z_in[lo])
        out = np.empty((len(z_out),) + x.shape[1:], np.float32)
        todo = []
        for n, (a, b, tn) in enumerate(zip(lo, hi, t)):
            if tn < 1e-6:
                out[n] = x[a]
            elif tn > 1 - 1e-6:
                out[n] = x[b]
            else:
                todo.append((n, a, b, float(tn)))
        spacing = float(np.mean(np.diff(z_in)))
        jobs = [(a, b, tn) for _, a, b, tn in todo]
        with part(len(jobs)):
            planes = self._predict_calibrated(x, z_in, x, z_in, jobs, spacing)
        for n, plane in zip((n for n, *_ in todo), planes):
            out[n] = plane
        return out

    def _doubling(self, x: np.ndarray, z_in: np.ndarray, z_out: np.ndarray) -> np.ndarray:
        """ZAugNet: insert midpoints pass after pass (N -> 2N-1) until every output position exists.

        Positions that no number of passes reaches exactly (a target spacing
        that is not the input spacing over a power of two) are linearly
        interpolated from the first grid at least as fine as the target.
        """
        grids = _doubling_grids(z_in, z_out)
        if not _contains(grids[-1], z_out):
            warnings.warn(ZaugWarning(
                f"ZAugNet doubles the planes per pass, so for {_ratio_words(z_in, z_out)} the new planes are linearly "
                f"interpolated between those of its finest pass (x{2 ** (len(grids) - 1)}); ZAugNet+ or the z mode "
                "'transfer' (--z-mode transfer) predict any position."), stacklevel=4)
        planes = x
        with part(sum(len(grid) - 1 for grid in grids[:-1])):  # planes to predict
            for grid in grids[:-1]:
                mids = self._predict_calibrated(x, z_in, planes, grid,
                                                [(i, i + 1, 0.5) for i in range(len(grid) - 1)],
                                                float(np.mean(np.diff(grid))))
                merged = np.empty((2 * len(grid) - 1,) + planes.shape[1:], np.float32)
                merged[0::2], merged[1::2] = planes, mids
                planes = merged
        return interpolate_stack(planes, grids[-1], z_out, "linear")

    @torch.no_grad()
    def _pairs(self, x: np.ndarray, jobs: list[tuple[int, int, float]], counted: bool = True):
        """Predict the plane between ``x[a]`` and ``x[b]`` at ``t`` for each job, in batches (``counted``:
        reported as planes done of the prediction, :mod:`zaug.progress`)."""
        results = []
        for start in range(0, len(jobs), self.batch):
            chunk = jobs[start:start + self.batch]
            a = torch.from_numpy(np.clip(np.stack([x[j[0]] for j in chunk]), 0, 1))[:, None].to(self.device)
            b = torch.from_numpy(np.clip(np.stack([x[j[1]] for j in chunk]), 0, 1))[:, None].to(self.device)
            t = torch.tensor([j[2] for j in chunk], dtype=torch.float32, device=self.device)
            done = (lambda share, n=len(chunk): advance(n * share)) if counted else None
            results.extend(self._tiled(a, b, t, done).cpu().numpy()[:, 0])
        return results

    def _tiled(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, done=None) -> torch.Tensor:
        return tiled_generator(self.net, a, b, t if self.plus else None, self.tile, self.overlap, self.tta, done)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown ZAugNet mode {mode!r}: use one of {', '.join(MODES)}.")
    return mode


def transfer_interpolate(planes: np.ndarray, estimates: np.ndarray, z_in: np.ndarray, z_out: np.ndarray,
                         alpha: float = TRANSFER_ALPHA) -> np.ndarray:
    """Planes at ``z_out`` from the input planes and a model's estimates of the inner ones.

    A model that learnt from a stack's own triplets is right at their gap
    (outer planes two input spacings apart) and wrong, on some stacks, at half
    of it: the correction it learnt for the curvature of the z profile does
    not shrink with the gap (cellseg3d x2: -1 dB against linear
    interpolation). Here it is used at its training gap only: ``estimates``
    are its predictions of planes ``1 .. N-2`` from their two neighbours,
    which carry no noise of the plane itself. Each inner plane becomes
    ``alpha * measured + (1 - alpha) * estimate``; between planes, linear
    interpolation of these plus the curvature term of a quadratic,
    ``-0.5 (z - z_i)(z_{i+1} - z) f''``, with ``f''`` from their divided
    differences (interpolated linearly, constant beyond the outer inner
    planes), so the curvature correction scales with the square of the gap
    as it should.

    Parameters
    ----------
    planes : numpy.ndarray
        ``(N, Y, X)`` input planes, ``N >= 3``, at increasing ``z_in``.
    estimates : numpy.ndarray
        ``(N - 2, Y, X)``: the model's estimate of ``planes[i]`` from
        ``planes[i - 1]`` and ``planes[i + 1]``, for ``i = 1 .. N-2``.
    z_in, z_out : numpy.ndarray
        Positions of the input and output planes (``z_out`` within ``z_in``).
    alpha : float
        Weight of the measured plane against the estimate (0.5: the estimate
        and the measurement count alike).

    Returns
    -------
    numpy.ndarray
        ``(len(z_out), Y, X)`` float32.

    Examples
    --------
    A quadratic z profile is reproduced exactly between and beyond the inner planes:

    >>> import numpy as np
    >>> z = np.arange(5.0)
    >>> planes = (z ** 2)[:, None, None] * np.ones((1, 2, 2))
    >>> out = transfer_interpolate(planes, planes[1:-1], z, np.array([0.5, 2.25, 3.5]))
    >>> np.round(out[:, 0, 0], 4)
    array([ 0.25  ,  5.0625, 12.25  ], dtype=float32)
    """
    planes = np.ascontiguousarray(planes, np.float32)
    if len(planes) < 3 or len(estimates) != len(planes) - 2:
        raise InputError("transfer interpolation needs at least 3 planes and an estimate of each inner one.")
    estimates = np.ascontiguousarray(estimates, np.float32)
    # one implementation with the exported module's (zaug.nets.zstack)
    return transfer_planes(torch.from_numpy(planes), torch.from_numpy(estimates), z_in, z_out, alpha).numpy()


def _midpoint_to(mid: np.ndarray, first: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
    """The plane at relative position ``t`` on the quadratic through ``first``, ``mid`` (t = 0.5) and ``last``.

    A quadratic departs from its chord by ``4 t (1 - t)`` times its departure at the midpoint.

    >>> _midpoint_to(np.array([0.25]), np.array([0.0]), np.array([1.0]), 0.3)  # f = t**2
    array([0.09])
    """
    linear_mid = 0.5 * (first + last)
    return (1 - t) * first + t * last + 4 * t * (1 - t) * (mid - linear_mid)


def variance_cap(planes, acquired: np.ndarray, sigma: float = CAP_SMOOTHING) -> float:
    """The largest ``s`` in [0, 1] for which ``linear + s * departure`` varies no more than acquired planes do.

    The planes of a stack are alike wherever they lie along z, so a plane
    between two acquired ones varies about as much as they do. The best
    prediction of it (the mean of what its inputs leave possible) varies less:
    by the part of the plane it cannot know. The same holds after any in-plane
    linear filter, so the new planes, smoothed by a Gaussian of ``sigma``
    pixels that takes most of the noise out, should vary no more than the
    acquired planes beside them (each new plane's reference: its two acquired
    neighbours, weighted by distance). A model that learnt the curvature
    correction of planes twice as far apart breaks this between closer planes,
    brighter in the peaks than any acquired plane (cellseg3d x2: 1.23 times the
    reference's variance with the lateral weights, which lost 0.91 dB to linear
    interpolation; scaled by 0.36, +0.15 dB). The pooled variance ratio may
    exceed 1 by twice its jackknife standard error over the new planes, so
    that sampling error does not cut a model that is right (cells3d x2: 1.014
    against a bound of 1.011, scaled by 0.93, 0.01 dB lower).

    Parameters
    ----------
    planes : iterable of tuple
        ``(linear, departure, lo, hi, u)`` per new plane: linear interpolation,
        the prediction's departure from it, and its position between acquired
        planes ``lo`` and ``hi`` (``u`` in [0, 1] from ``lo``).
    acquired : numpy.ndarray
        ``(N, Y, X)`` acquired planes, on the same intensity scale.
    sigma : float
        In-plane Gaussian (pixels) applied before variances are compared.

    Returns
    -------
    float

    Examples
    --------
    New planes with 1.6 times the contrast of the acquired ones are scaled
    back to theirs; planes with less are left alone:

    >>> import numpy as np
    >>> p = np.random.default_rng(0).random((32, 32))
    >>> acquired = np.stack([p] * 4)
    >>> round(variance_cap([(0.8 * p, 0.8 * p, i, i + 1, 0.5) for i in range(3)], acquired), 3)
    0.25
    >>> variance_cap([(0.8 * p, 0.1 * p, i, i + 1, 0.5) for i in range(3)], acquired)
    1.0
    """
    def moments(plane):  # count, sum and sum of squares of the smoothed plane
        g = ndimage.gaussian_filter(np.asarray(plane, np.float64), sigma)
        return np.array([g.size, g.sum(), (g * g).sum()]), g

    cache = {}

    def reference(i):
        if i not in cache:
            cache[i] = moments(acquired[i])[0]
        return cache[i]

    rows = []  # per new plane: moments of G linear, of G departure, their cross sum, and of the reference
    for linear, departure, lo, hi, u in planes:
        m_lin, gl = moments(linear)
        m_dep, gd = moments(departure)
        rows.append(np.concatenate([m_lin, m_dep[1:], [(gl * gd).sum()],
                                    (1 - u) * reference(lo) + u * reference(hi)]))
    if len(rows) < 2:
        return 1.0
    rows = np.array(rows)

    total = rows.sum(0)
    _, departure_variance, reference_variance = _plain_variances(total)
    if not reference_variance > 1e-12:
        # constant acquired planes (a blank channel or time point): nothing to compare with, and a model that
        # would vary where they do not is held to linear interpolation
        return 0.0 if departure_variance > 1e-12 else 1.0

    def ratio_terms(t):  # variance ratio at s = v_lin + 2 s cov + s^2 v_dep over v_ref, from summed moments
        v_lin, v_dep, v_ref = _plain_variances(t)
        n, s_l, _, s_d, _, cross = t[:6]
        return v_lin / v_ref, (cross / n - (s_l / n) * (s_d / n)) / v_ref, v_dep / v_ref

    def ratio_at_one(t):
        a, b, c = ratio_terms(t)
        return a + 2 * b + c

    a, b, c = ratio_terms(total)
    with np.errstate(divide="ignore", invalid="ignore"):  # a plane whose removal leaves constant references
        left_out = np.array([ratio_at_one(total - row) for row in rows])  # delete-one jackknife over new planes
    left_out = left_out[np.isfinite(left_out)]
    k = len(left_out)
    if k < 2:
        return 1.0
    bound = 1.0 + 2.0 * np.sqrt((k - 1) / k * np.sum((left_out - left_out.mean()) ** 2))
    if c <= 0 or a + 2 * b + c <= bound:
        return 1.0
    disc = b * b - c * (a - bound)
    if a > bound and (disc < 0 or b > 0):  # out of reach: as close as scaling gets
        return float(np.clip(-b / c, 0.0, 1.0))
    return float(np.clip((-b + np.sqrt(max(disc, 0.0))) / c, 0.0, 1.0))


def _plain_variances(t) -> tuple[float, float, float]:
    """Variances of the smoothed linear planes, of the departures, and of the reference, from summed moments."""
    n, s_l, q_l, s_d, q_d, _, n_r, s_r, q_r = t
    return q_l / n - (s_l / n) ** 2, q_d / n - (s_d / n) ** 2, q_r / n_r - (s_r / n_r) ** 2


def scale_weights(weights, scale: float):
    """Calibration weights (one pair, or one per band) times ``scale``, in the same form."""
    arr = np.asarray(weights, np.float64) * float(scale)
    return tuple(map(tuple, arr.tolist())) if arr.ndim == 2 else tuple(arr.tolist())


def describe_weights(weights) -> str:
    """Calibration weights in words: ``linear interpolation + ...``."""
    w = band_weights(weights)
    if len(set(w)) == 1:
        return f"linear interpolation + {w[0][0]:.2f} x (model - linear) + {w[0][1]:.2f} x (cubic - linear)"
    row = lambda i: "/".join(f"{p[i]:.2f}" for p in w)  # noqa: E731
    edges = "/".join(f"{v:g}" for v in BAND_SIGMAS)
    return (f"linear interpolation + {row(0)} x (model - linear) + {row(1)} x (cubic - linear) in {len(w)} in-plane "
            f"detail bands from fine to coarse (split by Gaussians of {edges} px; the last is what lies below "
            f"{BAND_SIGMAS[-1]:g})")


def _clipping_offset(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """:func:`zaug.nets.zstack.clipping_offset` of two NumPy planes."""
    return clipping_offset(torch.from_numpy(a), torch.from_numpy(b), np.float32(t)).numpy()


def _best_weights(gram: np.ndarray, rhs: np.ndarray) -> tuple[float, float]:
    """Minimise ``w @ gram @ w - 2 rhs @ w`` over ``w`` in the unit square (two weights)."""
    def cost(w):
        return float(w @ gram @ w - 2 * rhs @ w)

    candidates = []
    if abs(np.linalg.det(gram)) > 1e-12 * max(1.0, float(np.trace(gram)) ** 2):
        candidates.append(np.linalg.solve(gram, rhs))
    for i in (0, 1):  # on each edge, the best value of the other weight
        j = 1 - i
        for fixed in (0.0, 1.0):
            w = np.zeros(2)
            w[i] = fixed
            w[j] = (rhs[j] - gram[j, i] * fixed) / gram[j, j] if gram[j, j] > 0 else 0.0
            candidates.append(w)
    candidates = [np.clip(w, 0.0, 1.0) for w in candidates]
    best = min(candidates, key=cost)
    return float(best[0]), float(best[1])


def _contains(grid: np.ndarray, z: np.ndarray) -> bool:
    idx = np.clip(np.searchsorted(grid, z), 0, len(grid) - 1)
    near = np.minimum(np.abs(grid[idx] - z), np.abs(grid[np.maximum(idx - 1, 0)] - z))
    return bool(np.all(near <= position_tolerance(grid)))


def _doubling_grids(z_in: np.ndarray, z_out: np.ndarray, max_passes: int = 6) -> list[np.ndarray]:
    """The z grids of :meth:`ZAugNetModel._doubling`: the input's, then each pass's midpoints added, until the
    grid holds every output position or each of its gaps is at most the output's finest spacing (the widest
    gap decides: on an uneven stack its narrowest gap may already be fine enough where others are not)."""
    grids = [np.asarray(z_in, np.float64).copy()]
    finest = np.min(np.diff(z_out)) if len(z_out) > 1 else np.inf
    for _ in range(max_passes):
        grid = grids[-1]
        if _contains(grid, z_out) or np.max(np.diff(grid)) <= finest * (1 + 1e-6):
            break
        grids.append(np.sort(np.concatenate([grid, 0.5 * (grid[1:] + grid[:-1])])))
    return grids


def _ratio_words(z_in: np.ndarray, z_out: np.ndarray) -> str:
    """'x3' for evenly spaced input and output planes, else 'these output positions'."""
    even = [len(z) > 2 and np.allclose(np.diff(z), np.diff(z).mean(), rtol=1e-6, atol=0) for z in (z_in, z_out)]
    if all(even):
        return f"x{float(np.diff(z_in).mean() / np.diff(z_out).mean()):.3g}"
    return "these output positions"
