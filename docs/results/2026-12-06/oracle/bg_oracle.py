"""Oracle: smooth the default ZAugNet prediction in-plane, everywhere or only where it is dark (background).

python bg_oracle.py STACK FACTOR MODEL_DIR   (parameters scored against the truth: an upper bound, not a method)"""
import sys, warnings, numpy as np
from scipy import ndimage as ndi
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
warnings.simplefilter("ignore")
path, factor, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]
truth = norm(data[removed])
model = zaugnet.load(model_dir)
pred = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
lin = norm(np.stack([(data[kept][i] + data[kept][i+1]) / 2 for i in range(len(kept)-1)]))
print("default", metrics.psnr(pred, truth), "linear", metrics.psnr(lin, truth))
def sm(a, s): return ndi.gaussian_filter(a, (0, s, s))
for s in (0.5, 0.8, 1.0, 1.5):
    print("global sigma", s, round(metrics.psnr(sm(pred, s), truth), 3))
ref = sm(pred, 2.0)
for thr in np.percentile(ref, (50, 70, 80, 90)):
    for s in (1.0, 2.0, 3.0):
        out = np.where(ref < thr, sm(pred, s), pred)
        print(f"thr {thr:.3f} sigma {s}", round(metrics.psnr(out, truth), 3))
