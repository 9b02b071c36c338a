"""RESIN networks, training task, oblique axial direction, model files and volume restoration (tiny budgets)."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import ndimage

from zaug import InputError
from zaug.methods import resin
from zaug.nets.unet3d import PatchDiscriminatorND, UNet3D, count_parameters, resin_preset
from zaug.sample import load_sample

torch.set_num_threads(1)
TINY = {"steps": 2, "progress": False, "cube": 16}


@pytest.fixture(scope="module")
def aniso():
    """The sample made 4x anisotropic (every 4th plane kept), 32 x 32 pixels."""
    vol = load_sample()
    return vol.replace(data=np.ascontiguousarray(vol.data[::4, 40:72, 40:72]), voxel_size=(1.16, 0.26, 0.26))


@pytest.fixture(scope="module")
def model_dir(aniso, tmp_path_factory):
    return resin.fit([aniso], tmp_path_factory.mktemp("resin") / "m", TINY)


def test_preset_sizes_and_shapes():
    paper, fast = resin_preset("paper"), resin_preset("fast")
    n_paper = count_parameters(UNet3D(**paper["net"]))
    assert abs(n_paper - 5e6) < 0.15 * 5e6
    assert count_parameters(UNet3D(**fast["net"])) < n_paper / 20
    net = UNet3D(**fast["net"])
    assert net(torch.rand(1, 1, 9, 14, 17)).shape == (1, 1, 9, 14, 17)
    assert PatchDiscriminatorND(**fast["volume_discriminator"])(torch.rand(2, 1, 16, 16, 16)).shape[:2] == (2, 1)
    assert PatchDiscriminatorND(**paper["mip_discriminator"])(torch.rand(2, 1, 11, 40)).dim() == 4
    with pytest.raises(ValueError):
        resin_preset("huge")


def _tiny_task(lr: float = 1e-3) -> resin.ResinTask:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pool = ndimage.gaussian_filter(rng.random((8, 16, 16, 16)), (0, 2, 0.7, 0.7)).astype(np.float32)
    tp = resin.TRAINING_PRESETS["fast"].model_copy(update={"lr": lr, "lr_final": lr})
    config = resin.ResinConfig(net=resin_preset("fast"), training=tp, factor=4.0, cube=16,
                               train_voxel_size=[1, 1, 1], train_unit="um")
    return resin.ResinTask(config, pool, resin.validation_set(pool[:2], config), torch.device("cpu"))


def test_training_steps_change_the_weights_and_lower_the_generator_loss():
    task = _tiny_task()
    before = {k: v.clone() for k, v in task.weights().items()}
    disc_before = task.disc_volume.net[0].weight.detach().clone()
    rng = np.random.default_rng(0)
    warm_f = {k: v.clone() for k, v in task.weights().items() if k.startswith("f.")}
    assert set(task.step(rng, progress=0.0)) == {"loss", "imitation"}  # warm-up: self-imitation only
    assert any(not torch.equal(warm_f[k], task.weights()[k]) for k in warm_f)
    assert torch.equal(disc_before, task.disc_volume.net[0].weight)  # discriminators wait for the full loss
    losses = task.step(rng, progress=0.6)
    assert {"loss", "cycle1", "cycle2", "imitation", "adv_volume", "adv_mip_iso", "adv_mip_aniso",
            "disc"} <= set(losses)
    after = task.weights()
    for prefix in ("f.", "d."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    assert not torch.equal(disc_before, task.disc_volume.net[0].weight)
    y = torch.from_numpy(task.pool[:2])[:, None]
    totals = [task._generator_step(y, 1, (2, 3))[2]["loss"] for _ in range(6)]  # discriminators held fixed
    assert totals[-1] < totals[0]
    assert set(task.validate()) >= {"score", "val_psnr", "val_gain_db", "val_cycle_l1"}


def _line_cube(angle: float, side: int = 32) -> np.ndarray:
    t = math.radians(angle)
    cube = np.zeros((side, side, side), np.float32)
    for s in np.linspace(-12, 12, 200):
        cube[int(round(15.5 + s * math.cos(t))), int(round(15.5 + s * math.sin(t))), 10] = 1
    return cube


@pytest.mark.parametrize("angle", [0.0, 45.0, -30.0])
def test_axial_frame_and_rotation_follow_an_oblique_axis(angle):
    frame = resin.AxialFrame(angle, 32, torch.device("cpu"))
    cube = torch.from_numpy(_line_cube(angle))[None, None]
    mips = frame.mips(cube)
    # a line along the axial direction projects to a spot along it and to a line across it
    assert (mips["along"] > 0.3).sum() <= 2 and (mips["across_b"] > 0.3).sum() >= 15
    turned = frame.mips(resin.rotate_to_axial(cube))  # R brings the perpendicular direction onto the axis
    assert (turned["along"] > 0.3).sum() >= 15 and (turned["across_b"] > 0.3).sum() <= 2


def test_oblique_augmentations_keep_the_axial_line():
    frame = resin.AxialFrame(45.0, 32, torch.device("cpu"))
    rng = np.random.default_rng(0)
    cube = _line_cube(45.0)[None]
    for _ in range(8):
        flipped = torch.from_numpy(resin._augment(cube, rng, 45.0))[:, None]
        assert (frame.mips(flipped)["along"] > 0.3).sum() <= 2


def test_fit_writes_safetensors_and_config(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["method"] == "resin" and config["zaug_version"] and config["axial_angle"] == 0
    assert config["factor"] == pytest.approx(1.16 / 0.26) and config["cube"] == 16
    assert config["summary"]["steps"] == 2 and {"model", "cubic", "gain_db"} <= set(config["self_check"])
    keys = load_file(str(model_dir / "model.safetensors"))
    assert any(k.startswith("f.") for k in keys) and any(k.startswith("d.") for k in keys)
    assert not list(model_dir.glob("*.pt")) and not list(model_dir.glob("*.pkl"))
    line = resin.format_self_check(config["self_check"])
    assert "self-check" in line and "\n" not in line


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_restore_keeps_dtype_and_writes_isotropic_voxel_size(aniso, model_dir, dtype):
    data = (aniso.data.astype(np.float32) / aniso.data.max() * (200 if dtype == np.uint8 else 50000)).astype(dtype)
    vol = aniso.replace(data=data)
    model = resin.load(model_dir, device="cpu")
    out = model.restore_volume(vol)
    assert model.name == "resin" and out.dtype == dtype and out.voxel_size == pytest.approx((0.26, 0.26, 0.26))
    assert out.nz == int(round((vol.nz - 1) * 1.16 / 0.26)) + 1 and out.spatial_shape[1:] == (32, 32)
    assert out.metadata["method"] == "resin"


def test_restore_channels_and_given_z_spacing(aniso, model_dir):
    two = aniso.replace(data=np.stack([aniso.data, aniso.data // 2]), axes="CZYX")
    out = resin.load(model_dir, device="cpu").restore_volume(two, z_spacing=0.58)
    assert out.axes == "CZYX" and out.data.shape == (2, 2 * (aniso.nz - 1) + 1, 32, 32)
    assert out.voxel_size == pytest.approx((0.58, 0.26, 0.26))


def test_tiled_inference_blends_and_matches_whole(model_dir):
    vol = np.random.default_rng(0).random((21, 30, 19)).astype(np.float32)
    np.testing.assert_allclose(resin.apply_tiled(torch.nn.Identity(), vol, torch.device("cpu"), 8, 3), vol,
                               rtol=1e-6)
    net = resin.load(model_dir, device="cpu").net
    whole = resin.apply_tiled(net, vol, torch.device("cpu"), tile=64)
    tiled = resin.apply_tiled(net, vol, torch.device("cpu"), tile=12, overlap=4)
    assert np.abs(whole - tiled).max() < 0.05


def test_resume_after_interruption_gives_the_same_weights(aniso, tmp_path, monkeypatch):
    opts = dict(TINY, steps=4)
    straight = resin.fit([aniso], tmp_path / "a", opts)
    original = resin.ResinTask.step
    calls = []

    def interrupted(self, rng, progress):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(progress)
        return original(self, rng, progress)

    monkeypatch.setattr(resin.ResinTask, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resin.fit([aniso], tmp_path / "b", opts)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["loop"]["step"] == 2
    assert not (tmp_path / "b" / "config.json").exists()
    monkeypatch.setattr(resin.ResinTask, "step", original)
    resumed = resin.fit([aniso], tmp_path / "b", opts)
    summary = json.loads((resumed / "config.json").read_text())["summary"]
    assert summary["resumed"] is True and summary["steps"] == 4
    a = load_file(str(straight / "checkpoint" / "state.safetensors"))
    b = load_file(str(resumed / "checkpoint" / "state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("task.f."))


def test_oblique_axial_angle_trains_and_keeps_shape_and_voxel_size(aniso, tmp_path):
    iso = aniso.replace(data=np.ascontiguousarray(load_sample().data[:20, 40:72, 40:72]), voxel_size=(0.26,) * 3)
    model = resin.load(resin.fit([iso], tmp_path / "m", dict(TINY, axial_angle=45)), device="cpu")
    assert model.config.axial_angle == 45 and "line blur" in resin.format_self_check(model.config.self_check)
    out = model.restore_volume(iso)
    assert out.data.shape == iso.data.shape and out.voxel_size == pytest.approx(iso.voxel_size)
    assert out.dtype == iso.dtype


def test_bad_inputs_are_refused(aniso, tmp_path):
    with pytest.raises(InputError, match="isotropic"):
        resin.fit([aniso.replace(voxel_size=(0.3, 0.26, 0.26))], tmp_path / "a", TINY)
    with pytest.raises(InputError, match="axial-angle"):
        resin.fit([aniso], tmp_path / "b", dict(TINY, axial_angle=120))
    with pytest.raises(InputError, match="RESIN"):
        resin.fit([aniso.replace(data=aniso.data[:, :20, :20])], tmp_path / "c", TINY)
    with pytest.raises(InputError, match="degradation"):
        resin.fit([aniso], tmp_path / "d", dict(TINY, degradation="box"))
    with pytest.raises(InputError, match="Leave out --renoise"):
        resin.fit([aniso], tmp_path / "e", dict(TINY, renoise=True))
    assert not (tmp_path / "e" / "config.json").exists()
