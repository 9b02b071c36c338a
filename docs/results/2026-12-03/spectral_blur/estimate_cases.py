"""The axial blur measured by both estimators on simulated and real stacks (sixteenth session). Run from the project root."""
import time, numpy as np, warnings
warnings.simplefilter("ignore")
from zaug import io as zio
from zaug.data.lateral import simulate_anisotropy, measure_axial_sigma
from zaug.data.spectral_blur import estimate_axial_sigma_spectral
D = "../shared/data/"
load = lambda n: zio.read_volume(D + n)
cases = []
gala = load("gala_fibsem_train-image.tif")
for sim in (1, 2, 3, 4):
    cases.append((f"gala sim{sim}", simulate_anisotropy(gala, 4, "gaussian", sigma=sim), 4, sim))
for n, short in [("cellseg3d_mesospim_c5image.tif", "cs3"), ("cells3d_nuclei.tif", "c3d"), ("vesselexpress_lsfm_vessels_000.tif", "vess"), ("pytorch3dunet_sample_patch_raw.tif", "p3d")]:
    v = load(n)
    for sim in (2, 3):
        cases.append((f"{short} sim{sim}", simulate_anisotropy(v, 4, "gaussian", sigma=sim), 4, sim))
from zaug.sample import __file__ as sf
import os
samp = zio.read_volume(os.path.join(os.path.dirname(sf), "cells3d_nuclei_crop.tif"))
for sim in (2, 3, 4):
    cases.append((f"sample sim{sim}", simulate_anisotropy(samp, 4, "gaussian", sigma=sim), 4, sim))
chrom = load("neubias_xyz_8bit__chromosomes.tif")
cases.append(("chromosomes", chrom, chrom.voxel_size[0] / chrom.voxel_size[1], "w5.42"))
nel = load("nellie_yeast_mito_t0.tif")
cases.append(("nellie", nel, nel.voxel_size[0] / nel.voxel_size[1], "w2.73"))
for name, vol, fac, truth in cases:
    t = time.time(); e = estimate_axial_sigma_spectral(vol, fac); dt = time.time() - t
    m = measure_axial_sigma(vol, fac)
    print(f"{name:12s} {truth!s:6s} spectrum={e['sigma']} misfit={e['misfit']:.3f} bins={e['signal_bins']}/{e['frequencies']} {dt:.1f}s | auto: {m['method']} {m['sigma']} {e['reason']}", flush=True)
