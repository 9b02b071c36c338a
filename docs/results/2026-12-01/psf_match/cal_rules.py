"""Rescore kept ZAugNet models with each axial-match rule of the calibration: python cal_rules.py DATA FACTOR MODEL [rules]"""
import json, sys, time, numpy as np
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug import metrics
path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rules = sys.argv[4].split(",") if len(sys.argv) > 4 else ["none", "structure", "fwhm"]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
ev = json.load(open(model_dir + "/eval.json"))
base = {k: ev["methods"][k]["psnr"] for k in ("linear", "cubic")}
best = max(base.values())
model = zaugnet.load(model_dir)
out = {"data": path.split("/")[-1], "factor": factor, "linear": base["linear"], "cubic": base["cubic"],
       "steps": ev["methods"][model.name]["training"]["steps"], "rules": {}}
import functools
orig = model._measure_weights
for rule in rules:
    name = rule
    rule, _, per = rule.partition("@")
    model._measure_weights = functools.partial(orig, per_axis=int(per)) if per else orig
    model.axial_match = rule == "match"; t = time.time()
    pred = norm(model.interpolate(data[kept], z[kept], z, pixel_size=tuple(vol.voxel_size[1:])))[removed]
    truth = norm(data[removed])
    p, s = metrics.psnr(pred, truth), metrics.ssim(pred, truth)
    out["rules"][name] = {"psnr": round(p, 3), "ssim": round(s, 4), "gain": round(p - best, 3),
                          "weights": {f"{k:g}": [round(w, 3) for w in v] for k, v in model.calibration.items()},
                          "blur": model.calibration_blur, "seconds": round(time.time() - t, 1)}
    print(out["data"][:14], f"x{factor}", rule, out["rules"][name], flush=True)
json.dump(out, open(model_dir + f"/rules_{'_'.join(rules)}.json", "w"), indent=1)
