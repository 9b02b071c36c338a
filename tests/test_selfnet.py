"""Self-Net networks, training task, model files, restoration and evaluation (tiny budgets)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import ndimage

from zaug import InputError, methods
from zaug.evaluate_restore import evaluate_restoration
from zaug.losses_ssim import ssim, ssim_loss
from zaug.methods import selfnet
from zaug.nets.axial_kernel import AxialBlurKernel
from zaug.nets.resnet2d import PatchDiscriminator, ResNetGenerator, count_parameters, selfnet_preset
from zaug.restore import restore_volume
from zaug.sample import load_sample

torch.set_num_threads(1)
TINY = {"steps": 2, "progress": False}


@pytest.fixture(scope="module")
def aniso():
    """The sample made 4x anisotropic (every 4th plane kept), 32 x 32 pixels."""
    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[::4, 40:72, 40:72]), voxel_size=(1.16, 0.26, 0.26))


@pytest.fixture(scope="module")
def model_dir(aniso, tmp_path_factory):
    return selfnet.fit([aniso], tmp_path_factory.mktemp("selfnet") / "m", TINY)


def test_preset_sizes_and_shapes():
    paper, fast = selfnet_preset("paper"), selfnet_preset("fast")
    n_gen = count_parameters(ResNetGenerator(**paper["generator"]))
    assert abs(n_gen - 0.6e6) < 0.15 * 0.6e6
    assert count_parameters(ResNetGenerator(**fast["generator"])) < n_gen / 5
    assert count_parameters(PatchDiscriminator(**fast["discriminator"])) < count_parameters(
        PatchDiscriminator(**paper["discriminator"]))
    net = ResNetGenerator(**fast["generator"])
    assert net(torch.rand(2, 1, 21, 34)).shape == (2, 1, 21, 34)
    assert PatchDiscriminator(**fast["discriminator"])(torch.rand(3, 1, 8, 40)).shape[:2] == (3, 1)
    with pytest.raises(ValueError):
        selfnet_preset("huge")


def test_axial_kernel_learns_a_row_blur_and_cannot_touch_columns():
    torch.manual_seed(0)
    x = torch.from_numpy(ndimage.gaussian_filter(np.random.default_rng(0).random((8, 1, 40, 40)), 1)
                         .astype(np.float32))
    target = torch.from_numpy(ndimage.gaussian_filter1d(x.numpy(), 1.5, axis=2, mode="nearest"))
    blur = AxialBlurKernel(6)
    opt = torch.optim.Adam(blur.parameters(), lr=0.05)
    start = float(torch.mean((blur(x) - target) ** 2).detach())
    for _ in range(300):
        opt.zero_grad()
        loss = torch.mean((blur(x) - target) ** 2)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.01 * start
    k = blur.kernel().detach()
    assert torch.all(k >= 0) and torch.allclose(k, k.flip(0)) and float(k.sum()) == pytest.approx(1.0)
    columns_only = x[:, :, :1].expand(-1, -1, 40, -1)  # constant along rows: a z blur leaves it alone
    assert torch.allclose(blur(columns_only), columns_only, atol=1e-6)
    assert selfnet.TRAINING_PRESETS["fast"].degradation_net == "kernel"
    assert isinstance(_tiny_task().g_ab, AxialBlurKernel)
    paper = selfnet.TRAINING_PRESETS["paper"]
    assert isinstance(_tiny_task(training=paper).g_ab, ResNetGenerator)


def test_ssim_is_differentiable_in_2d_and_3d():
    x = torch.rand(2, 1, 24, 24)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    y = ndimage.gaussian_filter(np.random.default_rng(0).random((1, 1, 12, 12, 12)), 1).astype(np.float32)
    pred = torch.zeros(1, 1, 12, 12, 12, requires_grad=True)
    loss = ssim_loss(pred, torch.from_numpy(y))
    loss.backward()
    assert 0 < float(loss.detach()) <= 2 and pred.grad.abs().sum() > 0


def _tiny_task(lr: float = 1e-3, training=None) -> selfnet.SelfNetTask:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sharp = ndimage.gaussian_filter(rng.random((16, 24, 24)), (0, 1, 1)).astype(np.float32)
    blurred = ndimage.gaussian_filter1d(sharp, 2, axis=1)
    tp = (training or selfnet.TRAINING_PRESETS["fast"]).model_copy(update={"batch": 4, "lr": lr, "lr_final": lr})
    config = selfnet.SelfNetConfig(net=selfnet_preset("fast"), training=tp, factor=4.0, train_voxel_size=[1, 1, 1],
                                   train_unit="um")
    pools = {"a": blurred, "c": sharp, "b": ndimage.gaussian_filter1d(rng.random((16, 24, 24)), 2, axis=1)
             .astype(np.float32)}
    val = {"a": blurred[:4], "c": sharp[:4], "low": blurred[:4, ::4], "rows": np.arange(24) / 4}
    return selfnet.SelfNetTask(config, pools, val, torch.device("cpu"))


def test_training_steps_change_every_network_and_lower_the_deblur_loss():
    task = _tiny_task()
    before = {k: v.clone() for k, v in task.weights().items()}
    disc_before = task.d_b.net[0].weight.detach().clone()
    rng = np.random.default_rng(0)
    losses = [task.step(rng, progress=0.5) for _ in range(2)]
    assert {"gan", "cycle", "flux", "feedback", "deblur", "disc", "loss"} <= set(losses[0])
    after = task.weights()
    for prefix in ("deblur.", "g_ab.", "g_ba."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    assert not torch.equal(disc_before, task.d_b.net[0].weight)
    fake_b = task.g_ab(torch.from_numpy(task.pools["a"][:4])[:, None]).detach()
    target = torch.from_numpy(task.pools["c"][:4])[:, None]
    deblur = [task._deblur_step(fake_b, target) for _ in range(15)]
    assert deblur[-1] < deblur[0]


def test_flux_loss_allows_blur_but_not_a_change_of_contrast():
    task = _tiny_task()  # factor 4: windows of 8 pixels
    spots = (np.random.default_rng(1).random((4, 1, 48, 48)) > 0.99).astype(np.float32)
    nuclei = ndimage.gaussian_filter(spots, (0, 0, 3, 3))
    x = torch.from_numpy(nuclei / nuclei.max())
    blurred = torch.from_numpy(ndimage.gaussian_filter1d(x.numpy(), 2, axis=2))  # sigma factor / 2
    more_contrast = x.mean() + 1.45 * (x - x.mean())  # what G_AB learnt on cellseg3d without it
    assert float(task._flux(x, x)) == pytest.approx(1e-3, rel=1e-3)  # Charbonnier's floor: eps
    assert float(task._flux(blurred, x)) < 0.25 * float(task._flux(more_contrast, x))


def test_stage_one_trains_the_cyclegan_only():
    task = _tiny_task()
    before = {k: v.clone() for k, v in task.weights().items()}
    losses = task.step(np.random.default_rng(0), progress=0.0)
    assert "deblur" not in losses and "feedback" not in losses
    after = task.weights()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("deblur."))


def test_fit_writes_safetensors_and_config(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["method"] == "selfnet" and config["zaug_version"]
    assert config["factor"] == pytest.approx(1.16 / 0.26) and config["degradation"] == "gaussian"
    assert config["summary"]["steps"] == 2 and {"model", "cubic", "linear"} <= set(config["self_check"])
    keys = load_file(str(model_dir / "model.safetensors"))
    assert any(k.startswith("deblur.") for k in keys) and any(k.startswith("g_ab.") for k in keys)
    assert not list(model_dir.glob("*.pt")) and not list(model_dir.glob("*.pkl"))
    line = selfnet.format_self_check(config["self_check"])
    assert "self-check" in line and "\n" not in line


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_restore_keeps_dtype_and_writes_isotropic_voxel_size(aniso, model_dir, dtype):
    data = (aniso.data.astype(np.float32) / aniso.data.max() * (200 if dtype == np.uint8 else 50000)).astype(dtype)
    vol = aniso.replace(data=data)
    out = restore_volume(vol, selfnet.load(model_dir, device="cpu"))
    assert out.dtype == dtype and out.voxel_size == pytest.approx((0.26, 0.26, 0.26))
    assert out.nz == int(round((vol.nz - 1) * 1.16 / 0.26)) + 1 and out.spatial_shape[1:] == (32, 32)


def test_restorer_tiles_exactly_and_takes_any_size(model_dir):
    model = selfnet.load(model_dir, device="cpu")
    planes = np.random.default_rng(1).random((3, 7, 45)).astype(np.float32)
    rows = np.linspace(0, 6, 40)
    whole = model.restore_planes(planes, rows)
    model.tile = 16
    np.testing.assert_allclose(model.restore_planes(planes, rows), whole, atol=1e-5)
    assert whole.shape == (3, 40, 45)
    assert model.restore_planes(planes[:, :2, :3], np.array([0.0, 0.5])).shape == (3, 2, 3)


def test_resume_after_interruption_gives_the_same_weights(aniso, tmp_path, monkeypatch):
    opts = dict(TINY, steps=4)
    straight = selfnet.fit([aniso], tmp_path / "a", opts)
    original = selfnet.SelfNetTask.step
    calls = []

    def interrupted(self, rng, progress):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(progress)
        return original(self, rng, progress)

    monkeypatch.setattr(selfnet.SelfNetTask, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        selfnet.fit([aniso], tmp_path / "b", opts)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["loop"]["step"] == 2
    assert not (tmp_path / "b" / "config.json").exists()
    monkeypatch.setattr(selfnet.SelfNetTask, "step", original)
    resumed = selfnet.fit([aniso], tmp_path / "b", opts)
    summary = json.loads((resumed / "config.json").read_text())["summary"]
    assert summary["resumed"] is True and summary["steps"] == 4
    a = load_file(str(straight / "checkpoint" / "state.safetensors"))
    b = load_file(str(resumed / "checkpoint" / "state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("task.deblur."))


def test_bad_inputs_are_refused(aniso, tmp_path):
    with pytest.raises(InputError, match="isotropic"):
        selfnet.fit([aniso.replace(voxel_size=(0.3, 0.26, 0.26))], tmp_path / "a", TINY)
    with pytest.raises(InputError, match="degradation"):
        selfnet.fit([aniso], tmp_path / "b", dict(TINY, degradation="box"))
    with pytest.raises(InputError, match="too small"):
        selfnet.fit([aniso.replace(data=aniso.data[:, :12, :12])], tmp_path / "c", TINY)
    with pytest.raises(InputError, match="preset"):
        selfnet.fit([aniso], tmp_path / "d", dict(TINY, preset="huge"))


def test_restoration_evaluation_with_selfnet(monkeypatch):
    monkeypatch.setitem(methods.LEARNED, "selfnet", "zaug.methods.selfnet")
    vol = load_sample()
    vol = vol.replace(data=vol.data[:, :48, :48])
    result = evaluate_restoration(vol, 4, "gaussian", ["cubic", "selfnet"], train_options=TINY)
    assert set(result["methods"]) == {"cubic", "selfnet"}
    assert np.isfinite(result["methods"]["selfnet"]["psnr"])
    assert result["methods"]["selfnet"]["training"]["steps"] == 2
