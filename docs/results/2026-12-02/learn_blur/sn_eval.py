"""python sn_eval.py DATA OUT.json minutes=M sim_sigma=S [sigma=X|auto] [learn_blur=1] [renoise=1]: x4 Gaussian restoration eval."""
import json, sys
from zaug.io import read_volume
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
path, out = sys.argv[1], sys.argv[2]
kv = dict(a.split("=") for a in sys.argv[3:])
opts = {"minutes": float(kv["minutes"]), "progress": False}
if "sigma" in kv: opts["sigma"] = kv["sigma"] if kv["sigma"] == "auto" else float(kv["sigma"])
if kv.get("learn_blur"): opts["learn_blur"] = True
if kv.get("renoise"): opts["renoise"] = True
methods = kv.get("methods", "selfnet").split(",")
res = evaluate_restoration(read_volume(path), 4, "gaussian", methods, opts, simulate_sigma=float(kv["sim_sigma"]),
                           log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_restoration_table(res))
json.dump(res, open(out, "w"), default=str, indent=1)
