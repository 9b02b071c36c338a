"""x2 only: raw model prediction once, then each calibration variant (rule@per_axis) blended and scored."""
import json, sys, time, functools, numpy as np
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.classic import interpolate_stack
from zaug.metrics import psnr, ssim
path, model_dir = sys.argv[1], sys.argv[2]
variants = sys.argv[3].split(",")
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
best = max(psnr(lin, truth), psnr(cub, truth))
wt = _best_weights(g, r)
res = {"data": path.split("/")[-1], "linear": psnr(lin, truth), "cubic": psnr(cub, truth), "raw": score((1, 0)),
       "truth_optimal": [wt, score(wt)], "variants": {}}
print(res["data"][:12], "linear %.3f cubic %.3f raw %.3f truth-opt %s %.3f" % (res["linear"], res["cubic"], res["raw"], np.round(wt, 3), score(wt)), flush=True)
orig = m._measure_weights
for v in variants:
    rule, _, per = v.partition("@")
    m._measure_weights = functools.partial(orig, per_axis=int(per)) if per else orig
    m.axial_match = rule == "match"; m.calibration.clear(); m.calibration_blur = None; t = time.time()
    w = m.calibration_weights(x, spacing, pixel, z_spacing=spacing)
    res["variants"][v] = {"weights": w, "psnr": score(w), "gain": score(w) - best, "blur": m.calibration_blur, "s": time.time() - t}
    print(f"  {v:12s} w {np.round(w, 3)} psnr {score(w):.3f} gain {score(w) - best:+.3f} ({time.time() - t:.0f}s) blur {m.calibration_blur and np.round(m.calibration_blur['sigma'], 2)}", flush=True)
json.dump(res, open(model_dir + "/cal_fast.json", "w"), indent=1, default=float)
