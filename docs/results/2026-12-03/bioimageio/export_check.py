"""Train ZAugNet on the kept planes of the shipped sample, export it, run the package with bioimageio.core.

Usage: python export_check.py WORK_DIR [MINUTES]
Prints: export time, package size, the package's output vs `zaug predict`, and both against the removed planes.
"""
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from bioimageio.core import Tensor, load_description, predict

from zaug.io import read_volume, write_volume
from zaug.metrics import psnr
from zaug.sample import load_sample

work = Path(sys.argv[1])
minutes = sys.argv[2] if len(sys.argv) > 2 else "4"
work.mkdir(parents=True, exist_ok=True)
full = load_sample()
kept = full.replace(data=full.data[::2], voxel_size=(2 * full.voxel_size[0],) + tuple(full.voxel_size[1:]))
write_volume(kept, work / "kept.tif", overwrite=True)
zaug = [sys.executable, "-m", "zaug"]
if not (work / "model" / "config.json").exists():
    subprocess.run(zaug + ["train", str(work / "kept.tif"), "--method", "zaugnet", "--minutes", minutes,
                           "-o", str(work / "model")], check=True)
t0 = time.time()
subprocess.run(zaug + ["export", str(work / "model"), str(work / "kept.tif"), "-o", str(work / "model.zip"),
                       "--overwrite"], check=True)
export_s = time.time() - t0
t0 = time.time()
subprocess.run(zaug + ["predict", str(work / "model"), str(work / "kept.tif"), "-o", str(work / "zaug_x2.tif"),
                       "--factor", "2", "--overwrite"], check=True)
zaug_s = time.time() - t0
ours = read_volume(work / "zaug_x2.tif").data.astype(np.float64)

descr = load_description(work / "model.zip")
t0 = time.time()
sample = predict(model=descr, inputs={"raw": Tensor.from_numpy(kept.data[None].astype(np.float32),
                                                              dims=("batch", "z", "y", "x"))})
package_s = time.time() - t0
theirs = sample.members["interpolated"].data.values[0]
theirs_u16 = np.clip(np.round(theirs), 0, 65535)
truth = full.data.astype(np.float64)[1:58:2]  # the removed planes 1, 3, ..., 57
linear = 0.5 * (kept.data[:-1].astype(np.float64) + kept.data[1:])
lo, hi = np.percentile(truth, [0.1, 99.9])
norm = lambda a: np.clip((a - lo) / (hi - lo), 0, 1)  # noqa: E731
with zipfile.ZipFile(work / "model.zip") as z:
    size = sum(i.file_size for i in z.infolist())
print(f"export: {export_s:.1f} s (incl. bioimageio.core test), package {size / 1e6:.1f} MB uncompressed, "
      f"{(work / 'model.zip').stat().st_size / 1e6:.1f} MB zipped")
print(f"zaug predict: {zaug_s:.1f} s (process); bioimageio.core predict: {package_s:.1f} s (in process)")
print(f"output shape: package {theirs.shape}, zaug {ours.shape}")
print(f"package (rounded to uint16) vs zaug predict: max |diff| {np.abs(theirs_u16 - ours).max():.0f} grey levels, "
      f"{np.mean(theirs_u16 != ours) * 100:.3f}% of voxels differ")
print(f"removed planes, PSNR (0.1-99.9 percentile range of the truth): zaug {psnr(norm(ours[1::2]), norm(truth)):.3f} dB, "
      f"package {psnr(norm(theirs_u16[1::2]), norm(truth)):.3f} dB, linear {psnr(norm(linear), norm(truth)):.3f} dB")
