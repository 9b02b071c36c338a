"""Stage-1 probe: does the kernel G_AB learn the blur the user's model misses?
python kprobe.py DATA sigma=S steps=N klr=LR idk=0|1 gan=W cyc=W"""
import sys, time, itertools
import numpy as np, torch
from zaug.io import read_volume
from zaug.methods import selfnet
from zaug.data.lateral import split_lateral_validation
from zaug.data.lateral import simulate_anisotropy
from zaug.nets.resnet2d import selfnet_preset
from zaug.train import seed_everything
kv = dict(a.split("=") for a in sys.argv[2:])
vol = read_volume(sys.argv[1])
sim = simulate_anisotropy(vol, 4, "gaussian")
tp = selfnet.TRAINING_PRESETS["fast"].model_copy(update=dict(
    gan_weight=float(kv.get("gan", 0.1)), cycle_weight=float(kv.get("cyc", 1.0))))
cfg = selfnet.SelfNetConfig(preset="fast", net=selfnet_preset("fast"), training=tp, factor=4.0,
                            degradation="gaussian", sigma=float(kv["sigma"]), seed=0,
                            train_voxel_size=list(sim.voxel_size), train_unit=sim.unit)
train_vols, val_vol, _ = split_lateral_validation([sim])
hr, cfg.patch = selfnet._patch_sizes(tp.patch, 4.0, "gaussian", [sim])
rng = seed_everything(0)
pools = selfnet.lateral_domain(train_vols, cfg, hr, tp.pool, rng)
pools["b"] = selfnet.axial_domain([sim], 4.0, tuple(cfg.patch), tp.pool, rng)
task = selfnet.SelfNetTask(cfg, pools, pools, torch.device("cpu"))
klr = float(kv.get("klr", tp.lr))
import torch.nn as nn, torch.nn.functional as F
class GaussK(nn.Module):
    def __init__(self, half, s0=0.5):
        super().__init__(); self.radius = half
        self.rho = nn.Parameter(torch.tensor(float(np.log(np.expm1(s0)))))
    def sigma(self): return F.softplus(self.rho) + 1e-3
    def kernel(self):
        x = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        w = torch.exp(-0.5 * (x / self.sigma()) ** 2); return w / w.sum()
    def forward(self, x):
        k = self.kernel().to(x.dtype).view(1, 1, -1, 1)
        return F.conv2d(F.pad(x, (0, 0, self.radius, self.radius), mode="replicate"), k)
class MonoK(GaussK):
    def __init__(self, half):
        nn.Module.__init__(self); self.radius = half
        th = torch.full((half,), 2.0); th[0] = -2.0  # ratio tap1/centre 0.12, then decays slowly
        self.theta = nn.Parameter(th)
    def kernel(self):
        side = torch.cumprod(torch.sigmoid(self.theta), 0)
        w = torch.cat([side.flip(0), torch.ones(1), side]); return w / w.sum()
shape = kv.get("shape", "free")
if shape == "gauss": task.g_ab = GaussK(8, float(kv.get("s0", 0.5)))
if shape == "mono": task.g_ab = MonoK(8)
task.opt_g = torch.optim.Adam([{"params": task.g_ab.parameters(), "lr": klr},
                               {"params": task.g_ba.parameters(), "lr": tp.lr}], betas=tuple(tp.betas))
idk = int(kv.get("idk", 1))
orig = task._pixel
def gen_step(a, b, c, joint):
    for net in (task.d_a, task.d_b):
        net.requires_grad_(False)
    fake_b, fake_a = task.g_ab(a), task.g_ba(b)
    gan = selfnet._lsgan(task.d_b(fake_b), True) + selfnet._lsgan(task.d_a(fake_a), True)
    cycle = task._pixel(task.g_ba(fake_b), a) + task._pixel(task.g_ab(fake_a), b)
    ident = task._pixel(task.g_ba(a), a) + (task._pixel(task.g_ab(b), b) if idk else 0)
    flux = task._flux(fake_b, a) + task._flux(fake_a, b)
    total = tp.gan_weight * gan + tp.cycle_weight * cycle + tp.identity_weight * ident + flux
    task.opt_g.param_groups[0]["lr"] = klr
    task.opt_g.zero_grad(); total.backward(); task.opt_g.step()
    for net in (task.d_a, task.d_b):
        net.requires_grad_(True)
    return fake_b.detach(), fake_a.detach(), {"generators": float(total.detach())}
task._generator_step = gen_step
def kstd():
    k = task.g_ab.kernel().detach().numpy(); x = np.arange(len(k)) - len(k) // 2
    c = len(k) // 2
    return float(np.sqrt((k * x * x).sum())), " ".join("%.3f" % v for v in k[c:c + 6])
steps = int(kv.get("steps", 600)); t0 = time.time()
for s in range(steps):
    for g in task.opt_g.param_groups[1:]: pass
    task.step(rng, 0.0)
    if (s + 1) % 100 == 0:
        print(s + 1, "kernel std %.3f taps %s" % kstd(), "%.0fs" % (time.time() - t0), flush=True)
