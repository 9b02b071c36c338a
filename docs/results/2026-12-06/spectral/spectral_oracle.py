"""python spectral_oracle.py STACK FACTOR MODEL_DIR

Oracle (weights fitted on the truth, an upper bound): per radial frequency bin, least-squares weights of (pred, cubic, linear) against the truth."""
import sys, warnings, numpy as np
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from scipy.interpolate import CubicSpline, interp1d
warnings.simplefilter("ignore")
path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; truth = norm(data[removed]).astype(np.float64)
from zaug.methods import zaugnet
pred = norm(zaugnet.load(model_dir).interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed].astype(np.float64)
zk, zr = z[kept], z[removed]
cub = norm(CubicSpline(zk, data[kept], axis=0)(zr).astype(np.float32)).astype(np.float64)
lin = norm(interp1d(zk, data[kept], axis=0)(zr).astype(np.float32)).astype(np.float64)
F = lambda a: np.fft.rfft2(a, axes=(-2, -1))
T, P, C, L = F(truth), F(pred), F(cub), F(lin)
ny, nx = truth.shape[-2:]
fy = np.fft.fftfreq(ny)[:, None]; fx = np.fft.rfftfreq(nx)[None, :]
r = np.sqrt(fy**2 + fx**2) / 0.5  # fraction of Nyquist
edges = np.concatenate([[0, 1e-9], np.linspace(0.02, 1.45, 40)])
for combo in (("P", "C"), ("P", "C", "L")):
    out = np.zeros_like(P); ws = []
    srcs = {"P": P, "C": C, "L": L}
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (r >= lo) & (r < hi) if hi > 1e-9 else (r == 0)
        if not m.any(): continue
        X = np.stack([srcs[k][:, m].ravel() for k in combo], 1); y = T[:, m].ravel()
        A = np.concatenate([X.real, X.imag]); b = np.concatenate([y.real, y.imag])
        w = np.linalg.lstsq(A, b, rcond=None)[0]; ws.append((round(hi, 2), np.round(w, 2).tolist()))
        out[:, m] = (X @ w).reshape(P.shape[0], -1)
    o = np.fft.irfft2(out, s=(ny, nx), axes=(-2, -1))
    print(combo, "oracle spectral fusion", round(metrics.psnr(o, truth), 3))
    print(ws[:12])
