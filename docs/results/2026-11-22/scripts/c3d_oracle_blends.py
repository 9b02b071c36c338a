"""Oracle least-squares blends on a kept cells3d x2 model (weights fitted on the truth): python c3d_oracle_blends.py STACK MODEL_DIR [RAW_OUT.npy]"""
import sys, numpy as np
from scipy.ndimage import gaussian_filter
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
vol = read_volume(sys.argv[1]); factor = 2
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
model = zaugnet.load(sys.argv[2]); model.calibrate = False
raw = norm(model.interpolate(data[kept], z[kept], z))[removed]
np.save(sys.argv[3] if len(sys.argv) > 3 else "raw.npy", raw)
K = norm(data[kept]); truth = norm(data[removed])
lin = 0.5 * (K[:-1] + K[1:])
cub = norm(interpolate_stack(data[kept], z[kept], z, 'cubic'))[removed]
Kp = np.concatenate([K[:1], K, K[-1:]])
outer = 0.5 * (Kp[:-3] + Kp[3:])
print('raw', psnr(raw, truth), 'lin', psnr(lin, truth))
def fit(regs, name):
    A = np.stack([(r - lin).ravel() for r in regs], 1).astype(np.float64)
    w, *_ = np.linalg.lstsq(A, (truth - lin).ravel().astype(np.float64), rcond=None)
    p = lin + (A @ w).reshape(lin.shape)
    print(f'{name:40s} {psnr(p.astype(np.float32), truth):.3f}  w={np.round(w,3)}')
fit([raw], 'a model')
fit([raw, cub], 'a model + c cubic')
fit([raw, cub, outer], '+ outer')
for s in (0.5, 0.8, 1.2):
    fit([raw, cub, outer, gaussian_filter(raw, (0, s, s))], f'+ smoothed model s={s}')
    fit([raw, gaussian_filter(raw, (0, s, s)), gaussian_filter(lin, (0, s, s))], f'model, sm model, sm lin s={s}')
# the model applied to neighbouring pairs shifted: prediction of plane j from (i-1,i+2)? not available at t=0.5
