"""Progress of prediction and restoration: silent in the library, a bar that covers the job once when asked."""

import threading

import numpy as np
import pytest

from zaug import Volume
from zaug.progress import RESOLUTION, Cancelled, advance, part, reporting


class Recorder:
    """A tqdm stand-in that records the bar's positions."""

    made = []

    def __init__(self, total, desc, bar_format):
        self.total, self.desc, self.n, self.positions = total, desc, 0, []
        Recorder.made.append(self)

    def update(self, k):
        self.n += k
        self.positions.append(self.n)

    def close(self):
        self.closed = True


def test_nested_parts_move_the_bar_forward_through_the_job_once():
    Recorder.made.clear()
    with reporting(Recorder, desc="predicting"):
        with part(2):  # two stacks
            for _ in range(2):
                with part(1):
                    with part(4):  # four batches each
                        for _ in range(4):
                            advance()
    bar = Recorder.made[0]
    assert bar.closed and bar.desc == "predicting"
    assert bar.positions == [125, 250, 375, 500, 625, 750, 875, 1000]
    assert bar.n == RESOLUTION


def test_a_part_that_reports_more_than_it_declared_stays_within_its_share():
    Recorder.made.clear()
    with reporting(Recorder):
        with part(2):
            with part(1):
                with part(3):
                    for _ in range(10):  # more than declared: held at the end of this stack's half
                        advance()
            assert Recorder.made[0].n == 500
    assert Recorder.made[0].n == RESOLUTION


def test_the_default_bar_redraws_seldom_into_a_log(tmp_path, monkeypatch):
    import sys

    import zaug.progress as progress

    with open(tmp_path / "job.log", "w") as log:  # a cluster job's stderr: not a terminal
        monkeypatch.setattr(sys, "stderr", log)
        with reporting():
            assert progress._REPORTER.get().bar.mininterval == 10.0
        monkeypatch.setattr(log, "isatty", lambda: True, raising=False)
        with reporting():
            assert progress._REPORTER.get().bar.mininterval == 0.1


def test_the_tile_bar_into_a_log_counts_every_task_and_does_not_hold_the_job(tmp_path, monkeypatch):
    import sys
    import time

    import dask
    import dask.array as da

    from zaug.cli import _tile_bar

    ended = []

    def slow(block):
        time.sleep(0.15)
        ended.append(time.monotonic())
        return block

    tiles = da.ones((8, 4, 4), chunks=(1, 4, 4)).map_blocks(slow, meta=np.ones((0, 0, 0)))
    with open(tmp_path / "job.log", "w") as log:  # a cluster job's stderr: a redraw every 10 s at most
        monkeypatch.setattr(sys, "stderr", log)
        with _tile_bar(), dask.config.set(scheduler="synchronous"):
            tiles.compute()
            done = time.monotonic()
    # dask's own bar slept its 10-s redraw interval out before the computation could return
    assert done - ended[-1] < 2.0
    assert len(ended) == 8
    assert "computing tiles: 100%" in (tmp_path / "job.log").read_text()  # shown after 1 s: 8 x 0.15 s


def test_without_a_reporter_nothing_is_recorded_and_nothing_fails():
    with part(3):
        advance(5)


def test_a_set_stop_event_cancels_at_the_next_report():
    stop = threading.Event()
    done = []
    with pytest.raises(Cancelled, match="nothing was written"):
        with reporting(Recorder, stop=stop):
            with part(5):
                for k in range(5):
                    done.append(k)
                    if k == 1:
                        stop.set()
                    advance()
    assert done == [0, 1]


def test_upsample_z_and_restoration_report_every_stack():
    from zaug.classic import ClassicalInterpolator
    from zaug.predict import upsample_z
    from zaug.restore import ClassicalRestorer, restore_volume

    vol = Volume(np.random.default_rng(0).random((2, 6, 16, 16), np.float32), (2.0, 1.0, 1.0), "um", axes="CZYX")
    Recorder.made.clear()
    with reporting(Recorder):
        upsample_z(vol, ClassicalInterpolator("linear"), factor=2)
    assert Recorder.made[0].positions == [500, 1000]  # one per channel
    Recorder.made.clear()
    with reporting(Recorder):
        restore_volume(vol, ClassicalRestorer("linear"), batch=8)
    positions = Recorder.made[0].positions  # 2 channels x (16 xz + 16 yz planes) in batches of 8
    assert positions == [125, 250, 375, 500, 625, 750, 875, 1000]


def test_a_zaugnet_batch_of_large_planes_moves_the_bar_tile_by_tile():
    import torch

    from zaug.checkpoint import module_tensors
    from zaug.methods.zaugnet import TRAINING_PRESETS, ZAugNetConfig, ZAugNetModel
    from zaug.nets.critic import critic_preset
    from zaug.nets.ifnet import IFNet, ifnet_preset
    from zaug.predict import upsample_z

    net = dict(ifnet_preset("fast"), position_input=False)
    config = ZAugNetConfig(preset="fast", net=net, critic=critic_preset("fast"), training=TRAINING_PRESETS["fast"],
                           normalisation={"low": 0.0, "high": 1.0}, train_voxel_size=[1.0, 0.5, 0.5],
                           train_unit="um", train_plane_spacing=1.0, triplet_spacing=[2.0])
    torch.manual_seed(0)
    model = ZAugNetModel(config, module_tensors("generator", IFNet(**net)), torch.device("cpu"), tile=48,
                         overlap=8, tta=False)
    model.calibrate = False
    vol = Volume(np.random.default_rng(0).random((3, 80, 80), np.float32), (1.0, 0.5, 0.5), "um")
    Recorder.made.clear()
    with reporting(Recorder):
        upsample_z(vol, model, factor=2)  # 2 new planes in one batch, in 2 x 2 tiles of 48 pixels
    positions = Recorder.made[0].positions
    assert positions == [250, 500, 750, 1000]  # was: [1000], after the whole batch
