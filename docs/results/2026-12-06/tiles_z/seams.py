"""A trained ZAugNet on real data: whole-stack prediction vs tiles cut laterally and along z.

Usage: python seams.py CELLS3D_TIF MODEL_DIR
cells3d nuclei, planes 0, 2, ..., 58 kept (the model's training input); x2 whole, and in tiles of
64 x 64 pixels (32-pixel margins) and 8 planes (8 context planes each side); both scored on the
removed planes 1, 3, ..., 57, without test-time augmentation (PSNR over the 0.01-99.99 percentile range: for comparing the two, not
`zaug evaluate`'s figure).
"""
import sys
import time

import dask
import numpy as np

from zaug.blockwise import upsample_z_blockwise
from zaug.io import read_volume
from zaug.methods import zaugnet
from zaug.metrics import psnr
from zaug.predict import upsample_z

vol = read_volume(sys.argv[1])
kept = vol.replace(data=np.ascontiguousarray(vol.data[::2]), voxel_size=(2 * vol.voxel_size[0],) + vol.voxel_size[1:])
truth = vol.data[1:-1:2].astype(np.float64)
net = zaugnet.load(sys.argv[2], device="cpu")
net.tta = False  # 8 times faster; the tiles do not depend on it
rng = float(np.percentile(vol.data, 99.99) - np.percentile(vol.data, 0.01))
t = time.perf_counter()
whole = upsample_z(kept, net, factor=2).data
print(f"whole: {time.perf_counter() - t:.0f} s, PSNR {psnr(truth, whole[1::2].astype(np.float64), data_range=rng):.3f} dB")
for tile, planes in ((64, None), (256, 8), (64, 8)):
    t = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):
        lazy = upsample_z_blockwise(kept, net, factor=2, tile=tile, tile_planes=planes)
        tiled = lazy.data.compute()
    diff = np.abs(tiled.astype(np.int64) - whole)
    print(f"tiles {tile} px x {planes or 'all'} planes ({lazy.data.npartitions} tiles, {len(lazy.data.chunks[0])} along z): "
          f"{time.perf_counter() - t:.0f} s, PSNR {psnr(truth, tiled[1::2].astype(np.float64), data_range=rng):.3f} dB, "
          f"max |tiled - whole| {diff.max()} grey levels, voxels differing {np.mean(diff > 0):.2e}, "
          f"mean |diff| / mean |whole - mean| {diff.mean() / np.abs(whole - whole.mean()).mean():.2e}")
