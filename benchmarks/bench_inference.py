"""Inference speed and peak memory on this machine, printed as a table.

Cases (each in its own process, so peak memory is its own):

- ZAugNet x2 (``fast`` and ``paper`` presets, untrained weights: speed does not
  depend on them; with the 8-fold test-time augmentation and the lateral
  calibration of the default prediction, and ``fast`` once more without the
  calibration, to show its cost) and cubic interpolation on a 16 x 256 x 256
  stack -> 31 planes;
- niiv reconstruction of a 128^3 volume from 16 planes (factor 8), ``fast`` and
  ``paper`` presets (the paper reports 0.11 s on an RTX 3090).

Usage: ``python benchmarks/bench_inference.py [--threads N] [--device cpu|cuda] [--cases cubic,zaugnet-fast]``

Peak RSS is the case process's whole resident peak; ``imports MB`` is the part
already held after importing numpy, torch and zaug, before any data, so the
difference is what the method itself needs. On CUDA, ``GPU MB`` is torch's peak
allocation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _memory import peak_rss_mb  # benchmarks/ is on the path when a script there runs

CASES = ["cubic", "zaugnet-fast", "zaugnet-fast-uncalibrated", "zaugnet-paper", "niiv-fast", "niiv-paper"]


def run_case(case: str, device: str, repeats: int) -> dict:
    import numpy as np
    import torch

    from zaug import Volume
    from zaug.classic import ClassicalInterpolator
    from zaug.predict import upsample_z

    rng = np.random.default_rng(0)
    if case.startswith("niiv"):
        from zaug.nets.edsr_liif import NIIV, niiv_preset
        from zaug.restore import restore_stack

        net = NIIV(**niiv_preset(case.split("-")[1])).to(device).eval()

        class Restorer:
            name = case

            @torch.no_grad()
            def restore_planes(self, planes, rows):
                from zaug.nets.edsr_liif import rows_to_coords

                n, h, w = planes.shape
                lr = torch.from_numpy(planes)[:, None].to(device)
                values = net.predict_coords(lr, rows_to_coords(rows, h, w).to(device))
                return values.reshape(n, len(rows), w).cpu().numpy()

        stack = rng.random((16, 128, 128), dtype=np.float32)
        rows = np.linspace(0, 15, 128)
        restore_stack(stack, Restorer(), rows, batch=128)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            out = restore_stack(stack, Restorer(), rows, batch=128)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / repeats
        return {"case": case, "input": "16x128x128", "output": "x".join(map(str, out.shape)),
                "seconds": seconds, "voxels_per_s": out.size / seconds,
                "params": sum(p.numel() for p in net.parameters())}
    vol = Volume((rng.random((16, 256, 256)) * 60000).astype(np.uint16), (1.0, 0.2, 0.2), "um")
    if case == "cubic":
        method, params = ClassicalInterpolator("cubic"), 0
    else:
        from zaug.methods.zaugnet import ZAugNetConfig, ZAugNetModel, TRAINING_PRESETS
        from zaug.nets.critic import critic_preset
        from zaug.nets.ifnet import IFNet, ifnet_preset
        from zaug.checkpoint import module_tensors

        preset = case.split("-")[1]
        net_kwargs = dict(ifnet_preset(preset), position_input=False)
        config = ZAugNetConfig(preset=preset, net=net_kwargs, critic=critic_preset(preset),
                               training=TRAINING_PRESETS[preset], normalisation={"low": 0.0, "high": 60000.0},
                               train_voxel_size=[1.0, 0.2, 0.2], train_unit="um", train_plane_spacing=1.0,
                               triplet_spacing=[2.0])
        net = IFNet(**net_kwargs)
        method = ZAugNetModel(config, module_tensors("generator", net), torch.device(device),
                              calibrate=not case.endswith("uncalibrated"))
        params = method.net.inference_parameters()
    upsample_z(vol.replace(data=vol.data[:3]), method, factor=2)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = upsample_z(vol, method, factor=2)
    seconds = (time.perf_counter() - start) / repeats
    return {"case": case, "input": "16x256x256", "output": "x".join(map(str, out.data.shape)), "seconds": seconds,
            "voxels_per_s": out.data.size / seconds, "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    args = parser.parse_args()
    if args.case:
        import torch

        import zaug.methods.zaugnet  # noqa: F401  (the imports every case pays, counted apart)
        import zaug.nets.edsr_liif  # noqa: F401
        import zaug.restore  # noqa: F401

        imports = peak_rss_mb()
        torch.set_num_threads(args.threads)
        result = run_case(args.case, args.device, args.repeats)
        result.update(peak_rss_mb=peak_rss_mb(), imports_mb=imports,
                      gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else None)
        print(json.dumps(result))
        return
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(CASES)}")
    print(f"device {args.device}, {args.threads} threads, mean of {args.repeats} runs", flush=True)
    print(f"{'case':<27}{'params':>11}{'input':>12}{'output':>13}{'seconds':>10}{'Mvox/s':>9}{'peak RSS MB':>13}"
          f"{'imports MB':>12}" + (f"{'GPU MB':>9}" if args.device == "cuda" else ""), flush=True)
    failed = []
    for case in cases:
        proc = subprocess.run([sys.executable, __file__, "--case", case, "--threads", str(args.threads),
                               "--device", args.device, "--repeats", str(args.repeats)],
                              capture_output=True, text=True)
        if proc.returncode != 0:  # say why, and go on with the other cases
            failed.append(case)
            print(f"{case}: failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<27}{r['params']:>11,}{r['input']:>12}{r['output']:>13}{r['seconds']:>10.3f}"
              f"{r['voxels_per_s'] / 1e6:>9.3f}{r['peak_rss_mb']:>13.0f}{r['imports_mb']:>12.0f}"
              + (f"{r['gpu_mb']:>9.0f}" if r.get("gpu_mb") is not None else ""), flush=True)
    if failed:
        sys.exit(f"{len(failed)} case(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
