"""Inference variants of a kept ZAugNet model on a drop-slice split: python variants.py DATA FACTOR MODELDIR"""
import json, sys
import numpy as np
from zaug import metrics
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser

path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path)
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
zk = z[kept]
truth = norm(data[removed])
model = zaugnet.load(model_dir)
low, high = model.config.normalisation["low"], model.config.normalisation["high"]
to_x = lambda a: np.clip((np.asarray(a, np.float32) - low) / (high - low), 0, 1)
from_x = lambda x: x * np.float32(high - low) + np.float32(low)
res = {}
def score(name, pred):
    p = norm(pred)[removed] if len(pred) == used else norm(pred)
    res[name] = (metrics.psnr(p, truth), metrics.ssim(p, truth))
    print(f"{name:28s} {res[name][0]:.3f} {res[name][1]:.4f}", flush=True)
    return pred

lin = score("linear", zaugnet.interpolate_stack(data[kept], zk, z, "linear"))
model.mode = "direct"
direct = score("direct", model.interpolate(data[kept], zk, z))
w_direct = dict(model.calibration)
model.mode = "transfer"
transfer = score("transfer a=0.5", model.interpolate(data[kept], zk, z))
x = to_x(data[kept])
jobs = [(i - 1, i + 1, float((zk[i] - zk[i - 1]) / (zk[i + 1] - zk[i - 1]))) for i in range(1, len(zk) - 1)]
est = np.stack(model._pairs(x, jobs))
for a in (0.3, 0.7, 1.0):
    score(f"transfer a={a}", from_x(zaugnet.transfer_interpolate(x, est, zk, z, alpha=a)))
model.mode = "direct"
for a in (0.5, 0.7):
    s = x.copy()
    s[1:-1] = a * x[1:-1] + (1 - a) * est
    d = score(f"direct on denoised a={a}", model.interpolate(from_x(s), zk, z))
    res[f"w direct on denoised a={a}"] = {str(k): v for k, v in model.calibration.items()}
    if a == 0.5:
        dd = d
for w in (0.25, 0.5, 0.75):
    score(f"blend direct/transfer w={w}", w * direct + (1 - w) * transfer)
    score(f"blend dden/transfer w={w}", w * dd + (1 - w) * transfer)
model.calibrate = False
score("direct uncalibrated", model.interpolate(data[kept], zk, z))
res["w direct"] = {str(k): v for k, v in w_direct.items()}
json.dump(res, open(model_dir + "/variants.json", "w"), indent=1, default=str)
