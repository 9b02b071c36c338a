"""Oracle 5x5 linear post-filters of a kept model's prediction (+ the two input planes, + the two outer planes), fitted on the truth of even removed planes, scored on the odd ones: python c3d_wiener_model.py MODEL_DIR STACK"""
import sys, numpy as np
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
vol = read_volume(sys.argv[2]); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
import os
if os.path.exists('raw_model.npy'):
    raw = np.load('raw_model.npy')
else:
    model = zaugnet.load(sys.argv[1]); model.calibrate = False
    raw = norm(model.interpolate(data[kept], z[kept], z))[removed]; np.save('raw_model.npy', raw)
K = norm(data[kept]); T = norm(data[removed])
Kp = np.concatenate([K[:1], K, K[-1:]])
r = 2
def feats(planes):
    F = []
    for P in planes:
        Pp = np.pad(P, ((0,0),(r,r),(r,r)), mode='reflect')
        for dy in range(-r, r+1):
            for dx in range(-r, r+1):
                F.append(Pp[:, r+dy:r+dy+P.shape[1], r+dx:r+dx+P.shape[2]])
    return F
print('raw', psnr(raw, T))
idx = np.arange(T.shape[0]); tr = idx % 2 == 0; te = ~tr
print('raw test-half', psnr(raw[te], T[te]))
for name, planes in [('model', [raw]), ('model+inputs', [raw, K[:-1], K[1:]]), ('model+inputs+outer', [raw, K[:-1], K[1:], Kp[:-3], Kp[3:]])]:
    F = feats(planes)
    A = np.stack([f[tr].ravel() for f in F], 1).astype(np.float64); A = np.c_[A, np.ones(len(A))]
    w, *_ = np.linalg.lstsq(A, T[tr].ravel().astype(np.float64), rcond=None)
    B = np.stack([f[te].ravel() for f in F], 1).astype(np.float64); B = np.c_[B, np.ones(len(B))]
    p = (B @ w).reshape(T[te].shape).astype(np.float32)
    print(name, 'wiener test-half', psnr(p, T[te]))
