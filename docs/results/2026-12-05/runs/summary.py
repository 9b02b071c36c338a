"""One line per run: PSNR/SSIM of each row, the gains, steps and the self-check (python summary.py *.json)."""
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    m = r["methods"]
    learned = next(v for k, v in m.items() if "training" in v)
    sc = learned.get("self_check") or {}
    check = f"{sc['model']['psnr'] - sc['linear']['psnr']:+.2f}" if sc else "-"
    rows = " ".join(f"{k}={v['psnr']:.2f}/{v['ssim']:.4f}" for k, v in m.items())
    g = " ".join(f"{k}:{v['gain_db']:+.2f}" for k, v in r["gains"].items())
    print(f"{path:18s} steps={learned['training']['steps']} self-check-vs-linear={check} {rows} | {g}")
