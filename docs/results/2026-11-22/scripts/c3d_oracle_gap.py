"""Diagnostic: a model trained at the test gap (all planes of the left half; leakage by design) vs the kept-plane model, scored on the right half.

python c3d_oracle_gap.py OUT_MODEL_DIR [train] KEPT_MODEL_DIR STACK"""
import sys, json, numpy as np, warnings
warnings.filterwarnings('ignore')
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.metrics import psnr, ssim
vol = read_volume(sys.argv[-1]); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, 2)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
out = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == 'train':
    left = vol.replace(data=data[:used, :, :128].copy())
    zaugnet.fit([left], out, {"minutes": 10, "progress": False, "net": dict(widths=(64, 48, 32), teacher_width=32, context_ch=16)})
R = data[:used, :, 128:]
T = norm(R[removed]); K = norm(R[kept])
res = {'linear': psnr(0.5 * (K[:-1] + K[1:]), T)}
for name, path in (('oracle_testgap', out), ('kept_model', sys.argv[-2])):
    m = zaugnet.load(path)
    for cal in (False, True):
        m.calibrate = cal
        p = norm(m.interpolate(R[kept], z[kept], z))[removed]
        res[f'{name}_{"cal" if cal else "raw"}'] = (psnr(p, T), ssim(p, T))
    res[name + '_steps'] = m.training_summary['steps']
print(json.dumps(res, indent=1))
