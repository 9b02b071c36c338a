"""Oracle blend of the kept model's calibrated prediction (c3d_pred.npy from c3d_diag.py) with non-local-means + linear: python c3d_nlm_blend.py"""
import numpy as np, tifffile
from skimage.restoration import denoise_nl_means
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
data = tifffile.imread('../shared/data/cells3d_nuclei.tif').astype(np.float32)
used, kept, removed = drop_slice_split(len(data), 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
truth = norm(data[removed]); k = norm(data[kept])
p = np.load('c3d_pred.npy'); lin = 0.5 * (k[:-1] + k[1:])
d = np.stack([denoise_nl_means(q, h=0.8 * 0.0245, sigma=0.0245, patch_size=5, patch_distance=6, fast_mode=True) for q in k])
nl = 0.5 * (d[:-1] + d[1:])
print('model', psnr(p, truth), 'nlm-lin', psnr(nl, truth))
for w in (0.2, 0.3, 0.4, 0.5):
    print(w, psnr((1 - w) * p + w * nl, truth))
