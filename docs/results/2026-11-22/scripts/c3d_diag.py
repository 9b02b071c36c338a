"""Where does the kept ZAugNet model's error sit (cells3d x2)? python c3d_diag.py STACK MODEL_DIR FACTOR (writes c3d_pred.npy)"""
import sys, numpy as np
from scipy.ndimage import gaussian_filter
from skimage.filters import threshold_otsu
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
vol = read_volume(sys.argv[1]); factor = int(sys.argv[3])
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
model = zaugnet.load(sys.argv[2])
out = {}
for cal in (False, True):
    model.calibrate = cal
    out[cal] = norm(model.interpolate(data[kept], z[kept], z))[removed]
truth = norm(data[removed]); k = norm(data[kept])
lin = norm(np.asarray(__import__('zaug.classic', fromlist=['x']).interpolate_stack(data[kept], z[kept], z, 'linear')))[removed]
print('weights', model.calibration)
sm = gaussian_filter(truth, (0, 2, 2)); thr = threshold_otsu(sm); fg = sm > thr
print('foreground share', fg.mean(), 'thr', thr)
for name, p in (('linear', lin), ('raw', out[False]), ('cal', out[True])):
    e = p - truth
    tot = (e ** 2).sum()
    print(f'{name:7s} psnr {psnr(p, truth):.3f}  bg mse {np.mean(e[~fg]**2):.2e} bias {e[~fg].mean():+.4f} | fg mse {np.mean(e[fg]**2):.2e} bias {e[fg].mean():+.4f} | fg share of SSE {(e[fg]**2).sum()/tot:.2f}')
# oracle affine corrections of the calibrated prediction
p = out[True]
for name, m in (('all', np.ones_like(fg)), ):
    A = np.stack([p.ravel(), np.ones(p.size)], 1); coef = np.linalg.lstsq(A, truth.ravel(), rcond=None)[0]
    print('oracle affine', coef, psnr((A @ coef).reshape(p.shape), truth))
q = p + (truth - p).mean(); print('oracle offset', (truth - p).mean(), psnr(q, truth))
# per-plane psnr
pp = [psnr(a, b) for a, b in zip(p, truth)]; pl = [psnr(a, b) for a, b in zip(lin, truth)]
print('per-plane gain', np.round(np.array(pp) - np.array(pl), 2))
# oracle: model in fg, linear in bg and vice versa
for name, comb in (('model fg + linear bg', np.where(fg, p, lin)), ('linear fg + model bg', np.where(fg, lin, p))):
    print(name, psnr(comb, truth))
# smoothing of the calibrated prediction (oracle sigma)
for s in (0.5, 0.8, 1.2):
    print('smooth bg only s', s, psnr(np.where(fg, p, gaussian_filter(p, (0, s, s))), truth), 'all', psnr(gaussian_filter(p, (0, s, s)), truth))
np.save('c3d_pred.npy', p)
