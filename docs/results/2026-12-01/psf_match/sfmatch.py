import sys, numpy as np
from scipy.ndimage import gaussian_filter1d, convolve
from zaug.io import read_volume
_M = np.array([[1., -2, 1], [-2, 4, -2], [1, -2, 1]])
def noise_sigma(x):
    return float(np.mean([np.sqrt(np.pi / 2) * np.abs(convolve(p.astype(np.float64), _M)[1:-1, 1:-1]).mean() / 6 for p in x[::max(1, len(x)//16)]]))
def sf(x, axis, lag):
    lo, hi = int(np.floor(lag)), int(np.floor(lag)) + 1
    def d(l):
        a = np.take(x, np.arange(0, x.shape[axis] - l), axis=axis); b = np.take(x, np.arange(l, x.shape[axis]), axis=axis)
        return float(np.mean((a - b) ** 2))
    f = lag - lo
    return (1 - f) * d(lo) + f * d(hi) if f > 1e-6 else d(lo)
def kernel_sq(s):
    e = np.zeros(int(8 * s) + 3); e[len(e)//2] = 1; return float((gaussian_filter1d(e, s) ** 2).sum())
for path in sys.argv[1:]:
    v = read_volume(path); data = np.asarray(v.data, np.float32)
    for factor in (2, 4):
        x = data[::factor]; lo, hi = np.percentile(x, (0.1, 99.9)); x = np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)
        L = v.voxel_size[0] * factor; p = v.voxel_size[1:]
        dax = sf(x, 0, 1); sig = noise_sigma(x); rng = np.random.default_rng(0)
        res = []
        for s in np.arange(0, 4.01, 0.25):  # sigma in z units
            dl = []
            for axis in (1, 2):
                sp = s / p[axis - 1]
                xa = gaussian_filter1d(x, sp, axis=axis) + rng.normal(0, sig * np.sqrt(max(0, 1 - kernel_sq(sp))), x.shape).astype(np.float32) if sp > 0 else x
                dl.append(sf(xa, axis, L / p[axis - 1]))
            res.append((s, np.mean(dl)))
        res = np.array(res)
        # first sigma where lateral D falls to the axial one
        idx = np.flatnonzero(res[:, 1] <= dax)
        s_match = res[idx[0], 0] if len(idx) else np.inf
        print(path.split('/')[-1][:12], factor, f"noise {sig:.4f} Dax {dax:.5f} Dlat0 {res[0,1]:.5f} sigma_match {s_match}", np.round(res[:8, 1], 5), flush=True)
