"""Does the z curvature vary slowly from plane to plane? python curv_corr.py DATA...

On the kept planes of x2 and x4 drop-slice splits: second differences D_i = x_{i+1} - 2 x_i + x_{i-1} and the
correlation of neighbouring ones, with the noise's share removed (white noise of variance s2 adds 6 s2 to var D and
-4 s2 to cov(D_i, D_{i+1})). Near 1: the profile is locally quadratic over the training gap; near or below 0: it
is not (structure narrower than the sampling)."""
import sys
import numpy as np
from skimage.restoration import estimate_sigma
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume

for path in sys.argv[1:]:
    vol = read_volume(path)
    data = np.asarray(vol.data, np.float32)
    norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
    for factor in (2, 4):
        used, kept, _ = drop_slice_split(vol.nz, factor)
        x = norm(data[kept]).astype(np.float64)
        s2 = np.mean([estimate_sigma(x[i]) ** 2 for i in np.linspace(0, len(x) - 1, 8).astype(int)])
        d = x[2:] - 2 * x[1:-1] + x[:-2]
        d = d - d.mean()
        var = float(np.mean(d ** 2))
        cov = float(np.mean(d[1:] * d[:-1]))
        raw = cov / var
        clean = (cov + 4 * s2) / (var - 6 * s2)
        print(f"{path.split('/')[-1][:22]:22s} x{factor}: corr raw {raw:+.3f} noise-corrected {clean:+.3f} "
              f"(noise share of var D {6 * s2 / var:.2f})")
