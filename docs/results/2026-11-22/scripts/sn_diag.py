"""Train Self-Net in the restoration evaluation (kept model), then compare G_AB(a), a and real axial b."""
import json, shutil, sys
import numpy as np, torch
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table
from zaug.checkpoint import load_model, load_module_tensors
from zaug.nets.resnet2d import ResNetGenerator
path, keep, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
orig_fit = selfnet.fit
def fit(vols, out, opts):
    p = orig_fit(vols, out, opts)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    np.save(keep + "/sim.npy", np.asarray(vols[0].data))
    return p
selfnet.fit = fit
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"], {"steps": steps, "progress": False})
print(format_restoration_table(res))
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
