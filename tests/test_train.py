"""The shared training loop: going back to the best weights when a run collapses."""

import numpy as np
import torch

from zaug.train import COLLAPSE_DB, MAX_RESTARTS, Budget, run_training


class ScriptedTask:
    """A one-weight task whose validation scores follow a script (higher is better)."""

    def __init__(self, scores, restartable=True):
        self.scores, self.calls, self.restarted = list(scores), 0, []
        self.w = torch.zeros(1)
        if restartable:
            self.restart_from = lambda weights: self.restarted.append(float(weights["w"]))

    def step(self, rng, progress):
        self.w += 1.0
        return {"loss": 1.0}

    def validate(self):
        score = self.scores[min(self.calls, len(self.scores) - 1)]
        self.calls += 1
        return {"score": score}

    def state_tensors(self):
        return {"w": self.w.clone()}, {}

    def load_state_tensors(self, tensors, meta):
        self.w = tensors["w"].clone()

    def weights(self):
        return {"w": self.w.clone()}

    def load_weights(self, weights):
        self.w = weights["w"].clone()


def test_a_collapse_restarts_from_the_best_weights_and_only_then(tmp_path):
    # validations after steps 1, 2, ...: best 30 dB at step 2, then a fall of more than COLLAPSE_DB
    scores = [29.0, 30.0, 30.0 - COLLAPSE_DB + 0.5, 30.0 - COLLAPSE_DB - 1, 29.5, 31.0]
    task = ScriptedTask(scores)
    summary = run_training(task, tmp_path / "a", Budget(steps=6), progress=False, n_validations=6)
    assert task.restarted == [2.0]  # the weights of step 2, once: a dip smaller than COLLAPSE_DB is no collapse
    assert summary["restarts"] == 1 and summary["best"]["step"] == 6
    assert [h.get("restarted_from_step") for h in summary["history"]] == [None, None, None, 2, None, None]
    # a task without the hook trains on as before
    plain = ScriptedTask(scores, restartable=False)
    assert run_training(plain, tmp_path / "b", Budget(steps=6), progress=False, n_validations=6)["restarts"] == 0


def test_restarts_are_limited(tmp_path):
    task = ScriptedTask([30.0] + [0.0] * 9)
    summary = run_training(task, tmp_path / "c", Budget(steps=10), progress=False, n_validations=10)
    assert len(task.restarted) == summary["restarts"] == MAX_RESTARTS
    assert np.all(np.array(task.restarted) == 1.0)


class InterruptedTask(ScriptedTask):
    """Sends itself SIGINT half-way through step ``at`` (as Ctrl-C during a step)."""

    def __init__(self, at):
        super().__init__([30.0])
        self.at, self.steps = at, 0

    def step(self, rng, progress):
        import os
        import signal

        self.steps += 1
        if self.steps == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        self.w += float(rng.random())  # the second half of the step, after the signal
        return {"loss": 1.0}


def test_ctrl_c_stops_after_the_step_and_resuming_gives_the_uninterrupted_run(tmp_path):
    import signal

    import pytest

    # Python's Ctrl-C handler, as in a terminal: a process started in the background by a script inherits
    # SIGINT ignored, and no Ctrl-C would reach the run at all
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        whole = ScriptedTask([30.0])
        whole.step = InterruptedTask(at=0).step.__func__.__get__(whole)  # the same steps, never interrupted
        whole.at, whole.steps = 0, 0
        run_training(whole, tmp_path / "whole", Budget(steps=8), progress=False)
        task = InterruptedTask(at=3)
        with pytest.raises(KeyboardInterrupt):
            run_training(task, tmp_path / "cut", Budget(steps=8), progress=False)
        resumed = InterruptedTask(at=0)
        summary = run_training(resumed, tmp_path / "cut", Budget(steps=8), progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert summary["resumed"] and resumed.steps == 5  # steps 4 to 8: step 3 had ended and was kept
    assert float(resumed.w) == float(whole.w)


def test_a_run_killed_after_its_last_step_saves_on_rerun(tmp_path):
    first = ScriptedTask([29.0, 30.0, 31.0, 32.0])
    run_training(first, tmp_path / "a", Budget(steps=4), progress=False)  # its last checkpoint, then killed
    again = ScriptedTask([30.0])
    summary = run_training(again, tmp_path / "a", Budget(steps=4), progress=False)  # nothing left to train
    assert summary["resumed"] and summary["steps"] == 4 and float(again.w) == float(first.w) == 4.0


def test_infinite_minutes_are_refused():
    import pytest

    from zaug.errors import ZaugError

    with pytest.raises(ZaugError, match="finite"):
        Budget(minutes=float("inf"))


def test_a_time_budget_that_buys_few_steps_is_reported(tmp_path):
    import time

    import pytest

    from zaug import ZaugWarning
    from zaug.train import FEW_STEPS

    class SlowTask(ScriptedTask):
        def step(self, rng, progress):
            time.sleep(0.05)
            return super().step(rng, progress)

    with pytest.warns(ZaugWarning, match=r"0\.002 minutes of training made only \d+ steps: the model has hardly"):
        summary = run_training(SlowTask([30.0]), tmp_path / "few", Budget(minutes=0.002), progress=False)
    assert 1 <= summary["steps"] < FEW_STEPS
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZaugWarning)  # a number of steps the user chose: no warning
        run_training(ScriptedTask([30.0]), tmp_path / "chosen", Budget(steps=3), progress=False)


def test_model_and_checkpoint_files_are_readable_as_the_umask_allows(tmp_path):
    """A colleague or a cluster worker running as another user must be able to load a model."""
    import os
    import stat

    from zaug.checkpoint import load_model, load_state, save_model, save_state

    tensors = {"w": torch.arange(6.0).reshape(2, 3)}
    previous = os.umask(0o022)
    try:
        save_model(tmp_path / "m", tensors, {"method": "zaugnet"})
        save_state(tmp_path / "m" / "checkpoint", tensors, {"step": 3})
    finally:
        os.umask(previous)
    for path in (tmp_path / "m" / "model.safetensors", tmp_path / "m" / "checkpoint" / "state.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
    assert torch.equal(load_model(tmp_path / "m")[0]["w"], tensors["w"])
    assert load_state(tmp_path / "m" / "checkpoint")[1] == {"step": 3}


def test_a_checkpoint_keeps_and_a_resume_restores_the_gpu_generators(tmp_path, monkeypatch):
    # the critic's gradient penalty draws its mixing weights on the GPU: resume must continue those draws
    from zaug.checkpoint import load_state

    gpu_state = [torch.arange(16, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: gpu_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.append(states))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: None)
    run_training(ScriptedTask([30.0]), tmp_path / "run", Budget(steps=3), progress=False)
    tensors, _ = load_state(tmp_path / "run" / "checkpoint")
    assert torch.equal(tensors["rng.cuda.0"], gpu_state[0])
    run_training(ScriptedTask([30.0]), tmp_path / "run", Budget(steps=3), progress=False)  # resumed at its end
    assert len(restored) == 1 and torch.equal(restored[0][0], gpu_state[0])


def test_a_gpu_number_beyond_the_machine_is_refused_in_one_sentence(monkeypatch):
    import pytest

    from zaug import InputError
    from zaug.methods._common import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(InputError, match=r"names GPU 3, but this machine has 2 \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:3")


def test_another_accelerator_is_used_only_where_pytorch_has_it(monkeypatch):
    import pytest

    from zaug import InputError
    from zaug.methods._common import resolve_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(InputError, match="--device mps was asked for but this PyTorch has no usable mps device"):
        resolve_device("mps")  # was: an error about building the networks, after the model was read
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")
    with pytest.raises(InputError, match="no usable meta device"):
        resolve_device("meta")


def test_an_unfinished_run_resumes_on_its_stack_under_another_file_name(tmp_path):
    import json

    import pytest

    from zaug.errors import OutputError
    from zaug.methods._common import prepare_run_dir

    identity = {"method": "zaugnet", "data": [{"shape": [4, 8, 8], "checksum": "ab", "file": "day1.tif"}]}
    out = prepare_run_dir(tmp_path / "m", identity, Budget(steps=10), overwrite=False)
    (out / "checkpoint").mkdir()  # a run stopped after its first checkpoint
    assert json.loads((out / "run.json").read_text())["data"][0]["file"] == "day1.tif"  # for zaug info
    renamed = {"method": "zaugnet", "data": [{"shape": [4, 8, 8], "checksum": "ab", "file": "renamed.tif"}]}
    prepare_run_dir(out, renamed, Budget(steps=10), overwrite=False)  # the same stack: resumed
    other = {"method": "zaugnet", "data": [{"shape": [4, 8, 8], "checksum": "cd", "file": "day1.tif"}]}
    with pytest.raises(OutputError, match=r"other settings \(the stacks\)"):
        prepare_run_dir(out, other, Budget(steps=10), overwrite=False)
