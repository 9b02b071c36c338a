"""Self-Net (package default) on a stack made anisotropic by simulation (x4 Gaussian, sigma 2), the user's
model of the blur given sigma S (sigma=2: the true one). Prints the table and the learned extra axial sigma.
python sn_sigma.py DATA KEEPDIR sigma=S minutes=M"""
import json, shutil, sys
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
res = evaluate_restoration(read_volume(path), 4, "gaussian", ["cubic", "selfnet"],
                           {"minutes": float(kv["minutes"]), "sigma": float(kv["sigma"]), "progress": False})
print(format_restoration_table(res))
cfg = json.load(open(keep + "/config.json"))
print("steps", cfg["summary"]["steps"], "learned extra sigma", cfg["self_check"].get("learned_extra_sigma"))
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
