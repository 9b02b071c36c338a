"""How the linear-interpolation residual along z grows with the gap, on the kept planes of a drop-slice split.

python zprofile_stats.py DATA...  For factors 2 and 4: noise variance s2 (wavelet estimate on the kept planes,
normalised as the evaluation does), V(d) = mean squared residual x_i - (x_{i-d/2} + x_{i+d/2})/2 at outer distances
d = 2 and 4 kept spacings, the curvature part C(d) = V(d) - 1.5 s2 and its growth exponent log2 C(4)/C(2)
(4 for a smooth, well-sampled profile)."""
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
        used, kept, removed = drop_slice_split(vol.nz, factor)
        x = norm(data[kept]).astype(np.float64)
        s2 = np.mean([estimate_sigma(x[i]) ** 2 for i in np.linspace(0, len(x) - 1, 8).astype(int)])
        v = {}
        for d in (2, 4):
            h = d // 2
            v[d] = float(np.mean((x[h:-h] - 0.5 * (x[:-2 * h] + x[2 * h:])) ** 2))
        c = {d: v[d] - 1.5 * s2 for d in v}
        p = np.log2(c[4] / c[2]) if c[2] > 0 and c[4] > 0 else float("nan")
        print(f"{path.split('/')[-1][:22]:22s} x{factor}: s2 {s2:.2e} V2 {v[2]:.2e} V4 {v[4]:.2e} "
              f"C2/s2 {c[2] / s2:6.2f} C4/s2 {c[4] / s2:6.2f} exponent {p:.2f}")
