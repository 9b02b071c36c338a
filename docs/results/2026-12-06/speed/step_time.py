"""Seconds per ZAugNet fast training step on cells3d (batch 8, patch 64), after 5 warm-up steps, mean of 40.

python step_time.py base|fused|foreach|cl|compile [STACK]   (fused/foreach: Adam variants; cl: channels_last)"""
import time, numpy as np, torch, sys
from zaug.io import read_volume
from zaug.methods import zaugnet as Z
vol = read_volume(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/cells3d_nuclei.tif")
captured = {}
def grab(task, config, out, budget, opts, method, self_check):
    captured["task"] = task; raise SystemExit
Z.train_and_save = grab
def make():
    try: Z.fit([vol], "runs/step_time_task", {"steps": 10, "overwrite": True, "progress": False})
    except SystemExit: pass
    return captured["task"]
def bench(task, n=40):
    rng = np.random.default_rng(0)
    for _ in range(5): task.step(rng, 0.1)
    t0 = time.time()
    for _ in range(n): task.step(rng, 0.1)
    return (time.time()-t0)/n
variant = sys.argv[1]
task = make()
tp = task.config.training
if variant in ("fused", "both"):
    task.opt_g = torch.optim.Adam(task.gen.parameters(), lr=tp.lr, betas=tp.betas, fused=True)
    task.opt_d = torch.optim.Adam(task.critic.parameters(), lr=tp.lr, betas=tp.betas, fused=True)
if variant == "foreach":
    task.opt_g = torch.optim.Adam(task.gen.parameters(), lr=tp.lr, betas=tp.betas, foreach=True)
    task.opt_d = torch.optim.Adam(task.critic.parameters(), lr=tp.lr, betas=tp.betas, foreach=True)
if variant in ("cl", "both"):
    task.gen.to(memory_format=torch.channels_last); task.critic.to(memory_format=torch.channels_last)
if variant != "compile":
    print(variant, bench(task))
else:
    t0 = time.time()
    task.gen = torch.compile(task.gen)
    # the critic stays eager: aot_autograd has no double backward (its gradient penalty needs one)
    rng = np.random.default_rng(0)
    task.step(rng, 0.1)
    print("first step", time.time() - t0)
    print(variant, bench(task))
