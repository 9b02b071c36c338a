"""Ensembles of independently trained cells3d x2 models: python ens_oracle.py DATA MODEL..."""
import sys, json, itertools, warnings
import numpy as np
from zaug import metrics
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
warnings.simplefilter("ignore")
path, models = sys.argv[1], sys.argv[2:]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; truth = norm(data[removed])
best = max(metrics.psnr(norm(interpolate_stack(data[kept], z[kept], z[removed], m)), truth) for m in ("linear", "cubic"))
print("best classical", round(best, 3))
preds = {}
for m in models:
    model = zaugnet.load(m)
    for cal in (False, True):
        model.calibrate = cal
        preds[(m, cal)] = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
        print(m, "cal" if cal else "raw", round(metrics.psnr(preds[(m, cal)], truth) - best, 3), flush=True)
for a, b in itertools.combinations(models, 2):
    for cal in (False, True):
        p = 0.5 * (preds[(a, cal)] + preds[(b, cal)])
        print("mean", a, b, "cal" if cal else "raw", round(metrics.psnr(p, truth) - best, 3), flush=True)
for cal in (False, True):
    p = np.mean([preds[(m, cal)] for m in models], 0)
    print("mean all", "cal" if cal else "raw", round(metrics.psnr(p, truth) - best, 3), flush=True)
