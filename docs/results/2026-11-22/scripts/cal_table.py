"""The calibrated drop-slice table from calibrated/*.json: python cal_table.py calibrated/*.json"""
import json, sys
print("| run | linear | cubic | ZAugNet raw | ZAugNet calibrated | weights (model, cubic) per pass spacing | gain raw | **gain calibrated** | steps |")
print("|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    d = json.load(open(path))
    m, u = d["methods"], d["uncalibrated"]
    name = next(k for k in m if k.startswith("zaugnet"))
    best = max(m["linear"]["psnr"], m["cubic"]["psnr"])
    w = ", ".join(f"{k}: ({a:.2f}, {c:.2f})" for k, (a, c) in u["weights"].items())
    print(f"| {path.split('/')[-1][:-5]} ({name}) | {m['linear']['psnr']:.2f} | {m['cubic']['psnr']:.2f} | "
          f"{u['raw']['psnr']:.2f} / {u['raw']['ssim']:.3f} | {u['calibrated']['psnr']:.2f} / {u['calibrated']['ssim']:.3f} | "
          f"{w} | {u['raw']['psnr'] - best:+.2f} | **{u['calibrated']['psnr'] - best:+.2f}** | {m[name]['training']['steps']} |")
