"""Inference variants of a kept ZAugNet model on drop-slice planes (TTA, swap, blends): python za_variants.py STACK MODEL_DIR FACTOR"""
import sys, numpy as np, tifffile
from scipy import ndimage
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split
from zaug.metrics import psnr
path, keep, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = tifffile.imread(path).astype(np.float32)
used, kept, removed = drop_slice_split(len(data), factor)
lo, hi = np.percentile(data, (0.1, 99.9)); norm = lambda x: np.clip((x - lo) / (hi - lo), 0, 1)
z = np.arange(used, dtype=np.float64)
truth = norm(data[removed])
m = zaugnet.load(keep)
def run(tta):
    m.tta = tta
    return norm(m.interpolate(data[kept], z[kept], z))
fwd = run(True)
rev = norm(m.interpolate(data[kept][::-1].copy(), -z[kept][::-1], -z[::-1]))[::-1]
from zaug.classic import interpolate_stack
lin = norm(interpolate_stack(data[kept], z[kept], z, "linear"))
res = {"tta8": fwd, "tta8+swap": 0.5 * (fwd + rev), "notta": run(False), "linear": lin}
for k, v in res.items():
    print(f"{k:12s} {psnr(v[removed], truth):.3f}")
for a in (0.8, 0.9, 1.1):
    print(f"blend a={a}  {psnr((a * res['tta8+swap'] + (1 - a) * lin)[removed], truth):.3f}")
for s in (0.3, 0.5):
    print(f"smooth s={s}  {psnr(ndimage.gaussian_filter(res['tta8+swap'][removed], (0, s, s)), truth):.3f}")
