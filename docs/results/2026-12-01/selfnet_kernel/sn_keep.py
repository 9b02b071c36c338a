"""Train Self-Net inside the restoration evaluation and keep the model: python sn_keep.py DATA KEEPDIR minutes=M [key=value ...]"""
import json, shutil, sys
import numpy as np
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
path, keep = sys.argv[1], sys.argv[2]
kv = dict(a.split("=") for a in sys.argv[3:])
if kv.pop("flux", "square") == "rows":  # experiment: average along the degraded axis (rows) only
    import torch.nn.functional as F
    from zaug.losses import charbonnier
    def _flux(self, generated, source):
        k = min(max(4, int(round(2 * self.config.factor))), generated.shape[-2])
        pool = lambda x: F.avg_pool2d(x, (k, 1), stride=(max(1, k // 2), 1))
        return charbonnier(pool(generated), pool(source))
    selfnet.SelfNetTask._flux = _flux
minutes = float(kv.pop("minutes", 15))
if kv:
    selfnet.TRAINING_PRESETS["fast"] = selfnet.TRAINING_PRESETS["fast"].model_copy(update={k: float(v) for k, v in kv.items()})
orig_fit = selfnet.fit
def fit(vols, out, opts):
    p = orig_fit(vols, out, opts)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
selfnet.fit = fit
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"], {"minutes": minutes, "progress": False},
                           log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_restoration_table(res))
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
