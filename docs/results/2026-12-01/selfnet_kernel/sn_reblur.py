"""Is Self-Net's loss the original's axial blur it removes? Re-blur its output along z and rescore."""
import sys
import numpy as np
from scipy import ndimage
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration
from zaug import metrics
path, keep = sys.argv[1], sys.argv[2]
selfnet.fit = lambda vols, out, opts: keep
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["selfnet"], {"progress": False}, keep_predictions=True)
arr = res["arrays"]
pred, truth = arr["selfnet"], arr.get("truth", arr.get("original"))
print(list(arr))
for s in (0, 0.5, 0.8, 1.0, 1.3):
    p = ndimage.gaussian_filter1d(pred, s, axis=0) if s else pred
    sc = metrics.score(p, truth)
    print(f"z sigma {s}: PSNR {sc['psnr']:.2f} SSIM {sc['ssim']:.4f}")
for s in (0.5, 0.8):
    p = ndimage.gaussian_filter(pred, (0, s, s))
    sc = metrics.score(p, truth)
    print(f"xy sigma {s}: PSNR {sc['psnr']:.2f} SSIM {sc['ssim']:.4f}")
