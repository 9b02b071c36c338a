"""Copy a pretrained model folder into the package as its shipped prior, weights in float16.

python ship_prior.py MODEL_DIR [DEST=src/zaug/priors/zaugnet-fast]
The generator is all a prior needs (`zaug train --init prior` starts the critic fresh); float16 halves the
file and changes no figure (the weights are cast back to float32 when loaded)."""
import json, sys
from pathlib import Path
from safetensors.torch import load_file, save_file

src = Path(sys.argv[1])
dest = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parents[4] / "src/zaug/priors/zaugnet-fast")
dest.mkdir(parents=True, exist_ok=True)
tensors = {k: v.half().contiguous() for k, v in load_file(str(src / "model.safetensors")).items()
           if k.startswith("generator.")}
config = json.loads((src / "config.json").read_text())
save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt", "zaug_method": config["method"]})
(dest / "config.json").write_text(json.dumps(config, indent=2))
print(dest, len(tensors), "tensors", round((dest / "model.safetensors").stat().st_size / 1e6, 2), "MB")
