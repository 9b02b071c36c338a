"""Pretrain a `fast` ZAugNet prior on real stacks other than cells3d (no cells3d, no shipped sample).

python pretrain.py OUT_DIR MINUTES [lr=2e-4] [data=DATA_DIR]
Each stack is scaled to [0, 1] by its own 0.1/99.9 percentiles; the finely sampled ones are also used with
every second plane (larger motions). VesselExpress (GPL-3.0) is left out so the weights carry only
permissive-licence data."""
import sys
from pathlib import Path
import numpy as np
from zaug import Volume
from zaug.io import read_volume
from zaug.methods import zaugnet

out, minutes = sys.argv[1], float(sys.argv[2])
kv = dict(a.split("=", 1) for a in sys.argv[3:])
data = Path(kv.get("data", Path(__file__).resolve().parents[4] / ".." / "shared" / "data"))
FINE = ["cellseg3d_mesospim_c5image.tif", "gala_fibsem_train-image.tif", "pytorch3dunet_sample_patch_raw.tif"]
ANISO = ["neubias_xyz_8bit__chromosomes.tif", "nellie_yeast_mito_t0.tif"]
vols = []
for name in FINE + ANISO:
    a = np.asarray(read_volume(data / name).data, np.float32)
    lo, hi = np.percentile(a, (0.1, 99.9))
    a = np.clip((a - lo) / (hi - lo), 0, 1).astype(np.float32)
    steps = (1, 2) if name in FINE else (1,)
    for s in steps:
        vols.append(Volume(a[::s], voxel_size=(1.0, 1.0, 1.0), unit="pixel"))
        print(name, s, vols[-1].data.shape, flush=True)
opts = {"minutes": minutes, "adversarial": False, "progress": False, "seed": 0}
if "lr" in kv:
    opts["lr"] = float(kv["lr"])
zaugnet.fit(vols, out, opts)
