"""Truth-optimal calibration weights vs lateral-proxy weights, proxy blurred along its z-like axis,
with and without the noise that the blur removed put back."""
import sys, numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.ndimage import convolve
_M = np.array([[1., -2, 1], [-2, 4, -2], [1, -2, 1]])
def estimate_sigma(p):
    c = convolve(p.astype(np.float64), _M)[1:-1, 1:-1]
    return np.sqrt(np.pi / 2) * np.abs(c).mean() / 6
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.classic import interpolate_stack
from zaug.isotropy import isotropy_ratio
from zaug.metrics import psnr
path, model_dir, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
m = zaugnet.load(model_dir); m.calibrate = False
lo, hi = m.config.normalisation["low"], m.config.normalisation["high"]
x = np.clip((data[kept] - lo) / (hi - lo), 0, 1).astype(np.float32)
spacing = float(z[kept][1] - z[kept][0]); pixel = tuple(vol.voxel_size[1:])
if factor == 2:
    raw = norm(m.interpolate(data[kept], z[kept], z))[removed]
    truth = norm(data[removed]); k = norm(data[kept])
    lin = 0.5 * (k[:-1] + k[1:]); cub = np.clip(norm(interpolate_stack(data[kept], z[kept], z, "cubic"))[removed], 0, 1)
    parts = np.stack([(raw - lin).ravel(), (cub - lin).ravel()]).astype(np.float64)
    g, r = parts @ parts.T, parts @ (truth - lin).ravel().astype(np.float64)
    def score(w): return psnr(lin + w[0] * (raw - lin) + w[1] * (cub - lin), truth)
    wt = _best_weights(g, r); print("truth-optimal", np.round(wt, 3), round(score(wt), 3), "linear", round(psnr(lin, truth), 3), "raw", round(score((1,0)),3), flush=True)
iso = isotropy_ratio(x, (spacing, *pixel))
print("isotropy of kept stack", {k: v for k, v in iso.items()}, flush=True)
noise = float(np.mean([estimate_sigma(p) for p in x[::max(1, len(x)//16)]]))
print("noise sigma (normalised)", noise)
rng = np.random.default_rng(0)
def measure(sig, renoise, spacing_use, per_axis=16, rows=96, cols=256, line=48):
    gram, rhs = np.zeros((2, 2)), np.zeros(2)
    for axis in (1, 2):
        sp = sig / pixel[axis - 1]  # sigma given in z units -> pixels
        if sp > 0:
            xa = gaussian_filter1d(x, sp, axis=axis)
            if renoise:
                kern = np.exp(-0.5 * (np.arange(-int(4*sp)-1, int(4*sp)+2) / sp) ** 2); kern /= kern.sum()
                xa = xa + rng.normal(0, noise * np.sqrt(max(0, 1 - (kern ** 2).sum())), xa.shape).astype(np.float32)
        else:
            xa = x
        gap = int(round(spacing_use / (2 * pixel[axis - 1]))); n = xa.shape[axis]
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
ax, la = iso["axial_fwhm"], iso["lateral_fwhm"]
sig_fwhm = np.sqrt(max(ax**2 - la**2, 0)) / 2.3548
print("sigma from fwhm (z units)", sig_fwhm)
for s in sys.argv[4:]:
    sig = sig_fwhm if s == "auto" else float(s)
    for renoise in (True,):
        for sp_use in [spacing]:
            w = measure(sig, renoise, sp_use)
            print(f"sigma {sig:.3f} renoise {renoise}", np.round(w, 3), round(score(w), 3) if factor == 2 else "", flush=True)
