"""Variance of the smoothed new planes over that of the acquired planes beside them: python ratios.py DATA MODEL ...

x2 drop-slice splits of kept models. Each new plane's reference is the mean of the moments of its two acquired
neighbours (in-plane Gaussian of 1 pixel first, as zaug.methods.zaugnet.variance_cap); ratios of pooled variances
for the removed planes (truth), linear interpolation, the model alone, the lateral calibration and the capped one."""
import sys
import warnings
import numpy as np
from scipy import ndimage
from zaug.evaluate import drop_slice_split
from zaug.io import read_volume
from zaug.methods import zaugnet

warnings.simplefilter("ignore")


def moments(plane):
    g = ndimage.gaussian_filter(np.asarray(plane, np.float64), 1.0)
    return np.array([g.size, g.sum(), (g * g).sum()])


def variance(m):
    return m[2] / m[0] - (m[1] / m[0]) ** 2


args = sys.argv[1:]
for path, model_dir in zip(args[0::2], args[1::2]):
    vol = read_volume(path)
    data = np.asarray(vol.data, np.float32)
    used, kept, removed = drop_slice_split(vol.nz, 2)
    z = vol.z_coords()[:used]
    model = zaugnet.load(model_dir)
    lo, hi = model.config.normalisation["low"], model.config.normalisation["high"]
    to_x = lambda a: np.clip((np.asarray(a, np.float32) - lo) / (hi - lo), 0, 1)  # noqa: E731
    x = to_x(data[kept])
    ref = variance(sum(0.5 * (moments(x[i]) + moments(x[i + 1])) for i in range(len(x) - 1)))
    rows = {"truth": to_x(data[removed]), "linear": 0.5 * (x[:-1] + x[1:])}
    for label, calibrate, cap in (("model alone", False, False), ("lateral", True, False), ("lateral+cap", True, True)):
        model.calibrate, model.cap_variance = calibrate, cap
        rows[label] = to_x(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:])[removed])
    print(model_dir + ": " + ", ".join(f"{k} {variance(sum(map(moments, v))) / ref:.3f}" for k, v in rows.items()),
          flush=True)
