"""Does the kernel G_AB learn blur the user's model misses? Simulation sigma 2 (factor/2), user's model sigma S.
python sn_wrong_sigma.py DATA KEEPDIR sigma=S minutes=M"""
import json, shutil, sys
from safetensors.torch import load_file
import torch
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
path, keep = sys.argv[1], sys.argv[2]
kv = dict(a.split("=") for a in sys.argv[3:])
orig_fit = selfnet.fit
def fit(vols, out, opts):
    p = orig_fit(vols, out, opts)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
selfnet.fit = fit
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"],
                           {"minutes": float(kv["minutes"]), "sigma": float(kv["sigma"]), "progress": False})
print(format_restoration_table(res))
logits = load_file(keep + "/model.safetensors")["g_ab.logits"]
w = torch.softmax(logits, 0)
print("kernel centre share, side taps:", [round(float(v), 4) for v in w])
res["g_ab_softmax"] = [float(v) for v in w]
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
