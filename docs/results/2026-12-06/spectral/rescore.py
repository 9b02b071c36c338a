"""Detail-band calibration on kept models: python rescore.py DATA FACTOR MODELDIR [DATA FACTOR MODELDIR ...]

For each kept model (za_keep.py), PSNR / SSIM on the removed planes (scored as `zaug evaluate` scores) of the
direct mode: linear, cubic, the model alone, one (model, cubic) pair for whole planes with the variance cap (the
default before), and a pair per in-plane detail band with the variance cap (the default now)."""
import sys
import json
import warnings
import numpy as np
from zaug import metrics
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet

warnings.simplefilter("ignore")
args = sys.argv[1:]
for path, factor, model_dir in zip(args[0::3], args[1::3], args[2::3]):
    factor = int(factor)
    vol = read_volume(path)
    data = np.asarray(vol.data, np.float32)
    used, kept, removed = drop_slice_split(vol.nz, factor)
    norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
    z = vol.z_coords()[:used]
    truth = norm(data[removed])
    row = {"data": path.rsplit("/", 1)[-1], "factor": factor, "model": model_dir}
    for method in ("linear", "cubic"):
        row[method] = metrics.psnr(norm(interpolate_stack(data[kept], z[kept], z[removed], method)), truth)
    model = zaugnet.load(model_dir)
    measure = model._measure_weights
    for label, calibrate, bands in (("model alone", False, True), ("one pair", True, False), ("bands", True, True)):
        model.calibrate = calibrate
        model._measure_weights = lambda *a, bands=bands, **k: measure(*a, bands=bands, **k)
        pred = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
        row[label] = metrics.psnr(pred, truth)
        row[label + " ssim"] = metrics.ssim(pred, truth)
        row[label + " scale"] = {f"{k:g}": round(v, 2) for k, v in model.calibration_scale.items()}
    best = max(row["linear"], row["cubic"])
    row["gain one pair"], row["gain bands"] = row["one pair"] - best, row["bands"] - best
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
