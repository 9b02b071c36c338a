"""Peak memory and speed of z-upsampling a stack whole vs in lateral tiles (zaug.blockwise), as a table.

Each case runs in its own process (so peak memory is its own): read the
stack, upsample it x2 along z, write an OME-Zarr store. ``memory`` reads an
``.npy`` file into memory and uses :func:`zaug.predict.upsample_z`; ``tiles``
reads the same stack from OME-Zarr lazily and streams tiles of ``--tile``
pixels through :func:`zaug.blockwise.upsample_z_blockwise` into the output
store. The tiled output is compared with the whole-stack one (max abs
difference, in grey levels). ZAugNet uses untrained ``fast`` weights (speed
and memory do not depend on them) and a smaller stack, as it is ~40 times
slower than cubic. Tiles span every plane unless a tile would take more
than about 256 MiB or ``--tile-planes`` cuts them along z; the ``z cuts``
column says how many.

Usage: ``python benchmarks/bench_blockwise.py [--side 2048] [--planes 24] [--tile 512] [--tile-planes P]
[--threads 2] [--methods cubic,zaugnet-fast]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _memory import peak_rss_mb  # benchmarks/ is on the path when a script there runs

CASES = [("cubic", "memory"), ("cubic", "tiles"), ("zaugnet-fast", "memory"), ("zaugnet-fast", "tiles")]


def _method(name: str):
    if name == "cubic":
        from zaug.classic import ClassicalInterpolator

        return ClassicalInterpolator("cubic")
    import torch

    from zaug.checkpoint import module_tensors
    from zaug.methods.zaugnet import TRAINING_PRESETS, ZAugNetConfig, ZAugNetModel
    from zaug.nets.critic import critic_preset
    from zaug.nets.ifnet import IFNet, ifnet_preset

    net_kwargs = dict(ifnet_preset("fast"), position_input=False)
    config = ZAugNetConfig(preset="fast", net=net_kwargs, critic=critic_preset("fast"),
                           training=TRAINING_PRESETS["fast"], normalisation={"low": 0.0, "high": 60000.0},
                           train_voxel_size=[1.0, 0.2, 0.2], train_unit="um", train_plane_spacing=1.0,
                           triplet_spacing=[2.0])
    torch.manual_seed(0)
    return ZAugNetModel(config, module_tensors("generator", IFNet(**net_kwargs)), torch.device("cpu"))


def run_case(method_name: str, mode: str, folder: Path, tile: int, tile_planes: int | None, threads: int) -> dict:
    import dask

    from zaug.io import read_volume, write_volume

    method = _method(method_name)
    stem = "small" if method_name != "cubic" else "large"
    out_path = folder / f"{method_name}-{mode}.ome.zarr"
    start = time.perf_counter()
    if mode == "memory":
        from zaug.predict import upsample_z

        vol = read_volume(folder / f"{stem}.npy", voxel_size=(1.0, 0.2, 0.2))
        out = upsample_z(vol, method, factor=2)
        write_volume(out, out_path)
        tiles, tile, cuts = 1, "-", 1
    else:
        from zaug.blockwise import upsample_z_blockwise

        vol = read_volume(folder / f"{stem}.ome.zarr", lazy=True)
        out = upsample_z_blockwise(vol, method, factor=2, tile=tile, tile_planes=tile_planes)
        tiles, tile, cuts = out.data.npartitions, out.data.chunksize[-1], len(out.data.chunks[0])
        # dask's thread pool has a thread per core unless told: --threads sets both it and torch's
        with dask.config.set(scheduler="threads" if method_name == "cubic" else "synchronous", num_workers=threads):
            write_volume(out, out_path)
    seconds = time.perf_counter() - start
    shape = out.data.shape
    return {"case": method_name, "mode": mode, "input": "x".join(map(str, vol.data.shape)),
            "output": "x".join(map(str, shape)), "tile": tile, "tiles": tiles, "z_cuts": cuts,
            "seconds": seconds,
            "voxels_per_s": float(shape[0]) * shape[1] * shape[2] / seconds}


def _make_inputs(folder: Path, side: int, planes: int) -> None:
    import numpy as np

    from zaug import Volume
    from zaug.io import write_volume

    rng = np.random.default_rng(0)
    for stem, (nz, n) in {"large": (planes, side), "small": (max(8, planes // 2), side // 2)}.items():
        z, y, x = np.ogrid[:nz, :n, :n]
        data = (20000 + 10000 * np.sin(x / 17.0 + z / 3.0) * np.cos(y / 23.0)
                + rng.normal(0, 500, (nz, n, n))).astype(np.uint16)
        np.save(folder / f"{stem}.npy", data)
        write_volume(Volume(data, (1.0, 0.2, 0.2), "um"), folder / f"{stem}.ome.zarr")


def _max_difference(folder: Path, method_name: str) -> float:
    import numpy as np
    import zarr

    a = zarr.open(str(folder / f"{method_name}-memory.ome.zarr" / "0"), mode="r")
    b = zarr.open(str(folder / f"{method_name}-tiles.ome.zarr" / "0"), mode="r")
    worst = 0.0
    for z in range(a.shape[0]):
        worst = max(worst, float(np.abs(a[z].astype(np.int64) - b[z].astype(np.int64)).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048, help="lateral size of the cubic stack (ZAugNet: half)")
    parser.add_argument("--planes", type=int, default=24, help="planes of the cubic stack (ZAugNet: half)")
    parser.add_argument("--tile", type=int, help="tile size (default: the method's, ZAugNet 448, cubic 512)")
    parser.add_argument("--tile-planes", type=int, help="input planes per tile along z (default: every plane, "
                        "unless a tile would take more than about 256 MiB)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="cubic,zaugnet-fast", help="comma-separated: cubic, zaugnet-fast")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        import torch

        import zaug.blockwise  # noqa: F401  (the imports every case pays, counted apart)
        import zaug.methods.zaugnet  # noqa: F401

        imports = peak_rss_mb()
        torch.set_num_threads(args.threads)
        result = run_case(args.case[0], args.case[1], Path(args.case[2]), args.tile, args.tile_planes, args.threads)
        result.update(peak_rss_mb=peak_rss_mb(), imports_mb=imports)
        print(json.dumps(result))
        return
    folder = Path(tempfile.mkdtemp(prefix="zaug-bench-"))
    try:
        _make_inputs(folder, args.side, args.planes)
        rows = []
        for method_name, mode in [c for c in CASES if c[0] in args.methods.split(",")]:
            tile = ["--tile", str(args.tile)] if args.tile else []
            tile += ["--tile-planes", str(args.tile_planes)] if args.tile_planes else []
            proc = subprocess.run([sys.executable, __file__, "--case", method_name, mode, str(folder), *tile,
                                   "--threads", str(args.threads)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:  # say why before stopping
                sys.exit(f"{method_name} {mode}: failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            if mode == "tiles":
                rows[-1]["max_diff"] = _max_difference(folder, method_name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"x2 along z, uint16, OME-Zarr output; {args.threads} threads")
    print(f"{'case':<14}{'mode':<8}{'input':>16}{'output':>16}{'tile':>6}{'tiles':>7}{'z cuts':>8}{'seconds':>9}"
          f"{'Mvox/s':>8}{'peak RSS MB':>13}{'imports MB':>12}{'max diff':>10}")
    for r in rows:
        diff = f"{r['max_diff']:.0f}" if "max_diff" in r else "-"
        print(f"{r['case']:<14}{r['mode']:<8}{r['input']:>16}{r['output']:>16}{r['tile']:>6}{r['tiles']:>7}"
              f"{r['z_cuts']:>8}{r['seconds']:>9.1f}"
              f"{r['voxels_per_s'] / 1e6:>8.2f}{r['peak_rss_mb']:>13.0f}{r['imports_mb']:>12.0f}{diff:>10}")


if __name__ == "__main__":
    main()
