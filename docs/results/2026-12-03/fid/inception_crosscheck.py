"""Check zaug's FID Inception-v3 against torch-fidelity's independent implementation.

No official weights are available here, so both networks get the same random
weights (He-normal convolutions, random batch-norm statistics, so activations
stay O(1) through the 94 layers) and must give the same 2048 features, and
zaug's Fréchet distance must equal scipy's matrix-square-root formula.

Usage: python inception_crosscheck.py DIR, where DIR holds the unpacked
torch-fidelity 0.4.0 wheel (pip download --no-deps torch-fidelity; unzip).
torch-fidelity needs torchvision only for other extractors; this script loads
its Inception module alone, and hands it the weights in memory.
"""

import sys
import types

import numpy as np
import scipy.linalg
import torch

from zaug.fid import frechet_distance
from zaug.nets.inception import FIDInceptionV3

package = types.ModuleType("torch_fidelity")
package.__path__ = [sys.argv[1] + "/torch_fidelity"]
sys.modules["torch_fidelity"] = package
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402

torch.manual_seed(0)
ours = FIDInceptionV3().eval()
for module in ours.modules():
    if isinstance(module, torch.nn.Conv2d):
        torch.nn.init.kaiming_normal_(module.weight)
    if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.data.uniform_(0.5, 1.5)
        module.bias.data.uniform_(-0.2, 0.2)
        module.running_mean.uniform_(-0.3, 0.3)
        module.running_var.uniform_(1.0, 3.0)
state = {k: v.clone() for k, v in ours.state_dict().items()}
state["fc.weight"] = torch.randn(1008, 2048) * 0.01
state["fc.bias"] = torch.zeros(1008)

real_load = torch.load
torch.load = lambda *args, **kwargs: state  # no file is read or unpickled
theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="in-memory")
torch.load = real_load

rng = np.random.default_rng(1)
images = torch.from_numpy(rng.integers(0, 256, size=(6, 3, 299, 299), dtype=np.uint8))
with torch.inference_mode():
    reference = theirs(images)[0].double().numpy()  # 299 x 299 in: its resize is the identity
    mine = ours((images.float() - 128) / 128).double().numpy()
scale = np.abs(reference).max()
print(f"features: max |difference| {np.abs(mine - reference).max():.3g}, max |feature| {scale:.3g}, "
      f"mean |feature| {np.abs(reference).mean():.3g}")

a, b = rng.normal(size=(40, 2048)), rng.normal(0.1, 1.2, size=(30, 2048))
for x, y, label in ((a, b, "40 vs 30 samples (low-rank route)"),
                    (rng.normal(size=(3000, 64)), rng.normal(0.1, 1.3, size=(2500, 64)), "3000 vs 2500 (eigh route)")):
    sa, sb = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb).real
    base = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sa + sb)
    eig = np.sqrt(np.clip(np.linalg.eigvals(sa @ sb).real, 0, None)).sum()  # third route: eigenvalues of S_a S_b
    print(f"Fréchet distance, {label}: zaug {frechet_distance(x, y):.6f}, scipy sqrtm {base - 2 * np.trace(root):.6f}, "
          f"eigenvalues {base - 2 * eig:.6f}")

# A case with a closed form: y = 1.5 x + 0.1, so S_y = 2.25 S_x and tr((S_x S_y)^(1/2)) = 1.5 tr(S_x).
x = rng.normal(size=(40, 2048))
y = 1.5 * x + 0.1
sx = np.cov(x, rowvar=False)
exact = np.sum((0.5 * x.mean(0) + 0.1) ** 2) + 0.25 * np.trace(sx)
base = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx) * 3.25
root = scipy.linalg.sqrtm(sx @ (2.25 * sx)).real
eig = np.sqrt(np.clip(np.linalg.eigvals(sx @ (2.25 * sx)).real, 0, None)).sum()
print(f"closed form, 40 samples of 2048 features: exact {exact:.6f}, zaug {frechet_distance(x, y):.6f}, "
      f"scipy sqrtm {base - 2 * np.trace(root):.6f}, eigenvalues {base - 2 * eig:.6f}")
