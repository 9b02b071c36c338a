"""za_keep.py with the training sampler changed (experiment, not in the package).

python za_sampling.py noscale|uniform|both DATA FACTOR KEEPDIR minutes=10 ...
  noscale: no random intensity scaling of the triplets (the package scales each by U(0.7, 1.0))
  uniform: patches drawn uniformly (the package keeps the brightest of 4 candidates 70% of the time)
"""
import runpy, sys
from pathlib import Path
import numpy as np
from zaug.data import triplets

variant = sys.argv.pop(1)
if variant in ("noscale", "both"):
    def _augment(planes, rng):
        planes = np.rot90(planes, k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            planes = planes[:, :, ::-1]
        rng.uniform(0.7, 1.0)  # same random stream as the package
        return planes
    triplets._augment = _augment
if variant in ("uniform", "both"):
    import functools
    from zaug.methods import zaugnet
    zaugnet.TripletSampler = functools.partial(triplets.TripletSampler, foreground_bias=0.0)
here = Path(__file__).resolve().parent
runpy.run_path(str(here.parents[1] / "2026-11-22/scripts/za_keep.py"), run_name="__main__")
