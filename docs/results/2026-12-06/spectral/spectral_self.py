"""python spectral_self.py STACK FACTOR MODEL_DIR

Spectral fusion of model and cubic: weights per radial band fitted self-supervised at the training gap
(kept planes predicted from their kept neighbours), applied at the prediction gap, scored on the truth."""
import sys, warnings, numpy as np
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
from scipy.interpolate import CubicSpline
warnings.simplefilter("ignore")
path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; zk, zr = z[kept], z[removed]
truth = norm(data[removed]).astype(np.float64)
model = zaugnet.load(model_dir)
lo_, hi_ = model.config.normalisation["low"], model.config.normalisation["high"]
xk = np.clip((data[kept] - lo_) / (hi_ - lo_), 0, 1).astype(np.float32)
back = lambda a: norm(np.asarray(a, np.float32) * (hi_ - lo_) + lo_).astype(np.float64)
n = len(kept)
# prediction gap: raw model between neighbours
M = back(np.stack(model._pairs(xk, [(i, i + 1, 0.5) for i in range(n - 1)])))
C = norm(CubicSpline(zk, data[kept], axis=0)(zr).astype(np.float32)).astype(np.float64)
L = norm(0.5 * (data[kept][:-1] + data[kept][1:])).astype(np.float64)
print("raw model", round(metrics.psnr(M, truth), 3), "cubic", round(metrics.psnr(C, truth), 3), "linear", round(metrics.psnr(L, truth), 3))
# training gap: kept plane k from k-1, k+1 (model), and a spline through the other kept planes
inner = list(range(2, n - 2))
Mt = back(np.stack(model._pairs(xk, [(k - 1, k + 1, 0.5) for k in inner])))
Ct = np.stack([norm(CubicSpline(np.delete(zk, k), np.delete(data[kept], k, 0), axis=0)(zk[k]).astype(np.float32)) for k in inner]).astype(np.float64)
Lt = norm(0.5 * (data[kept][[k - 1 for k in inner]] + data[kept][[k + 1 for k in inner]])).astype(np.float64)
Tt = norm(data[kept][inner]).astype(np.float64)
F = lambda a: np.fft.rfft2(a, axes=(-2, -1))
ny, nx = truth.shape[-2:]
r = np.sqrt(np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.rfftfreq(nx)[None, :] ** 2) / 0.5
def fit_apply(srcs_fit, tgt_fit, srcs_app, edges, sel=None):
    Sf = [F(s if sel is None else s[sel]) for s in srcs_fit]; Tf = F(tgt_fit if sel is None else tgt_fit[sel])
    Sa = [F(s) for s in srcs_app]; out = np.zeros_like(Sa[0]); ws = []
    for a, b in zip(edges[:-1], edges[1:]):
        m = (r >= a) & (r < b)
        if not m.any(): continue
        X = np.stack([s[:, m].ravel() for s in Sf], 1); y = Tf[:, m].ravel()
        w = np.linalg.lstsq(np.concatenate([X.real, X.imag]), np.concatenate([y.real, y.imag]), rcond=None)[0]
        ws.append(np.round(w, 2).tolist())
        out[:, m] = sum(wi * s[:, m] for wi, s in zip(w, Sa))
    return np.fft.irfft2(out, s=(ny, nx), axes=(-2, -1)), ws
for nb in (6, 10, 16, 24):
    edges = np.concatenate([[0, 1e-9], np.geomspace(0.01, 1.5, nb)])
    o_or, w_or = fit_apply([M, C], truth, [M, C], edges)
    o_self, w_self = fit_apply([Mt, Ct], Tt, [M, C], edges)
    o_val, _ = fit_apply([Mt, Ct], Tt, [M, C], edges, sel=[inner.index(k) for k in (13, 14, 15, 16) if k in inner])
    o_self3, _ = fit_apply([Mt, Ct, Lt], Tt, [M, C, L], edges)
    print(nb, "bands: oracle", round(metrics.psnr(o_or, truth), 3), "self (all inner)", round(metrics.psnr(o_self, truth), 3),
          "self (val planes)", round(metrics.psnr(o_val, truth), 3), "self +lin", round(metrics.psnr(o_self3, truth), 3))
    print("  oracle w", w_or); print("  self   w", w_self)
