"""python spectral_table.py STACK MODEL_DIR   (one JSON line)

x2 drop-slice on kept models: default calibration vs spectral calibrations (lateral triplets; training gap),
each followed by the variance cap on its departure from linear."""
import sys, json, warnings, numpy as np
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights, variance_cap
from zaug.classic import interpolate_stack
warnings.simplefilter("ignore")
path, model_dir = sys.argv[1], sys.argv[2]; factor = 2
EDGES = np.concatenate([[0, 1e-9], np.geomspace(0.02, 1.5, 10)]); EDGES[-1] = 10
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; zk, zr = z[kept], z[removed]
truth = norm(data[removed]).astype(np.float64)
model = zaugnet.load(model_dir)
lo_, hi_ = model.config.normalisation["low"], model.config.normalisation["high"]
xk = np.clip((data[kept] - lo_) / (hi_ - lo_), 0, 1).astype(np.float32)
n = len(kept); ny, nx = xk.shape[-2:]
Ddef = norm(model.interpolate(data[kept], zk, z, pixel_size=vol.voxel_size[1:]))[removed]
M = np.stack(model._pairs(xk, [(i, i + 1, 0.5) for i in range(n - 1)])).astype(np.float64)
C = interpolate_stack(xk, zk, zr, "cubic").astype(np.float64); L = 0.5 * (xk[:-1] + xk[1:]).astype(np.float64)
r2 = np.sqrt(np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.rfftfreq(nx)[None, :] ** 2) / 0.5
F2 = lambda a: np.fft.rfft2(a, axes=(-2, -1))
ri = lambda v: np.concatenate([v.real.ravel(), v.imag.ravel()])
def fit(bands):  # bands: list of (M, C, L, T) spectra per band -> (a, c) per band (departure form, unit box)
    out = []
    for b in bands:
        if b is None or b[0].size == 0: out.append((1.0, 0.0)); continue
        m, c, l, t = b
        P = np.stack([ri(m - l), ri(c - l)]); e = ri(t - l)
        out.append(_best_weights(P @ P.T, P @ e))
    return out
def apply(weights):
    SM, SC, SL = F2(M), F2(C), F2(L); out = SL.copy()
    for (lo, hi), (a, c) in zip(zip(EDGES[:-1], EDGES[1:]), weights):
        m = (r2 >= lo) & (r2 < hi)
        out[:, m] += a * (SM[:, m] - SL[:, m]) + c * (SC[:, m] - SL[:, m])
    return np.fft.irfft2(out, s=(ny, nx), axes=(-2, -1))
def capped(pred):
    dep = pred - L
    s = variance_cap(((L[i], dep[i], i, i + 1, 0.5) for i in range(n - 1)), xk)
    return L + s * dep, s
# lateral triplets (the package's sampling), 1D spectra along the shared lateral axis
spacing = float(np.mean(np.diff(zk))); pixel = vol.voxel_size[1:]
lat = []
for axis in (1, 2):
    gap = int(round(spacing / (2 * pixel[axis - 1]))); nn = xk.shape[axis]
    if gap < 1 or nn <= 2 * gap: continue
    knots = np.arange(0, nn, 2 * gap)[:49]
    planes = np.moveaxis(np.take(xk, np.concatenate([knots, knots[:-1] + gap]), axis=axis), axis, 0)
    z0, c0 = max(0, (planes.shape[1] - 96) // 2), max(0, (planes.shape[2] - 256) // 2)
    planes = np.ascontiguousarray(planes[:, z0:z0 + 96, c0:c0 + 256])
    k = len(knots); pick = np.unique(np.linspace(0, k - 2, 16).round().astype(int))
    m = np.stack(model._pairs(planes, [(int(i), int(i) + 1, 0.5) for i in pick]))
    c = interpolate_stack(planes[:k], knots, knots[pick] + gap, "cubic"); l = 0.5 * (planes[pick] + planes[pick + 1])
    t = planes[k + pick]
    f = np.fft.rfftfreq(planes.shape[-1]) / 0.5
    lat.append((f, [np.fft.rfft(a.astype(np.float64), axis=-1) for a in (m, c, l, t)]))
lat_bands = []
for lo, hi in zip(EDGES[:-1], EDGES[1:]):
    parts = [[s[..., (f >= lo) & (f < hi)] for s in specs] for f, specs in lat]
    lat_bands.append(tuple(np.concatenate([p[i].ravel() for p in parts]) for i in range(4)) if parts else None)
w_lat = fit(lat_bands)
# training gap: inner kept planes from their kept neighbours; cubic through the other kept planes
inner = list(range(2, n - 2))
Mt = np.stack(model._pairs(xk, [(k - 1, k + 1, 0.5) for k in inner])).astype(np.float64)
Ct = np.stack([interpolate_stack(np.delete(xk, k, 0), np.delete(zk, k), zk[k:k + 1], "cubic")[0] for k in inner]).astype(np.float64)
Lt = 0.5 * (xk[[k - 1 for k in inner]] + xk[[k + 1 for k in inner]]).astype(np.float64); Tt = xk[inner].astype(np.float64)
S = [F2(a) for a in (Mt, Ct, Lt, Tt)]
w_gap = fit([tuple(s[:, (r2 >= lo) & (r2 < hi)] for s in S) for lo, hi in zip(EDGES[:-1], EDGES[1:])])
back = lambda a: norm(np.asarray(a, np.float32) * (hi_ - lo_) + lo_)
res = {"stack": path.split("/")[-1], "model": model_dir, "default": metrics.psnr(Ddef, truth),
       "linear": metrics.psnr(back(L), truth), "cubic": metrics.psnr(back(C), truth), "raw": metrics.psnr(back(M), truth),
       "self_check_gain": model.self_check_gain_over_linear(), "default_weights": list(model.calibration.values())}
for name, w in (("lateral", w_lat), ("gap", w_gap)):
    p = apply(w); pc, s = capped(p)
    res[name] = metrics.psnr(back(p), truth); res[name + "+cap"] = metrics.psnr(back(pc), truth); res[name + "_cap"] = s
    res[name + "_w"] = [tuple(round(float(v), 2) for v in x) for x in w]
print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}))
