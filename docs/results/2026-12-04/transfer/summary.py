"""One line per run: PSNR of each row and the gains (python summary.py *.json)."""
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    m = r["methods"]
    steps = m.get("zaugnet", {}).get("training", {}).get("steps")
    rows = " ".join(f"{k}={v['psnr']:.2f}/{v['ssim']:.4f}" for k, v in m.items())
    g = " ".join(f"{k}:{v['gain_db']:+.2f}" for k, v in r["gains"].items())
    print(f"{path:18s} steps={steps} {rows} | {g}")
