import sys, numpy as np
from zaug.io import read_volume
from zaug.methods.zaugnet import lateral_proxy
from zaug.metrics import noise_sigma
def curv(x, axis, lag):
    # mean squared linear-interpolation residual of the middle of three samples lag apart (fractional: interp)
    def at(l):
        n = x.shape[axis]
        a = np.take(x, np.arange(0, n - 2 * l), axis=axis); b = np.take(x, np.arange(l, n - l), axis=axis); c = np.take(x, np.arange(2 * l, n), axis=axis)
        return float(np.mean((0.5 * (a + c) - b) ** 2))
    lo = int(np.floor(lag)); f = lag - lo
    return at(lo) if f < 1e-6 else (1 - f) * at(lo) + f * at(lo + 1)
for path in sys.argv[1:]:
    v = read_volume(path); data = np.asarray(v.data, np.float32)
    for factor in (2, 4):
        x = data[::factor]; lo, hi = np.percentile(x, (0.1, 99.9)); x = np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)
        z0 = max(0, (len(x) - 64) // 2); x = x[z0:z0 + 64, :256, :256]
        L = v.voxel_size[0] * factor; p = v.voxel_size[1:]
        cax = curv(x, 0, 1); sig = noise_sigma(x[::max(1, len(x)//16)])
        out = []
        for axis in (1, 2):
            vals = [(s, curv(lateral_proxy(x, axis, s / p[axis - 1], sig, np.random.default_rng(0)), axis, L / p[axis - 1])) for s in np.arange(0, 4.01 * L, 0.125 * L)]
            vals = np.array(vals); idx = np.flatnonzero(vals[:, 1] <= cax)
            out.append(vals[idx[0], 0] if len(idx) else np.inf)
        print(path.split('/')[-1][:12], factor, f"noise {sig:.4f} Cax {cax:.5f} Clat0 {vals[0,1]:.5f} sigma (y,x) {out} z units; L={L}", flush=True)
