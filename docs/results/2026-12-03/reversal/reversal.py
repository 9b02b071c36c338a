"""Time-reversal test-time augmentation on a kept cells3d x2 model: 8-fold vs 8-fold + swapped inputs."""
import json, sys
import numpy as np
import torch
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
import zaug.nets.zstack as zs

vol = read_volume(sys.argv[1]); keep = sys.argv[2]
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
truth = norm(data[removed])
original = zs.run_generator

def reversed_too(net, a, b, t, tta=True):
    t2 = None if t is None else 1 - t
    return 0.5 * (original(net, a, b, t, tta) + original(net, b, a, t2, tta))

model = zaugnet.load(keep)
out = {}
for label, fn in (("8-fold", original), ("8-fold + reversed", reversed_too)):
    zs.run_generator = fn
    for calibrate in (False, True):
        model.calibrate = calibrate
        pred = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
        out[f"{label}, {'calibrated' if calibrate else 'raw'}"] = (round(metrics.psnr(pred, truth), 3),
                                                                  round(metrics.ssim(pred, truth), 4))
        print(label, calibrate, out[f"{label}, {'calibrated' if calibrate else 'raw'}"], flush=True)
json.dump(out, open(keep + "/reversal.json", "w"), indent=1)
