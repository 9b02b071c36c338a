"""The training loop shared by all learned methods.

It owns what every method needs and none should write again: seeding, the
step or time budget, a progress bar with loss, validation score and time left,
periodic checkpoints (safetensors + JSON, written atomically) from which a
killed run resumes, keeping the weights of the best validation, and a hard
check that training really happened.

A method provides a *task* (see :class:`TrainTask`).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import load_state, save_state
from .errors import InputError, ZaugError, ZaugWarning
from .progress import redraw_seconds


class TrainTask(Protocol):
    """What a method gives the loop."""

    def step(self, rng: np.random.Generator, progress: float) -> dict[str, float]:
        """One optimisation step; ``progress`` in [0, 1] drives schedules. Returns losses."""

    def validate(self) -> dict[str, float]:
        """Scores on held-out data; must contain ``score`` (higher is better)."""

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything to checkpoint: tensors and JSON-able metadata."""

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore what :meth:`state_tensors` gave."""

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights that make the trained model (copied for best-model keeping)."""

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Restore weights given by :meth:`weights`."""

    # Optional: ``restart_from(weights)``, called when a validation falls COLLAPSE_DB below the best (an
    # adversarial run that collapsed): go back to the best weights and restart what drove the collapse.


#: A validation score this many dB below the best marks a collapsed run (normal runs move by tenths of a dB).
COLLAPSE_DB = 6.0
#: Restarts from the best weights allowed in one run; after that the loop trains on (the best weights are kept).
MAX_RESTARTS = 3
#: Fewer steps than this from a time budget make a model that has hardly learned: the run says so.
FEW_STEPS = 100


@dataclass
class Budget:
    """How long to train: a number of steps or minutes of wall time."""

    steps: int | None = None
    minutes: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.minutes is None:
            raise ZaugError("give a training budget: --steps N or --minutes M.")
        if self.steps is not None and self.steps < 1:
            raise ZaugError(f"--steps must be at least 1, got {self.steps}: zero steps would train nothing.")
        if self.minutes is not None and not self.minutes > 0:
            raise ZaugError(f"--minutes must be positive, got {self.minutes}: zero minutes would train nothing.")
        if self.minutes is not None and not math.isfinite(self.minutes):
            raise ZaugError(f"--minutes must be a finite number, got {self.minutes}.")

    def progress(self, step: int, elapsed: float) -> float:
        if self.steps is not None:
            return min(1.0, step / self.steps)
        return min(1.0, elapsed / (60.0 * self.minutes))

    def done(self, step: int, elapsed: float) -> bool:
        return self.progress(step, elapsed) >= 1.0


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _restore_cuda_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Put back the GPU generators a checkpoint saved, where this machine has those GPUs.

    Their draws (the gradient penalty's mixing weights) then continue as in an
    uninterrupted run; GPU kernels that are not deterministic still make GPU
    runs differ in the last bits.
    """
    states = []
    while f"rng.cuda.{len(states)}" in tensors:
        states.append(tensors[f"rng.cuda.{len(states)}"])
    if states and torch.cuda.is_available() and torch.cuda.device_count() >= len(states):
        torch.cuda.set_rng_state_all(states)


class TrainingStopped(ZaugError):
    """The run was asked to stop (``stop``); it saved a checkpoint and resumes from it."""


def _checked_loop(loop: dict) -> dict:
    """A checkpoint's loop state, refused (ValueError) where it is not one a run could have saved."""
    step, elapsed, best, history = loop["step"], loop["elapsed"], loop.get("best"), loop.get("history", [])
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step {step!r} is not a count of steps")
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not 0 <= elapsed < math.inf:
        raise ValueError(f"elapsed {elapsed!r} is not a number of seconds")
    if best is not None and not (isinstance(best, dict) and isinstance(best.get("score"), (int, float))):
        raise ValueError("its best validation has no score")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ValueError("its validation history is not a list of scores")
    return loop


def run_training(task: TrainTask, run_dir: str | Path, budget: Budget, seed: int = 0, progress: bool | type = True,
                 checkpoint_every_s: float = 60.0, n_validations: int = 20, description: str = "training",
                 stop: threading.Event | None = None) -> dict:
    """Train ``task`` until the budget is spent, resuming from ``run_dir/checkpoint`` if present.

    ``progress`` shows a tqdm bar on stderr; a tqdm subclass instead (napari's
    ``progress``, for its activity panel) is used in tqdm's place. Ctrl-C (or
    SIGTERM) stops the run at the end of the step under way and checkpoints it
    there, so that the resumed run gives the weights of an uninterrupted one; a
    second one stops it at once, mid-step. Setting ``stop`` (from another thread:
    a GUI's Stop) does the same as the first Ctrl-C, then raises
    :class:`TrainingStopped`.

    Returns
    -------
    dict
        ``steps``, ``seconds``, ``best`` (validation scores of the kept weights),
        ``history`` (validation scores over time), ``resumed`` (bool),
        ``restarts`` (times the run went back to its best weights after a collapse).
    """
    ckpt_dir = Path(run_dir) / "checkpoint"
    rng = seed_everything(seed)
    state = {"step": 0, "elapsed": 0.0, "history": [], "best": None, "last_loss": None}
    best_weights = None
    resumed = (ckpt_dir / "state.json").exists()
    if resumed:
        tensors, meta = load_state(ckpt_dir)
        try:
            task.load_state_tensors({k[5:]: v for k, v in tensors.items() if k.startswith("task.")}, meta["task"])
            best_weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
            torch.set_rng_state(tensors["rng.torch"])
            _restore_cuda_rng(tensors)
            rng.bit_generator.state = meta["numpy_rng"]
            state.update(_checked_loop(meta["loop"]))
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:  # an edited or foreign state
            raise InputError(f"the checkpoint in {ckpt_dir} is damaged ({type(exc).__name__}: {exc}); pass "
                            "--overwrite to start again.") from exc
    # the weights before the first step: a run resumed after its last step (killed while it saved) has
    # nothing left to train, but it did train
    state.setdefault("start_fingerprint", _fingerprint(task.weights()))
    validate_every = _validation_interval(budget, n_validations)
    bar = _progress_bar(budget, state, progress, description)
    if resumed and not bar.disable:
        bar.write(f"resuming the run in {run_dir} from its checkpoint at step {state['step']} "
                  f"({state['elapsed']:.0f} s trained)", file=sys.stderr)
    t_last = time.perf_counter()
    last_ckpt, next_val = t_last, _next_validation(state, validate_every)

    def checkpoint() -> None:
        tensors, meta = task.state_tensors()
        all_tensors = {f"task.{k}": v for k, v in tensors.items()}
        if best_weights is not None:
            all_tensors.update({f"best.{k}": v for k, v in best_weights.items()})
        all_tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():  # the critic's penalty draws on the GPU's
            all_tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        save_state(ckpt_dir, all_tensors, {"task": meta, "numpy_rng": rng.bit_generator.state, "loop": state})

    with _interrupts_after_the_step() as interrupted:
        try:
            while not (budget.done(state["step"], state["elapsed"]) or interrupted or (stop and stop.is_set())):
                losses = task.step(rng, budget.progress(state["step"], state["elapsed"]))
                now = time.perf_counter()
                state["elapsed"] += now - t_last
                t_last = now
                state["step"] += 1
                state["last_loss"] = float(losses.get("loss", math.nan))
                if not math.isfinite(state["last_loss"]):
                    raise ZaugError("training diverged (the loss is not a number); try another --seed or a "
                                    "smaller learning rate.")
                if _due(state, next_val, validate_every) or budget.done(state["step"], state["elapsed"]):
                    scores = task.validate()
                    state["history"].append({"step": state["step"], "seconds": round(state["elapsed"], 1), **scores})
                    if _collapsed(task, state, scores, best_weights):
                        task.restart_from(best_weights)
                        state["restarts"] = state.get("restarts", 0) + 1
                        state["history"][-1]["restarted_from_step"] = state["best"]["step"]
                    if state["best"] is None or scores["score"] > state["best"]["score"]:
                        state["best"] = dict(scores, step=state["step"])
                        best_weights = {k: v.detach().clone() for k, v in task.weights().items()}
                    next_val = _next_validation(state, validate_every)
                    t_last = time.perf_counter()  # validation time is not training time
                _update_bar(bar, budget, state)
                if time.perf_counter() - last_ckpt > checkpoint_every_s:
                    checkpoint()
                    last_ckpt = t_last = time.perf_counter()
            stopped = not budget.done(state["step"], state["elapsed"])
            if stopped:
                checkpoint()
        except KeyboardInterrupt:  # a second Ctrl-C, mid-step: saved as it is (resumable, not bit for bit)
            checkpoint()
            raise
        finally:
            bar.close()
    if interrupted:
        _deliver(interrupted[0])
    if stopped:
        raise TrainingStopped(f"training stopped at step {state['step']} ({state['elapsed']:.0f} s); it resumes "
                              "from there when the same training is started again.")
    if state["step"] == 0:
        raise ZaugError("training ran zero steps; nothing was learned and no model was saved.")
    if best_weights is not None:
        task.load_weights(best_weights)
    if _fingerprint(task.weights()) == state["start_fingerprint"]:
        raise ZaugError("training did not change the network's weights; no model was saved.")
    checkpoint()
    if budget.minutes is not None and state["step"] < FEW_STEPS:
        warnings.warn(f"{budget.minutes:g} minutes of training made only {state['step']} steps: the model has "
                      "hardly learned (its self-check says how it compares with interpolation); give it more "
                      "--minutes.", ZaugWarning, stacklevel=2)
    return {"steps": state["step"], "seconds": round(state["elapsed"], 1), "best": state["best"],
            "history": state["history"], "resumed": resumed, "restarts": state.get("restarts", 0)}


@contextlib.contextmanager
def _interrupts_after_the_step():
    """Hold SIGINT and SIGTERM until the step under way ends (the yielded list receives the signal and
    the handler it would have met); a second signal goes to that handler at once. Only the main thread
    can handle signals: elsewhere (a napari worker) nothing is held."""
    held: list = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    signals = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def hold(signum, frame):
        if held:  # the second: at once
            _restore(previous)
            _deliver((signum, previous[signum]))
        held.append((signum, previous[signum]))

    for sig in signals:
        signal.signal(sig, hold)
    try:
        yield held
    finally:
        _restore(previous)


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _deliver(held: tuple) -> None:
    """Give a held signal to the handler it would have met (which raises, or ends the process)."""
    signum, handler = held
    if callable(handler):
        handler(signum, None)
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:  # the default action of SIGTERM: end the process, as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _collapsed(task: TrainTask, state: dict, scores: dict, best_weights) -> bool:
    """Whether to restart ``task`` from the best weights (it can, it has them, and the score fell far)."""
    return (hasattr(task, "restart_from") and best_weights is not None
            and state.get("restarts", 0) < MAX_RESTARTS
            and scores["score"] < state["best"]["score"] - COLLAPSE_DB)


def _validation_interval(budget: Budget, n: int) -> tuple[str, float]:
    if budget.steps is not None:
        return "step", max(1, budget.steps // n)
    return "seconds", max(5.0, 60.0 * budget.minutes / n)


def _next_validation(state: dict, every: tuple[str, float]) -> float:
    kind, interval = every
    current = state["step"] if kind == "step" else state["elapsed"]
    return (math.floor(current / interval) + 1) * interval


def _due(state: dict, next_val: float, every: tuple[str, float]) -> bool:
    kind, _ = every
    return (state["step"] if kind == "step" else state["elapsed"]) >= next_val


def _progress_bar(budget: Budget, state: dict, enabled: bool | type, description: str):
    bar = enabled if isinstance(enabled, type) else tqdm
    every = redraw_seconds()
    if budget.steps is not None:
        return bar(total=budget.steps, initial=state["step"], desc=description, unit="step",
                    disable=not enabled, file=sys.stderr, dynamic_ncols=True, mininterval=every)
    total = int(round(60 * budget.minutes))
    return bar(total=total, initial=int(state["elapsed"]), desc=description, unit="s", disable=not enabled,
                file=sys.stderr, dynamic_ncols=True, mininterval=every,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [left {remaining}{postfix}]")


def _update_bar(bar, budget: Budget, state: dict) -> None:
    if bar.disable:
        return
    if budget.steps is not None:
        bar.update(state["step"] - bar.n)
    else:
        bar.update(int(min(bar.total, state["elapsed"])) - bar.n)  # whole seconds: napari's bar takes integers
    post = {"step": state["step"], "loss": f"{state['last_loss']:.4f}"}
    if state["history"]:
        last = state["history"][-1]
        if "val_psnr" in last:
            post["val"] = f"{last['val_psnr']:.2f}dB"
        if "val_gain_db" in last:  # over what the task's validation says (linear interpolation by default)
            post[f"vs_{last.get('val_baseline', 'linear')}"] = f"{last['val_gain_db']:+.2f}dB"
    bar.set_postfix(post, refresh=False)


def _fingerprint(weights: dict[str, torch.Tensor]) -> float:
    return float(sum(float(v.double().abs().sum()) for v in weights.values() if v.is_floating_point()))
