"""RESIN: 3D self-imitation networks for isotropic restoration (seed 004).

The stack is resampled along z to an isotropic grid (cubic) and two 3D U-Nets
are trained on random cubes of it (favouring the foreground): a restoration
network ``F`` and a degradation network ``D``, with three discriminators.
Write ``y`` for a raw (resampled) cube, ``a`` for the axial direction (the
direction of the long PSF axis; z unless ``axial_angle`` is set) and ``R``
for a 90 degree rotation that brings a lateral (sharp) direction onto ``a``.

- **Cycle**: ``D(F(y)) ~ y`` (L1 x 10 + (1 - 3D SSIM)).
- **Rotational equivariance** (the *self-imitation*): the restored cube
  ``F(y)`` should be equally sharp in every direction, so rotating it with
  ``R`` and degrading it must give a cube indistinguishable from a raw one:
  a 3D LSGAN discriminator compares ``D(R(F(y)))`` with real ``y``. The
  rotated cube is also a pseudo ground truth whose direction ``a`` holds
  real lateral detail: ``F(D(R(F(y)))) ~ R(F(y))`` (second cycle, target
  detached) teaches ``F`` to undo the blur along ``a`` on data where the
  answer is known.
- **MIP**: maximum intensity projections of ``F(y)`` along ``a`` and the two
  directions across it must look like the raw cube's projection along ``a``
  (a lateral image: projecting along the blurred axis loses little
  sharpness); a 2D discriminator judges them. A second 2D discriminator
  compares the projections across ``a`` of ``D(R(F(y)))`` with those of the
  raw cube, so the learned degradation reproduces the real axial blur.

- **Self-imitation with the user's degradation model** (not in the published
  RESIN): the rotated restoration ``R(F(y))`` (real lateral detail along
  ``a``, target detached) is degraded with the fixed model used for
  validation (the simulated anisotropy along z, a Gaussian line blur when
  oblique); ``F`` must restore it and ``D`` reproduce the degradation. For
  the first ``warmup_fraction`` of the budget this is the only loss.
  Without it the fast preset on a CPU never left the identity ``F = D = 1``,
  which satisfies both cycles, and its held-out PSNR fell once the
  adversarial terms took over (cells3d, x4 Gaussian, 8 minutes: best score
  at step 0, -2.3 dB at the end); with the imitation term but no warm-up the
  cycle loss still held ``F`` at the identity (+0.00 dB after 390 steps).
  ``imitation_weight = 0`` gives RESIN as published.

``L_G = cycle1 + cycle2 + imitation_weight L_imitation + gan_weight (L_volume + L_mip_iso + L_mip_aniso)``.

**Oblique axial direction** (``axial_angle`` = theta, degrees from z
towards +y, in the y-z plane, e.g. 45 for some light-sheet set-ups). The data
are never rotated or deskewed (only z is resampled to isotropic voxels, a
pure change of grid), so the prediction keeps the input's geometry:

- ``R`` is an exact grid rotation by 90 degrees in the z-y plane
  (``torch.rot90``): it maps the axial line ``a = (cos t, sin t)`` onto the
  perpendicular in-plane direction ``b = (-sin t, cos t)`` and ``b`` onto
  ``a``, so a sharp direction lands on the blurred one for *every* angle,
  without interpolation;
- ``D`` learns the oblique blur directly (the cycle ties it to the data);
- augmentations are restricted to those that keep the axial line (flip x,
  flip z and y together; for theta = 0 also flip z or y alone and swap y/x);
- only the MIPs need the axial frame: the cubes are resampled (trilinear,
  differentiably, inside the loss only) so that ``a`` becomes the first
  axis, and the central part that stays inside the cube is projected.

Model selection (``score``): held-out cubes (a block of y never trained on)
are rotated by ``R`` so that real lateral detail lies along ``a``, degraded
with a fixed, known blur along ``a`` (z: the simulated anisotropy of
``degradation`` then cubic resampling back; oblique: a Gaussian line blur of
``sigma`` voxels) and restored by ``F``; the PSNR against the rotated cube is
the score, the degraded cube itself (``cubic`` in the self-check) the baseline.

Prediction: :class:`ResinRestorer` resamples each stack to isotropic spacing
and runs ``F`` in overlapping tiles blended with linear ramps.

Examples
--------
>>> import tempfile
>>> from zaug.methods import resin
>>> from zaug.sample import load_sample
>>> sample = load_sample()
>>> vol = sample.replace(data=sample.data[::4, 40:72, 40:72], voxel_size=(1.16, 0.26, 0.26))
>>> scratch = tempfile.TemporaryDirectory()  # removed with its contents when done
>>> model = resin.load(resin.fit([vol], scratch.name + "/m", {"steps": 2, "progress": False, "cube": 16}))
>>> out = model.restore_volume(vol)
>>> out.data.shape, out.voxel_size
((63, 32, 32), (0.26, 0.26, 0.26))
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
from scipy import ndimage

from ..checkpoint import (build_to_fit, load_module_tensors, load_optimizer_state, module_tensors,
                          optimizer_state)
from ..classic import interpolate_stack
from ..data.lateral import (training_factor, degradation_model, degrade, n_samples, normalise, percentile_range,
                            resolve_sigma, target_rows)
from ..errors import InputError
from ..evaluate_oblique import line_blur_kernel
from ..losses_ssim import ssim_loss
from ..metrics import psnr, sharpness_ratio, ssim
from ..nets.unet3d import PatchDiscriminatorND, UNet3D, resin_preset
from ..nets.zstack import apply_blended_cubes, n_cubes
from ..predict import cast_like, output_positions
from ..progress import advance, part
from ..restore import default_z_spacing
from ..train import seed_everything
from ..volume import Volume, check_volume
from ._common import (ModelConfig, building_networks, data_identity, load_config, one_training_per_folder,
                      prepare_run_dir, preset_and_budget, refuse_options, resolve_device, restoration_summary,
                      train_and_save)
from .selfnet import iso_rows

MIN_CUBE = 16


class ResinTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cube: int  # side of the training cubes (isotropic voxels)
    batch: int
    lr: float
    lr_final: float
    betas: tuple[float, float] = (0.5, 0.999)
    pool: int  # cubes drawn once, re-sampled with line-preserving flips
    val_cubes: int
    cycle_weight: float = 10.0  # L1 weight in both cycles (RESIN: x10)
    ssim_weight: float = 1.0  # (1 - 3D SSIM) weight in both cycles
    gan_weight: float = 0.5  # lambda of the three adversarial terms
    imitation_weight: float = 1.0  # self-imitation with the user's degradation model (0: RESIN as published)
    warmup_fraction: float = 0.5  # share of the budget training on self-imitation alone (needs imitation_weight)
    tile: int  # prediction tile side
    overlap: int  # prediction tile overlap


TRAINING_PRESETS = {
    "paper": ResinTraining(cube=64, batch=2, lr=1e-4, lr_final=1e-5, pool=256, val_cubes=16, tile=128, overlap=24),
    "fast": ResinTraining(cube=32, batch=2, lr=2e-4, lr_final=2e-5, pool=256, val_cubes=8, tile=64, overlap=16),
}


class ResinConfig(ModelConfig):
    """Everything needed to rebuild and use a trained RESIN model (``config.json``)."""

    method: Literal["resin"] = "resin"
    preset: Literal["fast", "paper"] = "fast"
    net: dict
    training: ResinTraining
    factor: float
    axial_angle: float = 0.0
    degradation: Literal["avgpool", "gaussian"] = "gaussian"  # validation degradation only
    sigma: float | None = None  # validation blur (voxels); default factor / 2
    sigma_estimate: dict = {}  # the measurement behind sigma 'auto' (measure_axial_sigma)
    cube: int
    validation_region: dict = {}


# -- fit ----------------------------------------------------------------------------
@one_training_per_folder
def fit(volumes: list[Volume], out_dir: str | Path, options: dict | None = None) -> Path:
    """Train RESIN on the user's stack(s) and save it in ``out_dir``.

    Parameters
    ----------
    volumes : list of Volume
        Anisotropic stacks; the anisotropy factor comes from the first one's
        voxel size unless ``options["factor"]`` is given.
    out_dir : str or Path
        Model folder (an unfinished run with the same settings is resumed).
    options : dict
        ``preset`` ('fast' | 'paper'), ``steps`` or ``minutes``, ``seed``,
        ``device``, ``factor``, ``axial_angle`` (degrees, default 0),
        ``cube`` (training cube side), ``degradation`` and ``sigma`` (the
        known blur of the validation only), ``progress``, ``overwrite``,
        ``checkpoint_every_s``, ``stop``, ``check_only`` (as in :func:`zaug.methods.zaugnet.fit`).

    Returns
    -------
    Path
        The model folder (``model.safetensors`` + ``config.json``).
    """
    opts = dict(options or {})
    refuse_options(opts, "resin", ("init",))
    preset, budget = preset_and_budget(opts, TRAINING_PRESETS)
    angle = _check_angle(opts.get("axial_angle"))
    factor = _check_inputs(volumes, opts.get("factor"), angle)
    degradation, sigma = degradation_model(opts, "gaussian")
    if opts.get("renoise"):
        raise InputError("--renoise applies to the lateral training planes of niiv and selfnet; RESIN learns "
                         "its degradation in 3D. Leave out --renoise.")
    sigma, sigma_estimate = resolve_sigma(sigma, volumes, factor)
    tp = TRAINING_PRESETS[preset]
    sources = [(normalise(s, *percentile_range(s)), iso_rows(v, factor))
               for v in volumes for s in (np.asarray(s) for _, s in v.stacks())]
    n_first = int(np.prod(volumes[0].data.shape[:-3], dtype=int))
    train, val, region = _split(sources, n_first)
    cube, val_cube = _cube_sizes(int(opts.get("cube") or tp.cube), train, val)
    config = ResinConfig(preset=preset, net=resin_preset(preset), training=tp, factor=factor, axial_angle=angle,
                         degradation=degradation, sigma=sigma, sigma_estimate=sigma_estimate,
                         seed=int(opts.get("seed") or 0),
                         cube=cube, train_voxel_size=list(volumes[0].voxel_size), train_unit=volumes[0].unit,
                         validation_region=region)
    identity = {"method": "resin", "preset": preset, "seed": config.seed, "factor": factor, "axial_angle": angle,
                "cube": cube, "degradation": degradation, "sigma": config.sigma,
                "data": data_identity(volumes)}
    if sigma_estimate:  # --sigma auto: a resume measures again, and must be asked to
        identity["sigma_auto"] = True
    resolve_device(opts.get("device", "auto"))  # refused before the run folder is made
    if opts.get("check_only"):  # every refusal made, nothing trained or written (see zaug.evaluate)
        return None
    out = prepare_run_dir(Path(out_dir), identity, budget, bool(opts.get("overwrite")))
    rng = seed_everything(config.seed)
    pool = cube_pool(train, cube, tp.pool, rng)
    val_rng = np.random.default_rng(config.seed + 1)
    val = validation_set(cube_pool(val, val_cube, tp.val_cubes, val_rng), config)
    task = ResinTask(config, pool, val, resolve_device(opts.get("device", "auto")))
    return train_and_save(task, config, out, budget, opts, "resin")


def _check_angle(angle) -> float:
    angle = float(angle or 0.0)
    if not math.isfinite(angle) or abs(angle) > 90:
        raise InputError(f"--axial-angle must be between -90 and 90 degrees, got {angle:g}.")
    return angle


def _check_inputs(volumes: list[Volume], factor: float | None, angle: float) -> float:
    if not volumes:
        raise InputError("no training stack was given.")
    for vol in volumes:
        check_volume(vol, min_planes=2)
    factor = training_factor(volumes, factor)
    if angle == 0 and factor < 1.5:
        raise InputError(f"the stack is nearly isotropic (anisotropy {factor:.2f}); nothing to restore. "
                         "Pass --factor if the voxel size in the file is wrong.")
    return factor


def _split(sources: list, n_first: int) -> tuple[list, list, dict]:
    """Hold out the last rows (y) of the first volume's stacks for validation.

    A lateral block keeps every z plane in both parts, so short stacks still
    give full-height cubes.
    """
    ny = sources[0][0].shape[1]
    width = max(MIN_CUBE, int(round(0.15 * ny)))
    if ny - width < MIN_CUBE:
        raise InputError(f"the planes are {ny} pixels high: RESIN needs at least {2 * MIN_CUBE} to train on some "
                         "rows and validate on others.")
    cut = ny - width
    train = [(s[:, :cut], r) for s, r in sources[:n_first]] + list(sources[n_first:])
    val = [(s[:, cut:], r) for s, r in sources[:n_first]]
    return train, val, {"axis": "y", "start": cut, "stop": ny}


def _cube_sizes(cube: int, train: list, val: list) -> tuple[int, int]:
    def fit_in(side: int, sources: list) -> int:
        side = min([side] + [min(len(r), s.shape[1], s.shape[2]) for s, r in sources])
        return side // 4 * 4  # the U-Nets and discriminators halve the size twice

    side, val_side = fit_in(cube, train), fit_in(cube, val)
    if min(side, val_side) < MIN_CUBE:
        raise InputError(f"the stack is too small for RESIN: cubes of {MIN_CUBE} isotropic voxels are needed "
                         "(more z planes or larger planes).")
    return side, val_side


# -- data -----------------------------------------------------------------------------
def cube_pool(sources: list, side: int, n: int, rng: np.random.Generator, candidates: int = 4) -> np.ndarray:
    """``n`` isotropic cubes, each the brightest of ``candidates`` random draws.

    Only the raw planes a cube needs (plus 3 either side) are resampled along
    z (cubic), so large stacks are never resampled whole.
    """
    out = np.empty((n, side, side, side), np.float32)
    for i in range(n):
        slab, z_in, z_out = _best_window(sources, side, rng, candidates)
        out[i] = interpolate_stack(slab, z_in, z_out, "cubic")
    return out


def _best_window(sources: list, side: int, rng: np.random.Generator, candidates: int):
    best, best_mean = None, -np.inf
    for _ in range(max(1, candidates)):
        stack, rows = sources[rng.integers(len(sources))]
        r0 = int(rng.integers(len(rows) - side + 1))
        y0 = int(rng.integers(stack.shape[1] - side + 1))
        x0 = int(rng.integers(stack.shape[2] - side + 1))
        window = rows[r0:r0 + side]
        k0 = max(0, int(np.floor(window[0])) - 3)
        k1 = min(stack.shape[0], int(np.ceil(window[-1])) + 4)
        slab = stack[k0:k1, y0:y0 + side, x0:x0 + side]
        mean = float(slab.mean())
        if mean > best_mean:
            best, best_mean = (slab, np.arange(k0, k1, dtype=np.float64), window), mean
    return best


def rotate_to_axial(cubes: torch.Tensor, k: int = 1, plane: tuple[int, int] = (2, 3)) -> torch.Tensor:
    """``R``: a 90 degree grid rotation in the z-y plane (or z-x, only for a z axial direction).

    For any axial direction in the y-z plane it swaps the axial line with
    the perpendicular in-plane (sharp) direction.
    """
    return torch.rot90(cubes, k, dims=plane)


def synthetic_pairs(cubes: np.ndarray, config: ResinConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Known degradation along the axial direction: (degraded, target) per cube.

    z (angle 0): the simulated anisotropy (``degradation`` by ``factor``) then
    cubic resampling back, rows outside the sampled range cropped from both.
    Oblique: a Gaussian line blur of ``sigma`` voxels (default factor / 2, at
    least 1) along the axial direction, same shape.
    """
    f = config.factor
    degraded, targets = [], []
    for cube in cubes:
        if config.axial_angle == 0:
            low = degrade(cube, f, 0, config.degradation, config.sigma)
            rows = target_rows(cube.shape[0], f, config.degradation)
            keep = (rows >= -1e-9) & (rows <= n_samples(cube.shape[0], f, config.degradation) - 1 + 1e-9)
            degraded.append(interpolate_stack(low, np.arange(len(low), dtype=np.float64), rows[keep], "cubic"))
            targets.append(np.ascontiguousarray(cube[keep]))
        else:
            sigma = config.sigma if config.sigma is not None else 0.5 * max(f, 2.0)
            kernel = line_blur_kernel(sigma, config.axial_angle)[:, :, None]
            degraded.append(ndimage.convolve(cube, kernel, mode="reflect").astype(np.float32))
            targets.append(cube)
    return degraded, targets


def validation_set(cubes: np.ndarray, config: ResinConfig) -> dict:
    """Held-out raw cubes and pseudo pairs: the cubes rotated by ``R`` (real lateral detail along the axial
    direction) and their known degradation."""
    rotated = np.ascontiguousarray(np.rot90(cubes, 1, axes=(1, 2)))
    degraded, targets = synthetic_pairs(rotated, config)
    return {"raw": cubes, "degraded": np.stack(degraded), "target": np.stack(targets)}


# -- training -------------------------------------------------------------------------
def _lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return torch.mean((scores - (1.0 if real else 0.0)) ** 2)


class AxialFrame:
    """Projections (MIPs) along the axial direction and across it.

    For angle 0 the cube axes are used as they are. For an oblique angle the
    cube is resampled (trilinear, differentiable) so the axial direction
    becomes the first axis, and the central square of the z-y plane that
    stays inside the cube (side ``c / (|cos| + |sin|)``) is kept.
    """

    def __init__(self, angle: float, side: int, device: torch.device):
        self.angle = angle
        t = math.radians(angle)
        self.inner = int(side / (abs(math.cos(t)) + abs(math.sin(t))))
        # affine_grid maps output (x, y, z) to input (x, y, z): output axis z' runs along (cos t, sin t) in (z, y).
        matrix = [[1.0, 0.0, 0.0, 0.0], [0.0, math.cos(t), math.sin(t), 0.0], [0.0, -math.sin(t), math.cos(t), 0.0]]
        self.matrix = torch.tensor(matrix, dtype=torch.float32, device=device)[None]

    def frame(self, cubes: torch.Tensor) -> torch.Tensor:
        if self.angle == 0:
            return cubes
        grid = F.affine_grid(self.matrix.expand(len(cubes), -1, -1), list(cubes.shape), align_corners=False)
        turned = F.grid_sample(cubes, grid, mode="bilinear", padding_mode="border", align_corners=False)
        c, s = cubes.shape[2], self.inner
        lo = (c - s) // 2
        return turned[:, :, lo:lo + s, lo:lo + s]

    def mips(self, cubes: torch.Tensor) -> dict[str, torch.Tensor]:
        """``along``: projection along the axial direction (a lateral image); ``across_b``/``across_x``:
        projections along the in-plane perpendicular and along x (they contain the axial direction)."""
        v = self.frame(cubes)
        return {"along": v.amax(dim=2), "across_b": v.amax(dim=3), "across_x": v.amax(dim=4)}


def _augment(cubes: np.ndarray, rng: np.random.Generator, angle: float) -> np.ndarray:
    """Random flips/transposes that keep the axial line (any flip or y/x swap for a z axis)."""
    if rng.random() < 0.5:
        cubes = cubes[..., ::-1]
    if rng.random() < 0.5:  # flipping z and y together maps the axial line onto itself
        cubes = cubes[:, ::-1, ::-1]
    if angle == 0:
        if rng.random() < 0.5:
            cubes = cubes[:, ::-1]
        if rng.random() < 0.5:
            cubes = cubes.transpose(0, 1, 3, 2)
    return np.ascontiguousarray(cubes)


class ResinTask:
    """One RESIN training run for :func:`zaug.train.run_training`."""

    def __init__(self, config: ResinConfig, pool: np.ndarray, val: dict, device: torch.device):
        self.config, self.pool, self.val, self.device = config, pool, val, device
        self.f = UNet3D(**config.net["net"]).to(device)
        self.d = UNet3D(**config.net["net"]).to(device)
        self.disc_volume = PatchDiscriminatorND(**config.net["volume_discriminator"]).to(device)
        self.disc_iso = PatchDiscriminatorND(**config.net["mip_discriminator"]).to(device)
        self.disc_aniso = PatchDiscriminatorND(**config.net["mip_discriminator"]).to(device)
        tp = config.training
        self.opt_g = torch.optim.Adam(itertools.chain(self.f.parameters(), self.d.parameters()), lr=tp.lr,
                                      betas=tuple(tp.betas))
        self.opt_disc = torch.optim.Adam(itertools.chain(*(n.parameters() for n in self._discs())), lr=tp.lr,
                                         betas=tuple(tp.betas))
        self.axial = AxialFrame(config.axial_angle, config.cube, device)

    def _discs(self) -> tuple[torch.nn.Module, ...]:
        return self.disc_volume, self.disc_iso, self.disc_aniso

    def _pixel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp = self.config.training
        return tp.cycle_weight * F.l1_loss(pred, target) + tp.ssim_weight * ssim_loss(pred, target)

    def _rotation(self, rng: np.random.Generator) -> tuple[int, tuple[int, int]]:
        plane = (2, 4) if self.config.axial_angle == 0 and rng.random() < 0.5 else (2, 3)
        return (1 if rng.random() < 0.5 else 3), plane

    def step(self, rng: np.random.Generator, progress: float) -> dict[str, float]:
        tp = self.config.training
        lr_now = tp.lr_final + 0.5 * (tp.lr - tp.lr_final) * (1 + math.cos(math.pi * progress))
        for opt in (self.opt_g, self.opt_disc):
            for group in opt.param_groups:
                group["lr"] = lr_now
        idx = rng.integers(0, len(self.pool), tp.batch)
        y = torch.from_numpy(_augment(self.pool[idx], rng, self.config.axial_angle))[:, None].to(self.device)
        k, plane = self._rotation(rng)
        for net in (self.f, self.d, *self._discs()):
            net.train()
        if tp.imitation_weight and progress < tp.warmup_fraction:
            return self._warmup_step(y, k, plane)
        restored, degraded, losses = self._generator_step(y, k, plane)
        losses["disc"] = self._discriminator_step(y, restored, degraded)
        return losses

    def _warmup_step(self, y: torch.Tensor, k: int, plane: tuple[int, int]) -> dict[str, float]:
        with torch.no_grad():
            rotated = rotate_to_axial(self.f(y), k, plane)
        imitation = self._imitation(rotated)
        self.opt_g.zero_grad(set_to_none=True)
        imitation.backward()
        self.opt_g.step()
        return {"loss": float(imitation.detach()), "imitation": float(imitation.detach())}

    def _generator_step(self, y: torch.Tensor, k: int, plane: tuple[int, int]):
        tp = self.config.training
        for net in self._discs():
            net.requires_grad_(False)
        restored = self.f(y)
        cycle1 = self._pixel(self.d(restored), y)
        rotated = rotate_to_axial(restored, k, plane)
        degraded = self.d(rotated)  # should look like a raw cube (rotational equivariance)
        cycle2 = self._pixel(self.f(degraded), rotated.detach())
        imitation = self._imitation(rotated.detach()) if tp.imitation_weight else torch.zeros(())
        adv_volume = _lsgan(self.disc_volume(degraded), True)
        iso = self.axial.mips(restored)
        adv_iso = sum(_lsgan(self.disc_iso(m), True) for m in iso.values()) / len(iso)
        aniso = self.axial.mips(degraded)
        adv_aniso = 0.5 * (_lsgan(self.disc_aniso(aniso["across_b"]), True)
                           + _lsgan(self.disc_aniso(aniso["across_x"]), True))
        total = cycle1 + cycle2 + tp.imitation_weight * imitation + tp.gan_weight * (adv_volume + adv_iso + adv_aniso)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        for net in self._discs():
            net.requires_grad_(True)
        losses = {"loss": float(total.detach()), "cycle1": float(cycle1.detach()), "cycle2": float(cycle2.detach()),
                  "imitation": float(imitation.detach()),
                  "adv_volume": float(adv_volume.detach()), "adv_mip_iso": float(adv_iso.detach()),
                  "adv_mip_aniso": float(adv_aniso.detach())}
        return restored.detach(), degraded.detach(), losses

    def _imitation(self, rotated: torch.Tensor) -> torch.Tensor:
        """``F`` must undo, and ``D`` reproduce, the user's degradation model along the axial direction of
        ``R(F(y))``."""
        degraded, target = synthetic_pairs(rotated[:, 0].float().cpu().numpy(), self.config)
        to_tensor = lambda cubes: torch.from_numpy(np.stack(cubes))[:, None].to(self.device)  # noqa: E731
        degraded, target = to_tensor(degraded), to_tensor(target)
        return self._pixel(self.f(degraded), target) + self._pixel(self.d(target), degraded)

    def _discriminator_step(self, y: torch.Tensor, restored: torch.Tensor, degraded: torch.Tensor) -> float:
        real, iso, aniso = self.axial.mips(y), self.axial.mips(restored), self.axial.mips(degraded)
        volume = _lsgan(self.disc_volume(y), True) + _lsgan(self.disc_volume(degraded), False)
        mip_iso = _lsgan(self.disc_iso(real["along"]), True) + sum(
            _lsgan(self.disc_iso(m), False) for m in iso.values()) / len(iso)
        mip_aniso = sum(_lsgan(self.disc_aniso(real[key]), True) + _lsgan(self.disc_aniso(aniso[key]), False)
                        for key in ("across_b", "across_x")) / 2
        loss = 0.5 * (volume + mip_iso + mip_aniso)
        self.opt_disc.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_disc.step()
        return float(loss.detach())

    # -- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, net: torch.nn.Module, cubes: np.ndarray, max_voxels: int = 1 << 21) -> np.ndarray:
        net.eval()
        chunk = max(1, max_voxels // int(np.prod(cubes.shape[1:])))
        return np.concatenate([net(torch.from_numpy(np.ascontiguousarray(cubes[i:i + chunk]))[:, None]
                                   .to(self.device))[:, 0].float().cpu().numpy()
                               for i in range(0, len(cubes), chunk)])

    def _val_predictions(self) -> dict[str, np.ndarray]:
        return {"model": self._run(self.f, self.val["degraded"]), "cubic": self.val["degraded"]}

    def _cycle_l1(self) -> float:
        raw = self.val["raw"]
        return float(np.mean(np.abs(self._run(self.d, self._run(self.f, raw)) - raw)))

    def validate(self) -> dict[str, float]:
        preds, truth = self._val_predictions(), self.val["target"]
        val_psnr = psnr(preds["model"], truth)
        return {"score": val_psnr, "val_psnr": val_psnr, "val_gain_db": val_psnr - psnr(preds["cubic"], truth),
                "val_baseline": "input" if self.config.axial_angle else "cubic", "val_cycle_l1": self._cycle_l1()}

    def self_check(self) -> dict:
        preds, truth = self._val_predictions(), self.val["target"]
        planes = truth.reshape(-1, *truth.shape[2:])
        scores = {name: {"psnr": psnr(p, truth), "ssim": ssim(p.reshape(planes.shape), planes),
                         "sharpness": sharpness_ratio(p.reshape(planes.shape), planes)} for name, p in preds.items()}
        scores.update(cubes=len(truth), cube=int(truth.shape[-1]), axial_angle=self.config.axial_angle,
                      degradation=self.config.degradation if self.config.axial_angle == 0 else "line blur",
                      gain_db=scores["model"]["psnr"] - scores["cubic"]["psnr"], cycle_l1=self._cycle_l1())
        return scores

    # -- state ----------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        return {**module_tensors("f", self.f), **module_tensors("d", self.d)}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        load_module_tensors("f", self.f, weights)
        load_module_tensors("d", self.d, weights)

    def _disc_names(self) -> dict[str, torch.nn.Module]:
        return dict(zip(("disc_volume", "disc_iso", "disc_aniso"), self._discs()))

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = dict(self.weights())
        for name, net in self._disc_names().items():
            tensors.update(module_tensors(name, net))
        meta = {}
        for name, opt in (("opt_g", self.opt_g), ("opt_disc", self.opt_disc)):
            opt_tensors, meta[name] = optimizer_state(name, opt)
            tensors.update(opt_tensors)
        return tensors, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.load_weights(tensors)
        for name, net in self._disc_names().items():
            load_module_tensors(name, net, tensors)
        for name, opt in (("opt_g", self.opt_g), ("opt_disc", self.opt_disc)):
            load_optimizer_state(name, opt, tensors, meta[name])


def format_self_check(sc: dict) -> str:
    """One-line summary of a RESIN self-check (stored in ``config.json``)."""
    m = sc["model"]
    return (f"self-check on {sc['cubes']} held-out cubes of {sc['cube']} voxels, rotated so that lateral detail "
            f"lies along the axial direction and degraded ({sc['degradation']}): model PSNR {m['psnr']:.2f} dB, "
            f"SSIM {m['ssim']:.3f} vs cubic {sc['cubic']['psnr']:.2f} dB: {sc['gain_db']:+.2f} dB; sharpness "
            f"{m['sharpness']:.2f} (1.00 = as sharp as lateral detail); cycle L1 {sc['cycle_l1']:.4f}.")


# -- prediction -------------------------------------------------------------------------
def apply_tiled(net: torch.nn.Module, volume: np.ndarray, device: torch.device, tile: int = 64,
                overlap: int = 16) -> np.ndarray:
    """Run a size-preserving 3D net on a ZYX volume of any size in overlapping, blended tiles."""
    net.eval()
    with part(n_cubes(volume.shape, tile, overlap)):
        out = apply_blended_cubes(net, torch.from_numpy(np.ascontiguousarray(volume, np.float32)), tile, overlap,
                                  device, on_cube=advance)
    return out.numpy()


class ResinRestorer:
    """A trained RESIN restoration network ``F`` for whole volumes.

    Parameters
    ----------
    net : UNet3D
        The restoration network.
    config : ResinConfig
    device : torch.device
    tile, overlap : int, optional
        Tile side and overlap in voxels (default from the training preset).
    """

    def __init__(self, net: UNet3D, config: ResinConfig, device: torch.device, tile: int | None = None,
                 overlap: int | None = None):
        self.net, self.config, self.device = net, config, device
        self.tile = int(tile or config.training.tile)
        overlap = int(overlap if overlap is not None else config.training.overlap)
        self.overlap = max(0, min(overlap, self.tile // 2))  # tiles must advance
        self.name = "resin"
        self.training_summary = restoration_summary(config)

    def restore_normalised(self, stack: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Restore a normalised float ZYX stack at axial positions ``rows`` (plane-index units)."""
        stack = np.asarray(stack, np.float32)
        iso = interpolate_stack(stack, np.arange(stack.shape[0], dtype=np.float64), np.asarray(rows), "cubic")
        return apply_tiled(self.net, iso, self.device, self.tile, self.overlap)

    def default_z_spacing(self, volume: Volume) -> float:
        """As :func:`zaug.restore.default_z_spacing`; for a file without voxel size, the z step over the training
        factor."""
        if volume.unit == "pixel" and volume.voxel_size == (1.0, 1.0, 1.0):
            return volume.voxel_size[0] / self.config.factor
        return default_z_spacing(volume)

    def restore_volume(self, volume: Volume, z_spacing: float | None = None) -> Volume:
        """Isotropic restoration of every (T, C) stack.

        Parameters
        ----------
        volume : Volume
            Anisotropic stack (any dtype).
        z_spacing : float, optional
            Output z spacing in the volume's unit; default the mean lateral
            voxel size, or the input's z step if finer (for a file without
            voxel size: the z step divided by the training factor).

        Returns
        -------
        Volume
            Same dtype, axes and lateral voxel size; z voxel size ``z_spacing``.
        """
        check_volume(volume)
        if z_spacing is None:
            z_spacing = self.default_z_spacing(volume)
        z_in = volume.z_coords()
        z_out = output_positions(z_in, z_spacing=float(z_spacing))
        rows = np.interp(z_out, z_in, np.arange(volume.nz, dtype=np.float64))
        out = np.empty(volume.data.shape[:-3] + (len(z_out),) + volume.spatial_shape[1:], volume.dtype)
        with part(volume.n_stacks):
            for index, stack in volume.stacks():
                lo, hi = percentile_range(np.asarray(stack))
                restored = self.restore_normalised(normalise(stack, lo, hi), rows)
                restored *= np.float32(hi - lo)  # in place: the restored stack is the largest array here
                restored += np.float32(lo)
                cast_like(restored, volume.dtype, out=out[index])
        from ..provenance import after_step

        metadata = dict(after_step(volume, z_out, "restoration", self), axial_angle=self.config.axial_angle)
        return volume.replace(data=out, voxel_size=(float(z_spacing),) + volume.voxel_size[1:], z_positions=None,
                              z_origin=float(z_out[0]), metadata=metadata)


def load(model_dir: str | Path, device: str = "auto") -> ResinRestorer:
    """Load a trained RESIN model as a volume restorer."""
    tensors, config = load_config(ResinConfig, model_dir, "resin")
    dev = resolve_device(device)
    with building_networks(model_dir, config):
        net = build_to_fit(lambda: UNet3D(**config.net["net"]), "f", tensors, dev)
    restorer = ResinRestorer(net, config, dev)
    restorer.model_dir = Path(model_dir)  # named in the record of what it makes (zaug.provenance)
    return restorer
