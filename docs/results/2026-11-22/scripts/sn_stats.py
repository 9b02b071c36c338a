"""Statistics of the Self-Net domains (lateral a, G_AB(a), real axial b) for a kept model: python sn_stats.py MODEL_DIR"""
import sys, numpy as np, torch
from zaug import Volume
from zaug.methods import selfnet
from zaug.checkpoint import load_model, load_module_tensors
from zaug.nets.resnet2d import ResNetGenerator
keep = sys.argv[1]
tensors, raw = load_model(keep)
cfg = selfnet.SelfNetConfig.model_validate(raw)
g_ab = ResNetGenerator(**cfg.net["generator"]); load_module_tensors("g_ab", g_ab, tensors)
deb = ResNetGenerator(**cfg.net["generator"]); load_module_tensors("deblur", deb, tensors)
sim = Volume(np.load(keep + "/sim.npy"), (4.0, 1.0, 1.0), "pixel")
rng = np.random.default_rng(5)
hr, _ = selfnet._patch_sizes(cfg.training.patch, cfg.factor, cfg.degradation, [sim])
A = selfnet.lateral_domain([sim], cfg, hr, 256, rng)
B = selfnet.axial_domain([sim], cfg.factor, tuple(cfg.patch), 256, rng)
dev = torch.device("cpu")
gab = selfnet._apply_tiled(g_ab, A["a"], dev)
def stats(name, x):
    gr = np.mean(np.abs(np.diff(x, axis=1))); gc = np.mean(np.abs(np.diff(x, axis=2)))
    print(f"{name:14s} mean {x.mean():.4f} std {x.std():.4f} |d/drow| {gr:.4f} |d/dcol| {gc:.4f}")
for n, x in (("c (sharp)", A["c"]), ("a (fixed)", A["a"]), ("G_AB(a)", gab), ("b (real ax)", B),
             ("deblur(a)", selfnet._apply_tiled(deb, A["a"], dev)), ("deblur(G_AB a)", selfnet._apply_tiled(deb, gab, dev)),
             ("deblur(b)", selfnet._apply_tiled(deb, B, dev))):
    stats(n, x)
