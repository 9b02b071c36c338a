"""Axial weights of a kept ZAugNet model at several gaps: python gapcal.py DATA FACTOR MODELDIR

On the kept planes alone, the least-squares weights (model, cubic) of linear + a (model - linear) + c (cubic - linear)
are fitted at outer-plane distances of 2 kept spacings (the training gap) and 4 (twice it); on the removed planes
(the truth, an oracle) at the prediction gap. Prints them with the lateral calibration's weights and the PSNR of
each set of weights (x2 only)."""
import sys
import numpy as np
from zaug import metrics
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.methods.zaugnet import _best_weights

path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path)
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
zk = z[kept]
model = zaugnet.load(model_dir)
low, high = model.config.normalisation["low"], model.config.normalisation["high"]
x = np.clip((data[kept] - low) / (high - low), 0, 1).astype(np.float32)
model.calibrate = False


def parts_at(d):
    """(model - linear, cubic - linear, truth - linear) over all kept triplets (i, i + d/2, i + d)."""
    half = d // 2
    jobs = [(i, i + d, 0.5) for i in range(len(x) - d)]
    pred = np.stack(model._pairs(x, jobs))
    lin = np.stack([0.5 * (x[a] + x[b]) for a, b, _ in jobs])
    truth = np.stack([x[a + half] for a, _, _ in jobs])
    cub = []
    for a, b, _ in jobs:
        knots = np.arange(a % d, len(x), d)  # a line of planes d apart through a and b
        cub.append(interpolate_stack(x[knots], zk[knots], np.array([zk[a + half]]), "cubic")[0])
    return pred - lin, np.stack(cub) - lin, truth - lin


def fit(pm, pc, err):
    parts = np.stack([pm.ravel(), pc.ravel()]).astype(np.float64)
    e = err.ravel().astype(np.float64)
    w2 = _best_weights(parts @ parts.T, parts @ e)
    w1 = float(np.clip((parts[0] @ e) / (parts[0] @ parts[0]), 0, 1))
    w1free = float((parts[0] @ e) / (parts[0] @ parts[0]))
    return w2, w1, w1free


out = {}
for d in (2, 4):
    out[d] = fit(*parts_at(d))
    print(f"axial outer distance {d} kept spacings: weights (model, cubic) {out[d][0][0]:.3f} {out[d][0][1]:.3f}; "
          f"model alone {out[d][1]:.3f} (unclipped {out[d][2]:.3f})", flush=True)

if factor == 2:
    jobs = [(i, i + 1, 0.5) for i in range(len(x) - 1)]
    pred = np.stack(model._pairs(x, jobs))
    lin = 0.5 * (x[:-1] + x[1:])
    cub = interpolate_stack(x, zk, 0.5 * (zk[:-1] + zk[1:]), "cubic")
    truth_x = (data[removed] - low) / (high - low)
    oracle = fit(pred - lin, cub - lin, truth_x - lin)
    model.calibrate = True
    model.calibration = {}
    model._pixel_size = tuple(vol.voxel_size[1:])
    lateral = model.calibration_weights(x, float(zk[1] - zk[0]), model._pixel_size)
    truth = norm(data[removed])

    def score(wm, wc):
        p = lin + wm * (pred - lin) + wc * (cub - lin)
        return metrics.psnr(norm(p * (high - low) + low), truth)

    print(f"prediction gap (oracle, fitted on the removed planes): {oracle[0][0]:.3f} {oracle[0][1]:.3f}; "
          f"model alone {oracle[1]:.3f} (unclipped {oracle[2]:.3f})")
    print(f"lateral calibration: {lateral[0]:.3f} {lateral[1]:.3f}")
    w2, w4 = out[2][2], out[4][2]
    ext = w2 * w2 / w4 if w4 > 0 else 0.0
    print(f"power-law extrapolation of the model-alone weight, w2^2/w4: {ext:.3f}")
    rows = {"linear": (0, 0), "cubic": (0, 1), "raw model": (1, 0), "oracle": oracle[0],
            "oracle model alone": (oracle[1], 0), "lateral": lateral,
            "extrapolated model alone": (float(np.clip(ext, 0, 1)), 0),
            "extrapolated model + lateral cubic": (float(np.clip(ext, 0, 1)), lateral[1])}
    for name, (wm, wc) in rows.items():
        print(f"  {name:36s} ({wm:.3f}, {wc:.3f}) {score(wm, wc):.3f} dB")
