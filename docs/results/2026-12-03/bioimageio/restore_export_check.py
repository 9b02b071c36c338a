"""Train Self-Net and RESIN on cells3d made 4x anisotropic, export them, run the packages with bioimageio.core.

Usage: python restore_export_check.py DATA_DIR WORK_DIR [MINUTES]
The #5 protocol's simulation (Gaussian blur of sigma 2 planes along z, every 4th plane kept). Prints per method:
export time, package size, the package's output vs `zaug predict --z-spacing 0.29`, and PSNR / SSIM of both
and of cubic interpolation against the original planes 0..56 (normalised as `zaug evaluate --restore` does).
"""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bioimageio.core import Tensor, load_description, predict

from zaug.classic import interpolate_stack
from zaug.data.lateral import simulate_anisotropy
from zaug.io import read_volume, write_volume
from zaug.metrics import psnr, ssim

data, work = Path(sys.argv[1]), Path(sys.argv[2])
minutes = sys.argv[3] if len(sys.argv) > 3 else "8"
work.mkdir(parents=True, exist_ok=True)
fine = read_volume(data / "cells3d_nuclei.tif")
sim = simulate_anisotropy(fine, 4, "gaussian")
write_volume(sim.replace(metadata={}), work / "sim.tif", overwrite=True)
truth_raw = fine.data.astype(np.float64)[:4 * (sim.nz - 1) + 1]
lo, hi = np.percentile(fine.data.astype(np.float32), [0.1, 99.9])
norm = lambda a: np.clip((np.asarray(a, np.float64) - lo) / (hi - lo), 0, 1)  # noqa: E731
truth = norm(truth_raw)
zaug = [sys.executable, "-m", "zaug"]
cubic = interpolate_stack(sim.data, np.arange(sim.nz) * 4.0, np.arange(len(truth)), "cubic")
print(f"input {sim.data.shape} {sim.voxel_size}; truth planes 0..{len(truth) - 1}")
print(f"cubic: PSNR {psnr(norm(cubic), truth):.2f} dB, SSIM {ssim(norm(cubic), truth):.4f}")
for method in ("selfnet", "resin"):
    model = work / method
    if not (model / "config.json").exists():
        t0 = time.time()
        subprocess.run(zaug + ["train", str(work / "sim.tif"), "--method", method, "--degradation", "gaussian",
                               "--minutes", minutes, "-o", str(model)], check=True)
        print(f"{method}: trained in {time.time() - t0:.0f} s")
    t0 = time.time()
    subprocess.run(zaug + ["export", str(model), str(work / "sim.tif"), "-o", str(work / f"{method}.zip"),
                           "--overwrite"], check=True)
    export_s = time.time() - t0
    t0 = time.time()
    subprocess.run(zaug + ["predict", str(model), str(work / "sim.tif"), "-o", str(work / f"{method}_zaug.tif"),
                           "--z-spacing", "0.29", "--overwrite"], check=True)
    zaug_s = time.time() - t0
    ours = read_volume(work / f"{method}_zaug.tif").data.astype(np.float64)
    descr = load_description(work / f"{method}.zip")
    t0 = time.time()
    out = predict(model=descr, inputs={"raw": Tensor.from_numpy(sim.data[None].astype(np.float32),
                                                                dims=("batch", "z", "y", "x"))})
    package_s = time.time() - t0
    theirs = np.clip(np.round(out.members["output"].data.values[0]), 0, 65535)
    print(f"{method}: export {export_s:.1f} s (incl. bioimageio.core test), package "
          f"{(work / f'{method}.zip').stat().st_size / 1e6:.1f} MB zipped; zaug predict {zaug_s:.1f} s (process), "
          f"bioimageio.core predict {package_s:.1f} s (in process)")
    print(f"{method}: shapes package {theirs.shape}, zaug {ours.shape}; package (rounded to uint16) vs zaug: "
          f"max |diff| {np.abs(theirs - ours).max():.0f} grey levels, {np.mean(theirs != ours) * 100:.3f}% of "
          "voxels differ")
    for label, arr in (("zaug", ours), ("package", theirs)):
        print(f"{method} {label}: PSNR {psnr(norm(arr), truth):.2f} dB, SSIM {ssim(norm(arr), truth):.4f}")
