"""Truth-fitted weights of the model's and cubic's departures from linear on the removed planes (an oracle)."""
import sys
import numpy as np
from zaug import metrics
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet

path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path)
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
K, zk = data[kept], z[kept]
truth = norm(data[removed])
lin = norm(interpolate_stack(K, zk, z, "linear")[removed])
cub = norm(interpolate_stack(K, zk, z, "cubic")[removed])
model = zaugnet.load(model_dir)
model.calibrate = False
raw = norm(model.interpolate(K, zk, z)[removed])
model.calibrate = True
cal = norm(model.interpolate(K, zk, z)[removed])
print("calibration", model.calibration)
A = np.stack([(raw - lin).ravel(), (cub - lin).ravel()], 1)
w, *_ = np.linalg.lstsq(A, (truth - lin).ravel(), rcond=None)
best = np.clip(lin + (A @ w).reshape(lin.shape), 0, 1)
for name, p in (("linear", lin), ("cubic", cub), ("raw", raw), ("calibrated", cal), (f"oracle w={np.round(w, 3)}", best)):
    print(f"{name:28s} {metrics.psnr(p, truth):6.2f}")
for s in (0.0, 0.1, 0.2, 0.3, 0.5):
    p = np.clip(lin + s * (raw - lin), 0, 1)
    print(f"linear + {s} x model departure {metrics.psnr(p, truth):6.2f}")
