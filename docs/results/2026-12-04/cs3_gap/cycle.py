"""Cycle check of a kept drop-slice model at the prediction gap.

python cycle.py DATA FACTOR(2) MODEL_DIR
Truth: the removed planes (as the evaluation scores them). Cycle: midpoints M of the kept planes by a method,
then the kept interior planes from consecutive midpoints (planes as far apart as at prediction) by the same
method, scored against the kept planes. Does the cycle order the model against linear / cubic as the truth does?
"""
import json, sys
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
zm = 0.5 * (zk[:-1] + zk[1:])
model = zaugnet.load(model_dir)

def run(method, stack, z_in, z_out):
    if method in ("linear", "cubic"):
        return interpolate_stack(stack, z_in, z_out, method)
    model.calibrate = method == "model-cal"
    return model.interpolate(stack, z_in, z_out)

out = {}
for method in ("linear", "cubic", "model-raw", "model-cal"):
    truth = metrics.psnr(norm(run(method, K, zk, z)[removed]), norm(data[removed]))
    M = run(method, K, zk, zm)
    back = run(method, M, zm, zk[1:-1])
    cyc = metrics.psnr(norm(back), norm(K[1:-1]))
    out[method] = {"truth": truth, "cycle": cyc}
    print(f"{method:10s} truth {truth:6.2f}  cycle {cyc:6.2f}", flush=True)
best_t = max(out["linear"]["truth"], out["cubic"]["truth"])
best_c = max(out["linear"]["cycle"], out["cubic"]["cycle"])
for m in ("model-raw", "model-cal"):
    print(f"{m}: gain truth {out[m]['truth'] - best_t:+.2f} dB, cycle {out[m]['cycle'] - best_c:+.2f} dB")
json.dump(out, open(model_dir.rstrip('/') + "_cycle.json", "w"), indent=1)
