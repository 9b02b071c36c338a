"""zaug's KID against torch-fidelity 0.4.0's (`kid_features_to_metric`, one subset of all samples).

Run in an environment with torch-fidelity installed without its dependencies (it imports torchvision,
for which there is no CPU build here): `pip install --no-deps torch-fidelity`. The package's __init__ and its
feature-extraction utilities (which import torchvision) are skipped; only its KID module is loaded.
"""
import importlib.util
import sys
import types

import numpy as np
import torch

root = importlib.util.find_spec("torch_fidelity").submodule_search_locations[0]
package = types.ModuleType("torch_fidelity")
package.__path__ = [root]
sys.modules["torch_fidelity"] = package
utils = types.ModuleType("torch_fidelity.utils")  # feature extraction (torchvision), unused by the KID itself
for name in ("create_feature_extractor", "extract_featuresdict_from_input_id_cached", "resolve_feature_extractor",
             "resolve_feature_layer_for_metric"):
    setattr(utils, name, None)
sys.modules["torch_fidelity.utils"] = utils
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402

from zaug.fid import kernel_distance  # noqa: E402

rng = np.random.default_rng(0)
for n, shift in ((29, 0.0), (29, 0.05), (128, 0.0), (128, 0.05), (500, 0.02)):
    a = rng.gamma(0.5, 0.4, size=(n, 2048))  # non-negative, like Inception pool features
    b = rng.gamma(0.5, 0.4, size=(n, 2048)) + shift
    theirs = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=1, kid_subset_size=n,
                                    kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                    kid_kernel_poly_coef0=1, rng_seed=0, verbose=False)["kernel_inception_distance_mean"]
    ours = kernel_distance(a, b)
    print(f"n={n:4d} shift={shift:.2f}  torch-fidelity {theirs: .9e}  zaug {ours: .9e}  "
          f"relative difference {abs(ours - theirs) / max(abs(theirs), 1e-30):.1e}")
