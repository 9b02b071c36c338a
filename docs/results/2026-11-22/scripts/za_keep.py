"""Drop-slice with the trained model kept: python za_keep.py DATA FACTOR KEEPDIR minutes=10 key=value [widths=96,72,48 context_ch=12]

The kept model is scored a second time without the lateral calibration ("uncalibrated" in eval.json)."""
import json, shutil, sys
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import evaluate_drop_slice, format_table
path, factor, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kv = dict(a.split("=") for a in sys.argv[4:])
opts = {"minutes": float(kv.pop("minutes", 10)), "progress": False}
method = kv.pop("method", "zaugnet")
if "widths" in kv:  # wider fast-preset blocks, e.g. widths=96,72,48 context_ch=12
    w = tuple(int(v) for v in kv.pop("widths").split(","))
    opts["net"] = dict(widths=w, teacher_width=w[-1], context_ch=int(kv.pop("context_ch", 8)))
if "denoise_input" in kv:  # needs scripts/nlm_input.patch applied (experiment, not in the package)
    opts.setdefault("net", {})["denoise_input"] = kv.pop("denoise_input").lower() == "true"
for k, v in kv.items():
    opts[k] = v.lower() == "true" if v.lower() in ("true", "false") else int(v) if v.isdigit() else float(v)
orig_fit = zaugnet.fit
def fit(vols, out, o):
    p = orig_fit(vols, out, o)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
zaugnet.fit = fit
def rescore(vol, factor, model_dir, method):
    """PSNR / SSIM of the kept model on the removed planes, calibrated and not (as the evaluation normalises)."""
    import numpy as np
    from zaug import metrics
    from zaug.evaluate import drop_slice_split, _normaliser
    data = np.asarray(vol.data, np.float32)
    used, kept, removed = drop_slice_split(vol.nz, factor)
    norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
    z = vol.z_coords()[:used]
    model = zaugnet.load(model_dir)
    out = {}
    for calibrate in (False, True):
        model.calibrate = calibrate
        pred = norm(model.interpolate(data[kept], z[kept], z))[removed]
        out["calibrated" if calibrate else "raw"] = {"psnr": metrics.psnr(pred, norm(data[removed])),
                                                     "ssim": metrics.ssim(pred, norm(data[removed]))}
    out["weights"] = {f"{k:g}": v for k, v in model.calibration.items()}
    return out


vol = read_volume(path)
res = evaluate_drop_slice(vol, factor, ["linear", "cubic", method], train_options=opts,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_table(res), file=sys.stderr)
res["uncalibrated"] = rescore(vol, factor, keep, method)
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
