"""Drop-slice x2 with the trained model kept: python za_keep.py DATA FACTOR KEEPDIR minutes=10 key=value"""
import json, shutil, sys
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import evaluate_drop_slice, format_table
path, factor, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kv = dict(a.split("=") for a in sys.argv[4:])
opts = {"minutes": float(kv.pop("minutes", 10)), "progress": False}
method = kv.pop("method", "zaugnet")
for k, v in kv.items():
    opts[k] = v.lower() == "true" if v.lower() in ("true", "false") else float(v)
orig_fit = zaugnet.fit
def fit(vols, out, o):
    p = orig_fit(vols, out, o)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
zaugnet.fit = fit
vol = read_volume(path)
res = evaluate_drop_slice(vol, factor, ["linear", "cubic", method], train_options=opts,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_table(res), file=sys.stderr)
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
