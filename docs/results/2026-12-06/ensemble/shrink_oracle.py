"""Oracle per-band shrinkage of the package's default prediction: python shrink_oracle.py DATA FACTOR MODEL..."""
import sys, warnings
import numpy as np, torch
from zaug import metrics
from zaug.classic import interpolate_stack
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.nets.zstack import band_split
warnings.simplefilter("ignore")
path, factor, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
vol = read_volume(path); data = np.asarray(vol.data, np.float32)
used, kept, removed = drop_slice_split(vol.nz, factor)
norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
z = vol.z_coords()[:used]; truth = norm(data[removed])
lin = norm(interpolate_stack(data[kept], z[kept], z[removed], "linear"))
best = max(metrics.psnr(norm(interpolate_stack(data[kept], z[kept], z[removed], m)), truth) for m in ("linear", "cubic"))
for m in models:
    model = zaugnet.load(m)
    P = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
    bands = [b.numpy() for b in band_split(torch.from_numpy(P.astype(np.float64)))]
    lb = [b.numpy() for b in band_split(torch.from_numpy(lin.astype(np.float64)))]
    A = np.stack([b.ravel() for b in bands], 1)
    g = np.linalg.lstsq(A, truth.ravel().astype(np.float64), rcond=None)[0]
    allb = (A @ g).reshape(P.shape)
    # top band only
    rest = P - bands[0]
    g0 = np.sum(bands[0] * (truth - rest)) / np.sum(bands[0] ** 2)
    top = rest + g0 * bands[0]
    print(m, "default", round(metrics.psnr(P, truth) - best, 3), "| all bands", np.round(g, 3), round(metrics.psnr(allb, truth) - best, 3),
          "| top only", round(g0, 3), round(metrics.psnr(top, truth) - best, 3), flush=True)
    for b in range(len(bands)):
        print("  band", b, "var P", f"{bands[b].var():.3e}", "var T", f"{np.var(band_split(torch.from_numpy(truth.astype(np.float64)))[b].numpy()):.3e}", "var lin", f"{lb[b].var():.3e}")
