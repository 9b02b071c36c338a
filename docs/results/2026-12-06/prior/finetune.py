"""Drop-slice on one stack, ZAugNet trained on the kept planes starting from a prior; model kept.

python finetune.py STACK FACTOR KEEPDIR PRIOR|none [minutes=10] [lr=...]"""
import json, shutil, sys
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import evaluate_drop_slice, format_table
path, factor, keep, prior = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
kv = dict(a.split("=") for a in sys.argv[5:])
opts = {"minutes": float(kv.pop("minutes", 10)), "progress": False}
if prior != "none":
    opts["init"] = prior
opts.update({k: float(v) for k, v in kv.items()})
orig_fit = zaugnet.fit
def fit(vols, out, o):
    p = orig_fit(vols, out, o)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
zaugnet.fit = fit
res = evaluate_drop_slice(read_volume(path), factor, ["linear", "cubic", "zaugnet"], train_options=opts,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_table(res), file=sys.stderr)
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
