"""Non-local-means denoising of the kept planes, then linear/cubic interpolation (cells3d x2 drop-slice): python nlm_baseline.py STACK.tif"""
import sys
import numpy as np, tifffile
from skimage.restoration import denoise_nl_means
from zaug.evaluate import drop_slice_split
from zaug.metrics import psnr
data = tifffile.imread(sys.argv[1]).astype(np.float32)
used, kept, removed = drop_slice_split(len(data), 2)
lo, hi = np.percentile(data, (0.1, 99.9)); n = np.clip((data - lo) / (hi - lo), 0, 1)
truth = n[removed]
k = n[kept]
for h in (0.6, 0.8, 1.0):
    d = np.stack([denoise_nl_means(p, h=h * 0.0245, sigma=0.0245, patch_size=5, patch_distance=6, fast_mode=True) for p in k])
    lin = 0.5 * (d[:-1] + d[1:])
    print(h, psnr(lin, truth))
# 3D: denoise the kept stack as a volume
from zaug.classic import interpolate_stack
d = np.stack([denoise_nl_means(p, h=0.8 * 0.0245, sigma=0.0245, patch_size=5, patch_distance=6, fast_mode=True) for p in k])
z = np.arange(used, dtype=float)
cub = np.clip(interpolate_stack(d, z[kept], z, "cubic"), 0, 1)
print("nlm+cubic", psnr(cub[removed], truth))
for w in (0.0, 0.05, 0.1):
    # 4-tap: outer weight -w... smoothing taps
    pass
d3 = denoise_nl_means(k, h=0.8 * 0.0245, sigma=0.0245, patch_size=3, patch_distance=3, fast_mode=True)
lin3 = 0.5 * (d3[:-1] + d3[1:])
print("nlm3d+linear", psnr(lin3, truth))
print("nlm3d+cubic", psnr(np.clip(interpolate_stack(d3, z[kept], z, "cubic"), 0, 1)[removed], truth))
