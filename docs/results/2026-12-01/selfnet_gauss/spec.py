import sys, numpy as np, torch
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.data.lateral import split_lateral_validation, simulate_anisotropy
from zaug.nets.resnet2d import selfnet_preset
from zaug.train import seed_everything
vol = read_volume(sys.argv[1]); sim = simulate_anisotropy(vol, 4, "gaussian")
tp = selfnet.TRAINING_PRESETS["fast"]
for sig in (1.0, 2.0):
    cfg = selfnet.SelfNetConfig(preset="fast", net=selfnet_preset("fast"), training=tp, factor=4.0,
        degradation="gaussian", sigma=sig, seed=0, train_voxel_size=list(sim.voxel_size), train_unit=sim.unit)
    tv, vv, _ = split_lateral_validation([sim]); hr, cfg.patch = selfnet._patch_sizes(tp.patch, 4.0, "gaussian", [sim])
    rng = seed_everything(0)
    A = selfnet.lateral_domain(tv, cfg, hr, 1024, rng)["a"]; B = selfnet.axial_domain([sim], 4.0, tuple(cfg.patch), 1024, rng)
    def spec(X):
        X = X - X.mean(axis=1, keepdims=True)
        return (np.abs(np.fft.rfft(X * np.hanning(X.shape[1])[None, :, None], axis=1)) ** 2).mean(axis=(0, 2))
    sa, sb = spec(A), spec(B); f = np.fft.rfftfreq(A.shape[1])
    best = None
    for s in np.arange(0, 4.01, 0.1):
        g = np.exp(-(2 * np.pi * f * s) ** 2)  # |K|^2 of Gaussian sigma s
        sel = (f > 0.02) & (f < 0.2)
        err = np.mean((np.log(g[sel] * sa[sel]) - np.log(sb[sel])) ** 2)
        best = min(best or (9e9, 0), (err, s))
    print("user sigma", sig, "spectral extra sigma %.1f" % best[1], "ratio B/A at f=.05,.1,.15:",
          [round(float(sb[np.argmin(abs(f - q))] / sa[np.argmin(abs(f - q))]), 3) for q in (0.05, 0.1, 0.15)])
