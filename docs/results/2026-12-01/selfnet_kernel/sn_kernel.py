"""Experiment: Self-Net with G_AB a learned axial blur kernel (1D, along rows, non-negative, sums to 1).
python sn_kernel.py DATA KEEPDIR minutes=M"""
import itertools, json, shutil, sys
import torch, torch.nn as nn, torch.nn.functional as F
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.evaluate_restore import evaluate_restoration, format_restoration_table

class AxialKernel(nn.Module):
    """x -> x convolved along rows with a learned symmetric non-negative kernel summing to 1."""
    def __init__(self, half: int):
        super().__init__()
        logits = torch.zeros(half + 1)
        logits[0] = 4.0  # near the identity: the fixed degradation alone
        self.logits = nn.Parameter(logits)
        self.radius = half
    def kernel(self):
        w = torch.softmax(self.logits, 0)
        w = torch.cat([w[1:].flip(0), 2 * w[:1], w[1:]])  # symmetric
        return w / w.sum()
    def forward(self, x):
        k = self.kernel().to(x.dtype).view(1, 1, -1, 1)
        return F.conv2d(F.pad(x, (0, 0, self.radius, self.radius), mode="replicate"), k)

path, keep = sys.argv[1], sys.argv[2]
kv = dict(a.split("=") for a in sys.argv[3:])
minutes = float(kv.pop("minutes", 15))
orig_init = selfnet.SelfNetTask.__init__
def init(self, config, pools, val, device):
    orig_init(self, config, pools, val, device)
    self.g_ab = AxialKernel(int(round(2 * config.factor))).to(device)
    tp = config.training
    self.opt_g = torch.optim.Adam(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()),
                                  lr=tp.lr, betas=tuple(tp.betas))
selfnet.SelfNetTask.__init__ = init
orig_fit = selfnet.fit
def fit(vols, out, opts):
    p = orig_fit(vols, out, opts)
    shutil.copytree(p, keep, dirs_exist_ok=True)
    return p
selfnet.fit = fit
orig_step = selfnet.SelfNetTask.step
def step(self, rng, progress):
    out = orig_step(self, rng, progress)
    if self.n_steps % 200 == 0:
        print(self.n_steps, [round(float(v), 3) for v in self.g_ab.kernel()], file=sys.stderr, flush=True)
    return out
selfnet.SelfNetTask.step = step
vol = read_volume(path)
res = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"], {"minutes": minutes, "progress": False},
                           log=lambda m: print(m, file=sys.stderr, flush=True))
print(format_restoration_table(res))
json.dump(res, open(keep + "/eval.json", "w"), default=str, indent=1)
