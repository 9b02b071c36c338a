"""Truth-optimal calibration weights vs lateral-proxy weights with the proxy blurred along its z-like axis."""
import sys, numpy as np
from scipy.ndimage import gaussian_filter1d
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.classic import interpolate_stack
from zaug.isotropy import isotropy_ratio
from zaug.metrics import psnr
path, model_dir = sys.argv[1], sys.argv[2]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
m = zaugnet.load(model_dir); m.calibrate = False
lo, hi = m.config.normalisation["low"], m.config.normalisation["high"]
x = np.clip((data[kept] - lo) / (hi - lo), 0, 1).astype(np.float32)
spacing = float(z[kept][1] - z[kept][0]); pixel = tuple(vol.voxel_size[1:])
raw = norm(m.interpolate(data[kept], z[kept], z))[removed]
truth = norm(data[removed]); k = norm(data[kept])
lin = 0.5 * (k[:-1] + k[1:]); cub = np.clip(norm(interpolate_stack(data[kept], z[kept], z, "cubic"))[removed], 0, 1)
parts = np.stack([(raw - lin).ravel(), (cub - lin).ravel()]).astype(np.float64)
g, r = parts @ parts.T, parts @ (truth - lin).ravel().astype(np.float64)
def score(w): return psnr(lin + w[0] * (raw - lin) + w[1] * (cub - lin), truth)
wt = _best_weights(g, r); print("truth-optimal", np.round(wt, 3), round(score(wt), 3), "linear", round(psnr(lin, truth), 3))
iso = isotropy_ratio(vol.replace(data=data[kept], voxel_size=(spacing, *pixel)) if hasattr(vol, "replace") else data[kept], (spacing, *pixel))
print("isotropy of kept stack", iso.get("ratio"), iso.get("lateral_fwhm"), iso.get("axial_fwhm"), {k: v for k, v in iso.items() if k not in ("ratio",)} )
def measure(sig, per_axis=16, rows=96, cols=256, line=48):
    gram, rhs = np.zeros((2, 2)), np.zeros(2)
    for axis in (1, 2):
        xa = gaussian_filter1d(x, sig, axis=axis) if sig > 0 else x
        gap = int(round(spacing / (2 * pixel[axis - 1]))); n = xa.shape[axis]
        knots = np.arange(0, n, 2 * gap)[:line + 1]
        planes = np.moveaxis(np.take(xa, np.concatenate([knots, knots[:-1] + gap]), axis=axis), axis, 0)
        z0, c0 = max(0, (planes.shape[1] - rows) // 2), max(0, (planes.shape[2] - cols) // 2)
        planes = np.ascontiguousarray(planes[:, z0:z0 + rows, c0:c0 + cols]); kk = len(knots)
        pick = np.unique(np.linspace(0, kk - 2, per_axis).round().astype(int))
        model = np.stack(m._pairs(planes, [(int(i), int(i) + 1, 0.5) for i in pick]))
        cubic = interpolate_stack(planes[:kk], knots, knots[pick] + gap, "cubic")
        linear = 0.5 * (planes[pick] + planes[pick + 1]); t = planes[kk + pick]
        p = np.stack([(model - linear).ravel(), (cubic - linear).ravel()]).astype(np.float64)
        gram += p @ p.T; rhs += p @ (t - linear).ravel().astype(np.float64)
    return _best_weights(gram, rhs)
for sig in (0, 0.5, 1.0, 1.5, 2.0):
    w = measure(sig); print("proxy blur", sig, np.round(w, 3), round(score(w), 3))
