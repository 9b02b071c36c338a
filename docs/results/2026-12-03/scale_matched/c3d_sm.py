"""cells3d x2 drop-slice, ZAugNet fast 10 min, with a share of scale-matched (laterally 2x pooled) triplets."""
import json, sys
from zaug import io as zio
from zaug.evaluate import evaluate_drop_slice, format_table
share = float(sys.argv[1]); out = sys.argv[2]
vol = zio.read_volume("../shared/data/cells3d_nuclei.tif")
res = evaluate_drop_slice(vol, 2, ["linear", "cubic", "zaugnet"],
                          train_options={"preset": "fast", "minutes": 10, "seed": 0, "adversarial": True,
                                         "scale_matched": share, "calibrate": True, "progress": True},
                          log=print)
print(format_table(res))
json.dump(res, open(out, "w"), indent=1, default=str)
