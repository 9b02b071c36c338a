"""Shift (pixel-phase) test-time ensembling on a kept cells3d x2 model: python c3d_shift_ensemble.py STACK MODEL_DIR"""
import sys, time, numpy as np, torch
import torch.nn.functional as F
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr, ssim
torch.set_num_threads(2)
vol = read_volume(sys.argv[1])
data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
model = zaugnet.load(sys.argv[2]); model.calibrate = False
truth = norm(data[removed])
base_net = model._net
def make(shifts, tta=True):
    def net(a, b, t):
        tot = 0
        for dy, dx in shifts:
            pad = (4, 4, 4, 4)
            ap, bp = F.pad(a, pad, mode='reflect'), F.pad(b, pad, mode='reflect')
            ap, bp = ap[..., 4 - dy:, 4 - dx:], bp[..., 4 - dy:, 4 - dx:]
            model.tta = tta
            p = base_net(ap, bp, t)
            tot = tot + p[..., dy:dy + a.shape[-2], dx:dx + a.shape[-1]]
        return tot / len(shifts)
    return net
for name, shifts, tta in (('tta8', [(0, 0)], True), ('tta8 x shifts(0,0),(2,2)', [(0, 0), (2, 2)], True),
                          ('tta8 x 4 diag shifts', [(0, 0), (1, 1), (2, 2), (3, 3)], True),
                          ('tta8 x 4 shifts', [(0, 0), (0, 2), (2, 0), (2, 2)], True),
                          ('no tta x 16 shifts', [(y, x) for y in range(4) for x in range(4)], False)):
    model._net = make(shifts, tta)
    t0 = time.time()
    pred = norm(model.interpolate(data[kept], z[kept], z))[removed]
    print(f'{name:28s} {psnr(pred, truth):.3f} {ssim(pred, truth):.4f}  {time.time()-t0:.1f}s', flush=True)
