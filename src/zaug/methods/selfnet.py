"""Self-Net: isotropic restoration with a learned degradation (seed 002).

Two stages trained on the user's stack alone, in one run of the shared loop:

1. **Degradation, unsupervised.** A CycleGAN between domain A, lateral (xy)
   patches degraded along one axis by the anisotropy factor and resampled
   back with cubic interpolation (so they have the sampling of an axial plane
   resampled to isotropic spacing), and domain B, real axial (xz, yz) patches
   of the stack resampled along z to isotropic spacing with cubic
   interpolation. ``G_AB`` (a ResNet in the ``paper`` preset; in ``fast``
   a learned 1D blur kernel along z, which can blur but not invent content:
   with the ResNet, the ``fast`` model lost 1.8 dB to cubic interpolation on
   cellseg3d) learns to make lateral patches look axial (the real
   axial blur, which the fixed degradation only approximates), ``G_BA`` the
   reverse; LSGAN PatchGAN discriminators, a cycle loss (Charbonnier +
   0.1 (1 - SSIM)), CycleGAN's identity loss (weight 0.5), which keeps
   the generators from shifting intensities, and a flux loss: a blur moves
   intensity only locally, so ``G(x)`` and ``x`` must agree once averaged over
   windows of twice the anisotropy factor; without it the CycleGAN learnt
   the domains' difference in content (objects elongated along z fill more
   of an axial patch) as a change of contrast.
2. **Restoration, supervised.** A deblurring network learns
   ``G_AB(lateral patch) -> lateral patch`` with Charbonnier + 0.1 (1 - SSIM).
   Its loss on ``G_AB``'s output is also back-propagated into ``G_AB``
   (weight 0.1, the *feedback*), so the degradation keeps what the deblurring
   net needs to recover the sharp plane. Half of each deblurring batch is
   degraded by the fixed model instead of ``G_AB`` (``fixed_share``): trained
   on ``G_AB`` alone, the deblurring net followed the GAN's drift and lost
   13 dB on held-out planes within 8 minutes (cells3d, x4 Gaussian).

Schedule: for the first ``stage1_fraction`` of the budget only the CycleGAN
trains (the deblurring net would otherwise learn to invert a degradation
that is still far from the real one); then every step updates the CycleGAN
generators (with the feedback), the discriminators (every ``d_every`` steps)
and the deblurring net, in that order.

Model selection: the PSNR of the deblurring net on held-out lateral planes
(never trained on) degraded with the fixed degradation, against the original
planes (``score``). The fixed degradation is the user's model of the axial
blur (Gaussian of sigma factor/2 by default); the self-check also reports
the PSNR on ``G_AB``'s learned degradation of the same patches.

Prediction (:class:`SelfNetRestorer`): axial planes are resampled to the output
rows with cubic interpolation, then deblurred (tiled, exact at tile seams);
:func:`zaug.restore.restore_volume` restores the xz and yz planes and fuses them.

Examples
--------
>>> import tempfile
>>> from zaug.methods import selfnet
>>> from zaug.sample import load_sample
>>> sample = load_sample()
>>> vol = sample.replace(data=sample.data[::4, 40:72, 40:72], voxel_size=(1.16, 0.26, 0.26))
>>> scratch = tempfile.TemporaryDirectory()  # removed with its contents when done
>>> model = selfnet.load(selfnet.fit([vol], scratch.name + "/m", {"steps": 2, "progress": False}))
>>> model.name, model.config.degradation
('selfnet', 'gaussian')
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from ..checkpoint import (build_to_fit, load_module_tensors, load_optimizer_state, module_tensors,
                          optimizer_state)
from ..data.lateral import (training_factor, degradation_model, lateral_pairs, n_samples, normalise,
                            percentile_range, renoise_option, resolve_sigma, split_lateral_validation,
                            target_rows)
from ..errors import InputError
from ..losses import charbonnier
from ..losses_ssim import ssim_loss
from ..metrics import psnr, sharpness_ratio, ssim
from ..nets.axial_kernel import AxialBlurKernel
from ..nets.resnet2d import PatchDiscriminator, ResNetGenerator, selfnet_preset
from ..nets.zstack import apply_exact_tiles
from ..predict import output_positions
from ..restore import ClassicalRestorer
from ..train import seed_everything
from ..volume import Volume, check_volume
from ._common import (ModelConfig, building_networks, data_identity, load_config, one_training_per_folder,
                      prepare_run_dir, preset_and_budget, refuse_options, resolve_device, restoration_summary,
                      train_and_save)

MIN_PATCH = 16  # smallest patch side the discriminators and SSIM work well on


class SelfNetTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patch: int  # side of the high-res training patches
    batch: int
    lr: float
    lr_final: float
    betas: tuple[float, float] = (0.5, 0.999)
    pool: int  # patches drawn once per domain, re-sampled with flips
    val_patches: int  # held-out lateral patches for model selection
    stage1_fraction: float  # share of the budget training the CycleGAN alone
    gan_weight: float = 0.1
    cycle_weight: float = 1.0
    ssim_weight: float = 0.1
    feedback_weight: float = 0.1
    identity_weight: float = 0.5  # CycleGAN identity loss: G_AB(b) ~ b, G_BA(a) ~ a (keeps intensities)
    fixed_share: float = 0.5  # share of each deblurring batch degraded by the fixed model instead of G_AB
    flux_weight: float = 1.0  # blur conserves intensity: G(x) and x agree once low-passed (see _flux)
    d_every: int = 2  # discriminator update every d_every steps (Self-Net's public code: 2)
    # G_AB: "resnet" (the paper's) or "kernel", a learned 1D axial blur (see zaug.nets.axial_kernel)
    degradation_net: Literal["resnet", "kernel"] = "resnet"


TRAINING_PRESETS = {
    "paper": SelfNetTraining(patch=64, batch=8, lr=1e-4, lr_final=1.25e-5, pool=4096, val_patches=64,
                             stage1_fraction=0.05),
    # the kernel G_AB: cellseg3d x4 Gaussian, 15 min, 34.64 dB / SSIM 0.900 vs the ResNet's 30.79 / 0.838
    "fast": SelfNetTraining(patch=48, batch=4, lr=2e-4, lr_final=2e-5, pool=1024, val_patches=32,
                            stage1_fraction=0.15, degradation_net="kernel"),
}


class SelfNetConfig(ModelConfig):
    """Everything needed to rebuild and use a trained Self-Net model (``config.json``)."""

    method: Literal["selfnet"] = "selfnet"
    preset: Literal["fast", "paper"] = "fast"
    net: dict
    training: SelfNetTraining
    factor: float
    degradation: Literal["avgpool", "gaussian"] = "gaussian"
    sigma: float | None = None
    sigma_estimate: dict = {}  # the measurement behind sigma 'auto' (measure_axial_sigma)
    renoise: bool = False  # lateral_pairs(renoise=)
    patch: list[int] = []  # (rows, columns) of the training patches after cropping to sampled rows
    validation_planes: list[int] = []


# -- fit ----------------------------------------------------------------------------
@one_training_per_folder
def fit(volumes: list[Volume], out_dir: str | Path, options: dict | None = None) -> Path:
    """Train Self-Net on the user's stack(s) and save it in ``out_dir``.

    Parameters
    ----------
    volumes : list of Volume
        Anisotropic stacks; the anisotropy factor comes from the first one's
        voxel size unless ``options["factor"]`` is given.
    out_dir : str or Path
        Model folder (an unfinished run with the same settings is resumed).
    options : dict
        ``preset`` ('fast' | 'paper'), ``steps`` or ``minutes``, ``seed``,
        ``device``, ``factor``, ``degradation`` ('avgpool' | 'gaussian',
        default 'gaussian'), ``sigma``, ``progress``, ``overwrite``,
        ``checkpoint_every_s``, ``stop``, ``check_only`` (as in :func:`zaug.methods.zaugnet.fit`).

    Returns
    -------
    Path
        The model folder (``model.safetensors`` + ``config.json``).
    """
    opts = dict(options or {})
    refuse_options(opts, "selfnet", ("axial_angle", "init"))
    preset, budget = preset_and_budget(opts, TRAINING_PRESETS)
    factor = _check_inputs(volumes, opts.get("factor"))
    degradation, sigma = degradation_model(opts, "gaussian")
    renoise = renoise_option(opts, degradation, sigma)
    sigma, sigma_estimate = resolve_sigma(sigma, volumes, factor, advise=degradation == "gaussian")
    tp = TRAINING_PRESETS[preset]
    config = SelfNetConfig(preset=preset, net=selfnet_preset(preset), training=tp, factor=factor,
                           degradation=degradation, sigma=sigma, sigma_estimate=sigma_estimate, renoise=renoise,
                           seed=int(opts.get("seed") or 0),
                           train_voxel_size=list(volumes[0].voxel_size), train_unit=volumes[0].unit)
    train_vols, val_vol, config.validation_planes = split_lateral_validation(volumes)
    hr_patch, config.patch = _patch_sizes(tp.patch, factor, degradation, volumes)
    identity = {"method": "selfnet", "preset": preset, "seed": config.seed, "factor": factor,
                "degradation": degradation, "sigma": config.sigma, "renoise": renoise,
                "data": data_identity(volumes)}
    if sigma_estimate:  # --sigma auto: a resume measures again, and must be asked to
        identity["sigma_auto"] = True
    resolve_device(opts.get("device", "auto"))  # refused before the run folder is made
    if opts.get("check_only"):  # every refusal made, nothing trained or written (see zaug.evaluate)
        return None
    out = prepare_run_dir(Path(out_dir), identity, budget, bool(opts.get("overwrite")))
    rng = seed_everything(config.seed)
    pools = lateral_domain(train_vols, config, hr_patch, tp.pool, rng)
    pools["b"] = axial_domain(volumes, factor, tuple(config.patch), tp.pool, rng)
    val = lateral_domain([val_vol], config, hr_patch, tp.val_patches, np.random.default_rng(config.seed + 1))
    task = SelfNetTask(config, pools, val, resolve_device(opts.get("device", "auto")))
    return train_and_save(task, config, out, budget, opts, "selfnet")


def _check_inputs(volumes: list[Volume], factor: float | None) -> float:
    if not volumes:
        raise InputError("no training stack was given.")
    for vol in volumes:
        check_volume(vol, min_planes=2)
    factor = training_factor(volumes, factor)
    if factor < 1.5:
        raise InputError(f"the stack is nearly isotropic (anisotropy {factor:.2f}); nothing to restore. "
                         "Pass --factor if the voxel size in the file is wrong.")
    return factor


def _sampled_rows(h: int, factor: float, degradation: str) -> np.ndarray:
    """Positions (low-res units) of the high-res rows lying between the first and last low-res sample."""
    rows = target_rows(h, factor, degradation)
    last = n_samples(h, factor, degradation) - 1
    return (rows >= -1e-9) & (rows <= last + 1e-9)


def _patch_sizes(patch: int, factor: float, degradation: str,
                 volumes: list[Volume]) -> tuple[tuple[int, int], list[int]]:
    """High-res lateral patch ``(h, w)`` and the training patch after cropping to sampled rows.

    The cropped height must also fit in the isotropically resampled axial planes.
    """
    lateral = min(min(v.spatial_shape[1:]) for v in volumes)
    axial = min(len(iso_rows(v, factor)) for v in volumes)
    h = w = min(patch, lateral)
    while h > MIN_PATCH and int(_sampled_rows(h, factor, degradation).sum()) > axial:
        h -= 1
    rows = int(_sampled_rows(h, factor, degradation).sum()) if n_samples(h, factor, degradation) >= 2 else 0
    if min(rows, w) < MIN_PATCH or rows > axial:
        raise InputError(f"the stack is too small for Self-Net at anisotropy {factor:.2f}: training patches of "
                         f"{MIN_PATCH}x{MIN_PATCH} pixels need planes of at least {MIN_PATCH} pixels and enough "
                         f"z planes to give {MIN_PATCH} isotropic rows.")
    return (h, w), [rows, w]


# -- the two domains ------------------------------------------------------------------
def iso_rows(volume: Volume, factor: float) -> np.ndarray:
    """Axial positions (in plane-index units) of an isotropic resampling of ``volume``.

    The spacing is the mean z step divided by ``factor`` (the lateral pixel
    size when the factor comes from the voxel size), as at prediction.
    """
    z = volume.z_coords()
    spacing = float(np.mean(np.diff(z))) / factor if volume.nz > 1 else 1.0
    z_out = output_positions(z, z_spacing=spacing)
    return np.interp(z_out, z, np.arange(volume.nz, dtype=np.float64))


def lateral_domain(volumes: list[Volume], config: SelfNetConfig, hr_patch: tuple[int, int], n: int,
                   rng: np.random.Generator) -> dict:
    """Domain A: lateral patches degraded along rows and cubic-resampled back, with their originals.

    Returns
    -------
    dict
        ``a`` (n, h, w) degraded-and-resampled, ``c`` (n, h, w) originals (rows
        outside the sampled range cropped), ``low`` (n, h_lr, w) the degraded
        samples and ``rows`` their high-res rows in low-res units.
    """
    per_volume = max(1, n // len(volumes))
    lows, highs, rows = [], [], None
    for vol in volumes:
        lo, hi, rows = lateral_pairs(vol, config.factor, config.degradation, hr_patch, rng, per_volume,
                                     sigma=config.sigma, renoise=config.renoise)
        lows.append(lo)
        highs.append(hi)
    keep = _sampled_rows(hr_patch[0], config.factor, config.degradation)
    low, rows = np.concatenate(lows), rows[keep].astype(np.float64)
    a = ClassicalRestorer("cubic").restore_planes(low, rows)
    return {"a": a, "c": np.ascontiguousarray(np.concatenate(highs)[:, keep]), "low": low, "rows": rows}


def axial_domain(volumes: list[Volume], factor: float, patch: tuple[int, int], n: int,
                 rng: np.random.Generator, candidates: int = 4) -> np.ndarray:
    """Domain B: ``n`` real axial (xz or yz) patches resampled along z to isotropic spacing (cubic).

    Each patch is the brightest of ``candidates`` random windows (favouring
    the foreground); only the planes a window needs (plus 3 either side) are
    interpolated, so large stacks are never resampled whole.
    """
    stacks = [(normalise(s, *percentile_range(s)), iso_rows(v, factor))
              for v in volumes for s in (np.asarray(s) for _, s in v.stacks())]
    out = np.empty((n,) + tuple(patch), np.float32)
    for i in range(n):
        slab, rows = _best_axial_window(stacks, patch, rng, candidates)
        out[i] = ClassicalRestorer("cubic").restore_planes(slab[None], rows)[0]
        for axis in (0, 1):
            if rng.random() < 0.5:
                out[i] = np.flip(out[i], axis)
    return out


def _best_axial_window(stacks, patch: tuple[int, int], rng: np.random.Generator, candidates: int):
    """Raw planes (k, w) around a random axial window and the window's rows relative to them."""
    h, w = patch
    best, best_mean = None, -np.inf
    for _ in range(max(1, candidates)):
        stack, rows = stacks[rng.integers(len(stacks))]
        r0 = int(rng.integers(len(rows) - h + 1))
        window = rows[r0:r0 + h]
        k0 = max(0, int(np.floor(window[0])) - 3)
        k1 = min(stack.shape[0], int(np.ceil(window[-1])) + 4)
        xz = rng.random() < 0.5  # plane at fixed y (xz) or fixed x (yz)
        lateral = stack.shape[2] if xz else stack.shape[1]
        c0 = int(rng.integers(lateral - w + 1))
        fixed = int(rng.integers(stack.shape[1] if xz else stack.shape[2]))
        slab = stack[k0:k1, fixed, c0:c0 + w] if xz else stack[k0:k1, c0:c0 + w, fixed]
        mean = float(slab.mean())
        if mean > best_mean:
            best, best_mean = (np.ascontiguousarray(slab, np.float32), window - k0), mean
    return best


# -- training -------------------------------------------------------------------------
def _lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return torch.mean((scores - (1.0 if real else 0.0)) ** 2)


class SelfNetTask:
    """One Self-Net training run (both stages) for :func:`zaug.train.run_training`."""

    def __init__(self, config: SelfNetConfig, pools: dict, val: dict, device: torch.device):
        self.config, self.pools, self.val, self.device = config, pools, val, device
        gen, disc = config.net["generator"], config.net["discriminator"]
        self.g_ab = (AxialBlurKernel(int(round(2 * config.factor))) if config.training.degradation_net == "kernel"
                     else ResNetGenerator(**gen)).to(device)
        self.g_ba = ResNetGenerator(**gen).to(device)
        self.deblur = ResNetGenerator(**gen).to(device)
        self.d_a = PatchDiscriminator(**disc).to(device)
        self.d_b = PatchDiscriminator(**disc).to(device)
        tp = config.training
        adam = lambda params: torch.optim.Adam(params, lr=tp.lr, betas=tuple(tp.betas))  # noqa: E731
        self.opt_g = adam(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()))
        self.opt_d = adam(itertools.chain(self.d_a.parameters(), self.d_b.parameters()))
        self.opt_deblur = adam(self.deblur.parameters())
        self.n_steps = 0

    def _pixel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Charbonnier + ssim_weight * (1 - SSIM)."""
        return charbonnier(pred, target) + self.config.training.ssim_weight * ssim_loss(pred, target)

    def _batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(A, C, B) batches; columns flipped at random (rows keep the degraded axis' sampling)."""
        batch = self.config.training.batch
        idx = rng.integers(0, len(self.pools["a"]), batch)
        a, c = self.pools["a"][idx], self.pools["c"][idx]
        if rng.random() < 0.5:
            a, c = a[:, :, ::-1], c[:, :, ::-1]
        b = self.pools["b"][rng.integers(0, len(self.pools["b"]), batch)]
        return tuple(torch.from_numpy(np.ascontiguousarray(x))[:, None].to(self.device) for x in (a, c, b))

    def step(self, rng: np.random.Generator, progress: float) -> dict[str, float]:
        tp = self.config.training
        lr_now = tp.lr_final + 0.5 * (tp.lr - tp.lr_final) * (1 + math.cos(math.pi * progress))
        for opt in (self.opt_g, self.opt_d, self.opt_deblur):
            for group in opt.param_groups:
                group["lr"] = lr_now
        a, c, b = self._batch(rng)
        joint = progress >= tp.stage1_fraction
        for net in (self.g_ab, self.g_ba, self.deblur, self.d_a, self.d_b):
            net.train()
        fake_b, fake_a, losses = self._generator_step(a, b, c, joint)
        if self.n_steps % tp.d_every == 0:
            losses["disc"] = self._discriminator_step(a, b, fake_a, fake_b)
        if joint:
            # Part of each batch keeps the user's fixed degradation, so the deblurring net stays anchored to
            # it while the learned degradation (a GAN) is still moving.
            n_fixed = int(round(tp.fixed_share * len(a)))
            degraded = torch.cat([a[:n_fixed], fake_b[n_fixed:]]) if n_fixed else fake_b
            losses["deblur"] = self._deblur_step(degraded, c)
        self.n_steps += 1
        losses["loss"] = losses["generators"] + losses.get("deblur", 0.0)
        return losses

    def _generator_step(self, a, b, c, joint: bool):
        """CycleGAN generators: adversarial + cycle (+ feedback of the deblurring loss into G_AB)."""
        tp = self.config.training
        for net in (self.d_a, self.d_b, self.deblur):
            net.requires_grad_(False)
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        gan = _lsgan(self.d_b(fake_b), True) + _lsgan(self.d_a(fake_a), True)
        cycle = self._pixel(self.g_ba(fake_b), a) + self._pixel(self.g_ab(fake_a), b)
        total = tp.gan_weight * gan + tp.cycle_weight * cycle
        losses = {"gan": float(gan.detach()), "cycle": float(cycle.detach())}
        if tp.identity_weight:
            identity = self._pixel(self.g_ab(b), b) + self._pixel(self.g_ba(a), a)
            total = total + tp.identity_weight * identity
            losses["identity"] = float(identity.detach())
        if tp.flux_weight:
            flux = self._flux(fake_b, a) + self._flux(fake_a, b)
            total = total + tp.flux_weight * flux
            losses["flux"] = float(flux.detach())
        if joint:
            feedback = self._pixel(self.deblur(fake_b), c)
            total = total + tp.feedback_weight * feedback
            losses["feedback"] = float(feedback.detach())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        for net in (self.d_a, self.d_b, self.deblur):
            net.requires_grad_(True)
        losses["generators"] = float(total.detach())
        return fake_b.detach(), fake_a.detach(), losses

    def _flux(self, generated: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Charbonnier distance of the two images averaged over windows of 2 x factor pixels.

        A blur moves intensity by about its own width, so wider window averages
        stay put; a change of contrast does not (on cellseg3d, without this
        loss, G_AB raised the contrast of lateral patches by 45%).
        """
        k = min(max(4, int(round(2 * self.config.factor))), *generated.shape[-2:])
        pool = lambda x: F.avg_pool2d(x, k, stride=max(1, k // 2))  # noqa: E731
        return charbonnier(pool(generated), pool(source))

    def _discriminator_step(self, a, b, fake_a, fake_b) -> float:
        loss = 0.5 * (_lsgan(self.d_b(b), True) + _lsgan(self.d_b(fake_b), False)
                      + _lsgan(self.d_a(a), True) + _lsgan(self.d_a(fake_a), False))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return float(loss.detach())

    def _deblur_step(self, fake_b: torch.Tensor, c: torch.Tensor) -> float:
        loss = self._pixel(self.deblur(fake_b), c)
        self.opt_deblur.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_deblur.step()
        return float(loss.detach())

    # -- validation ---------------------------------------------------------------------
    def restorer(self) -> "SelfNetRestorer":
        return SelfNetRestorer(self.deblur, self.config, self.device)

    def _val_predictions(self, learned: bool = False) -> dict[str, np.ndarray]:
        """Restorations of the held-out patches; classical ones computed once."""
        if "linear" not in self.val:
            self.val["linear"] = ClassicalRestorer("linear").restore_planes(self.val["low"], self.val["rows"])
        restorer = self.restorer()
        preds = {"model": restorer.deblur_planes(self.val["a"]), "linear": self.val["linear"],
                 "cubic": self.val["a"]}
        if learned:  # the deblurring net on G_AB's degradation of the same patches
            self.g_ab.eval()
            preds["model_on_learned_degradation"] = restorer.deblur_planes(
                _apply_tiled(self.g_ab, self.val["a"], self.device))
        return preds

    def validate(self) -> dict[str, float]:
        preds = self._val_predictions()
        truth = self.val["c"]
        val_psnr = psnr(preds["model"], truth)
        base = max(psnr(preds["linear"], truth), psnr(preds["cubic"], truth))
        return {"score": val_psnr, "val_psnr": val_psnr, "val_gain_db": val_psnr - base, "val_baseline": "interp"}

    def self_check(self) -> dict:
        preds = self._val_predictions(learned=True)
        truth = self.val["c"]
        scores = {name: {"psnr": psnr(p, truth), "ssim": ssim(p, truth), "sharpness": sharpness_ratio(p, truth)}
                  for name, p in preds.items()}
        best = max(("linear", "cubic"), key=lambda m: scores[m]["psnr"])
        scores.update(planes=len(truth), degradation=self.config.degradation, best_classical=best,
                      gain_db=scores["model"]["psnr"] - scores[best]["psnr"])
        return scores

    # -- state ----------------------------------------------------------------------------
    def _nets(self) -> dict[str, torch.nn.Module]:
        return {"deblur": self.deblur, "g_ab": self.g_ab, "g_ba": self.g_ba}

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v for name, net in self._nets().items() for k, v in module_tensors(name, net).items()}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        for name, net in self._nets().items():
            load_module_tensors(name, net, weights)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = dict(self.weights())
        tensors.update(module_tensors("d_a", self.d_a))
        tensors.update(module_tensors("d_b", self.d_b))
        meta = {"n_steps": self.n_steps}
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d), ("opt_deblur", self.opt_deblur)):
            opt_tensors, meta[name] = optimizer_state(name, opt)
            tensors.update(opt_tensors)
        return tensors, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.load_weights(tensors)
        load_module_tensors("d_a", self.d_a, tensors)
        load_module_tensors("d_b", self.d_b, tensors)
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d), ("opt_deblur", self.opt_deblur)):
            load_optimizer_state(name, opt, tensors, meta[name])
        self.n_steps = int(meta["n_steps"])


def format_self_check(sc: dict) -> str:
    """One-line summary of a Self-Net self-check (stored in ``config.json``)."""
    m = sc["model"]
    learned = sc["model_on_learned_degradation"]["psnr"]
    return (f"self-check on {sc['planes']} held-out lateral patches degraded like axial planes "
            f"({sc['degradation']}): model PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} vs linear "
            f"{sc['linear']['psnr']:.2f} dB, cubic {sc['cubic']['psnr']:.2f} dB: {sc['gain_db']:+.2f} dB over the "
            f"best interpolation; {learned:.2f} dB on the learned degradation; sharpness {m['sharpness']:.2f} "
            "(1.00 = as sharp as the real planes).")


# -- prediction -------------------------------------------------------------------------
def _apply_tiled(net: torch.nn.Module, planes: np.ndarray, device: torch.device, tile: int = 256) -> np.ndarray:
    """:func:`zaug.nets.zstack.apply_exact_tiles` on ``(n, h, w)`` NumPy planes."""
    x = torch.from_numpy(np.ascontiguousarray(planes, np.float32))[:, None]
    return apply_exact_tiles(net, x, device, tile)[:, 0].numpy()


class SelfNetRestorer:
    """A trained Self-Net deblurring network as a :class:`zaug.restore.PlaneRestorer`.

    Parameters
    ----------
    net : ResNetGenerator
        The deblurring network.
    config : SelfNetConfig
    device : torch.device
    tile : int
        Tile side in pixels (bounds memory on large planes; the result does
        not depend on it).
    """

    def __init__(self, net: ResNetGenerator, config: SelfNetConfig, device: torch.device, tile: int = 256):
        self.net, self.config, self.device, self.tile = net, config, device, tile
        self.name = "selfnet"
        self.training_summary = restoration_summary(config)

    def restore_planes(self, planes_lr: np.ndarray, out_rows: np.ndarray) -> np.ndarray:
        """Cubic resampling of the axial axis to ``out_rows``, then deblurring."""
        return self.deblur_planes(ClassicalRestorer("cubic").restore_planes(planes_lr, out_rows))

    def deblur_planes(self, planes: np.ndarray) -> np.ndarray:
        """Deblur ``(n, h, w)`` planes already sampled isotropically."""
        self.net.eval()
        return _apply_tiled(self.net, planes, self.device, self.tile)


def load(model_dir: str | Path, device: str = "auto") -> SelfNetRestorer:
    """Load a trained Self-Net model as a plane restorer."""
    tensors, config = load_config(SelfNetConfig, model_dir, "selfnet")
    dev = resolve_device(device)
    with building_networks(model_dir, config):
        net = build_to_fit(lambda: ResNetGenerator(**config.net["generator"]), "deblur", tensors, dev)
    restorer = SelfNetRestorer(net, config, dev)
    restorer.model_dir = Path(model_dir)  # named in the record of what it makes (zaug.provenance)
    return restorer
