"""python dog_table.py STACK MODEL_DIR   (one JSON line)

x2: lateral-fitted band weights with spatial band-pass filters (differences of Gaussians), then the cap."""
import sys, json, warnings, numpy as np
from scipy import ndimage as ndi
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights, variance_cap
from zaug.classic import interpolate_stack
warnings.simplefilter("ignore")
path, model_dir = sys.argv[1], sys.argv[2]; factor = 2
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; zk, zr = z[kept], z[removed]
truth = norm(data[removed]).astype(np.float64)
model = zaugnet.load(model_dir)
lo_, hi_ = model.config.normalisation["low"], model.config.normalisation["high"]
xk = np.clip((data[kept] - lo_) / (hi_ - lo_), 0, 1).astype(np.float32)
n = len(kept)
Ddef = norm(model.interpolate(data[kept], zk, z, pixel_size=vol.voxel_size[1:]))[removed]
M = np.stack(model._pairs(xk, [(i, i + 1, 0.5) for i in range(n - 1)])).astype(np.float64)
C = interpolate_stack(xk, zk, zr, "cubic").astype(np.float64); L = 0.5 * (xk[:-1] + xk[1:]).astype(np.float64)
back = lambda a: norm(np.asarray(a, np.float32) * (hi_ - lo_) + lo_)
def bands(a, sigmas, axes):  # a = sum of the returned bands
    sig = lambda s: tuple(s if ax in axes else 0 for ax in range(a.ndim))
    levels = [a] + [ndi.gaussian_filter(a, sig(s), mode="reflect") for s in sigmas]
    return [levels[i] - levels[i + 1] for i in range(len(sigmas))] + [levels[-1]]
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
    lat.append([a.astype(np.float64) for a in (m - l, c - l, planes[k + pick] - l)])
res = {"stack": path.split("/")[-1], "default": metrics.psnr(Ddef, truth), "linear": metrics.psnr(back(L), truth),
       "cubic": metrics.psnr(back(C), truth)}
for sigmas in ((1, 2, 4, 8), (0.5, 1, 2, 4, 8), (1, 2, 4, 8, 16)):
    parts = [[bands(a, sigmas, (2,)) for a in trip] for trip in lat]  # 1D along the shared lateral axis
    w = []
    for b in range(len(sigmas) + 1):
        P = np.stack([np.concatenate([p[0][b].ravel() for p in parts]), np.concatenate([p[1][b].ravel() for p in parts])])
        e = np.concatenate([p[2][b].ravel() for p in parts])
        w.append(_best_weights(P @ P.T, P @ e) if len(parts) else (1.0, 0.0))
    dm, dc = bands(M - L, sigmas, (1, 2)), bands(C - L, sigmas, (1, 2))
    dep = sum(a * x + c * y for (a, c), x, y in zip(w, dm, dc))
    s = variance_cap(((L[i], dep[i], i, i + 1, 0.5) for i in range(n - 1)), xk)
    res[str(sigmas)] = (round(metrics.psnr(back(L + s * dep), truth), 3), round(s, 2), [tuple(round(float(v), 2) for v in x) for x in w])
print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}))
