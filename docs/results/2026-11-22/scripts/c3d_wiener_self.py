"""The same post-filters fitted without the truth: on the kept planes, with the model predicting each from its neighbours two kept planes apart (the training gap): python c3d_wiener_self.py MODEL_DIR STACK"""
import sys, os, numpy as np, warnings
warnings.filterwarnings('ignore')
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr
path = sys.argv[2]
factor = int(sys.argv[3]) if len(sys.argv) > 3 else 2
tag = sys.argv[4] if len(sys.argv) > 4 else 'c3d'
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
model = zaugnet.load(sys.argv[1]); model.calibrate = False
Kraw, zk = data[kept], z[kept]
f_test = f'{tag}_test.npy'; f_tr = f'{tag}_train.npy'
if os.path.exists(f_tr):
    raw, trainpred = np.load(f_test), np.load(f_tr)
else:
    raw = norm(model.interpolate(Kraw, zk, z))
    raw = raw[[i for i in range(used) if i % factor]]  # all removed planes, in order
    n = len(kept); trainpred = np.full((n,) + Kraw.shape[1:], np.nan, np.float32)
    for off in (0, 1):
        sub = np.arange(off, n, 2)
        pred = norm(model.interpolate(Kraw[sub], zk[sub], zk[sub[0]:sub[-1] + 1]))
        for q, kk in enumerate(range(sub[0], sub[-1] + 1)):
            if (kk - off) % 2:
                trainpred[kk] = pred[q]
    np.save(f_test, raw); np.save(f_tr, trainpred)
K = norm(Kraw); T = norm(data[removed]) if factor == 2 else None
r = 2
def shifts(P):
    Pp = np.pad(P, ((0,0),(r,r),(r,r)), mode='reflect')
    return [Pp[:, r+dy:r+dy+P.shape[1], r+dx:r+dx+P.shape[2]] for dy in range(-r, r+1) for dx in range(-r, r+1)]
def design(planes):
    F = [s for P in planes for s in shifts(P)]
    A = np.stack([f.ravel() for f in F], 1).astype(np.float64)
    return np.c_[A, np.ones(len(A))]
n = len(K); idx = np.arange(n); clamp = lambda i: np.clip(i, 0, n - 1)
tk = np.arange(1, n - 1)  # training targets (kept-index)
feat_train = {'model': [trainpred[tk]], 'inputs': [trainpred[tk], K[tk - 1], K[tk + 1]],
              'outer': [trainpred[tk], K[tk - 1], K[tk + 1], K[clamp(tk - 3)], K[clamp(tk + 3)]]}
m = np.arange(n - 1)
feat_test = {'model': [raw], 'inputs': [raw, K[m], K[m + 1]],
             'outer': [raw, K[m], K[m + 1], K[clamp(m - 1)], K[clamp(m + 2)]]}
print('raw', psnr(raw, T), 'train-gap model vs kept', psnr(trainpred[tk], K[tk]), 'lin', psnr(0.5*(K[tk-1]+K[tk+1]), K[tk]))
for name in feat_train:
    A = design(feat_train[name]); w, *_ = np.linalg.lstsq(A, K[tk].ravel().astype(np.float64), rcond=None)
    p = (design(feat_test[name]) @ w).reshape(raw.shape).astype(np.float32)
    print(name, 'self-fitted wiener', round(psnr(p, T), 3), 'centre weights', np.round(w[12::25][:5], 3))
