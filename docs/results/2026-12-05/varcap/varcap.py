"""The variance cap on kept models: python varcap.py DATA FACTOR MODELDIR [DATA FACTOR MODELDIR ...]

For each kept model (za_keep.py), PSNR / SSIM on the removed planes (scored as `zaug evaluate` scores) of the
direct mode: the model alone, the lateral calibration alone (the default before), and the lateral calibration
with the variance cap (the default now), with the weights and the cap's scale per pass."""
import sys
import warnings
import numpy as np
from zaug import metrics
from zaug.evaluate import drop_slice_split, _normaliser
from zaug.io import read_volume
from zaug.methods import zaugnet

warnings.simplefilter("ignore")
args = sys.argv[1:]
for path, factor, model_dir in zip(args[0::3], args[1::3], args[2::3]):
    factor = int(factor)
    vol = read_volume(path)
    data = np.asarray(vol.data, np.float32)
    used, kept, removed = drop_slice_split(vol.nz, factor)
    norm = _normaliser(*np.percentile(data, (0.1, 99.9)))
    z = vol.z_coords()[:used]
    truth = norm(data[removed])
    model = zaugnet.load(model_dir)
    cells = []
    for label, calibrate, cap in (("model alone", False, False), ("lateral", True, False), ("lateral+cap", True, True)):
        model.calibrate, model.cap_variance = calibrate, cap
        pred = norm(model.interpolate(data[kept], z[kept], z, pixel_size=vol.voxel_size[1:]))[removed]
        weights = "; ".join(f"{k:g}: {a:.2f}/{c:.2f}" + (f" x{model.calibration_scale[k]:.2f}"
                                                          if k in model.calibration_scale else "")
                            for k, (a, c) in model.calibration.items())
        cells.append(f"{label} {metrics.psnr(pred, truth):.3f}/{metrics.ssim(pred, truth):.4f}"
                     + (f" [{weights}]" if weights else ""))
    print(f"{model_dir} x{factor}: " + " | ".join(cells), flush=True)
