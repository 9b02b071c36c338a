"""Self-Net training-override experiment: python sn_exp.py DATA OUT.json key=value ..."""
import json, sys
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
path, out = sys.argv[1], sys.argv[2]
upd = {k: float(v) for k, v in (a.split("=") for a in sys.argv[3:] if not a.startswith("minutes"))}
minutes = float(dict(a.split("=") for a in sys.argv[3:]).get("minutes", 6))
upd.pop("minutes", None)
selfnet.TRAINING_PRESETS["fast"] = selfnet.TRAINING_PRESETS["fast"].model_copy(update=upd)
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"], {"minutes": minutes, "progress": False},
                           log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_restoration_table(res), file=sys.stderr)
json.dump(res, open(out, "w"), default=str, indent=1)
