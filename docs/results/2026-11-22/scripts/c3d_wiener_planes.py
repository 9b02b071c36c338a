"""Oracle linear filters (7x7 per plane) from 2 vs 4 kept planes, fitted on the truth of even removed planes, scored on the odd ones: python c3d_wiener_planes.py STACK"""
import sys
import numpy as np
from zaug.io import read_volume
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
vol = read_volume(sys.argv[1]); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
K = norm(data[kept]); T = norm(data[removed])
Kp = np.concatenate([K[:1], K, K[-1:]])
r = 3
def feats(planes):
    F = []
    for P in planes:
        Pp = np.pad(P, ((0,0),(r,r),(r,r)), mode='reflect')
        for dy in range(-r, r+1):
            for dx in range(-r, r+1):
                F.append(Pp[:, r+dy:r+dy+P.shape[1], r+dx:r+dx+P.shape[2]])
    return F
lin = 0.5*(K[:-1]+K[1:])
print('lin', psnr(lin, T))
for name, planes in [('2-plane', [K[:-1], K[1:]]), ('4-plane', [K[:-1], K[1:], Kp[:-3], Kp[3:]])]:
    F = feats(planes)
    n = len(F); idx = np.arange(T.shape[0]); tr = idx % 2 == 0; te = ~tr
    A = np.stack([f[tr].ravel() for f in F], 1).astype(np.float64); A = np.c_[A, np.ones(len(A))]
    w, *_ = np.linalg.lstsq(A, T[tr].ravel().astype(np.float64), rcond=None)
    B = np.stack([f[te].ravel() for f in F], 1).astype(np.float64); B = np.c_[B, np.ones(len(B))]
    p = (B @ w).reshape(T[te].shape).astype(np.float32)
    print(name, 'wiener test-half', psnr(p, T[te]), 'lin test-half', psnr(lin[te], T[te]))
