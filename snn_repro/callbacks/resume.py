"""What a killed job needs to carry on exactly where it stopped.

``ResumeState`` puts into every checkpoint the global RNG states (torch, CUDA, numpy, random), the position in the
training data (epoch, batches done) and the config hash; on restart it makes the sampler skip the batches already
trained on and puts the RNG back just before the first step that follows. It can also save ``last.ckpt`` every N
training steps and when the job is told to stop (SIGTERM, SIGUSR1, SIGUSR2: SLURM pre-emption and time limits), so
that a requeued job loses at most one batch. ``AtomicCheckpointIO`` writes checkpoints whole or not at all.

Under DDP the ranks agree on the stop: at every training batch end the ranks take the maximum of their received
signal (one small all-reduce), so a signal to one rank or to all stops every rank after the same batch, with one
checkpoint (rank 0 writes it) and an exit. The partial-epoch metric states and logged sums in the checkpoint are
sums over the ranks, put back on rank 0 only, so a checkpoint resumes on any number of ranks.
"""
from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from snn_repro.distributed import active, all_max, all_sum
from snn_repro.results import atomic_file

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class CorruptCheckpoint(RuntimeError):
    pass


class CheckpointMismatch(RuntimeError):
    """A checkpoint made under another config or for another network than the run that was asked to resume it."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, quota, read-only); the previous one is left as it was."""


class _KeepWriteError:
    """The file torch.save writes through, keeping the first OSError of its writes: torch's zip writer turns it
    into "[enforce fail at inline_container.cc] unexpected pos", and the errno (a full disk, a quota) is lost."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file beside the target, fsync, then rename over it (Lightning's own writer
    truncates the target first: a kill during the write leaves a broken last.ckpt)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        try:
            with atomic_file(path, "wb") as f:
                sink = _KeepWriteError(f)
                try:
                    torch.save(checkpoint, sink)
                except RuntimeError:
                    if sink.error is None:
                        raise
                    raise sink.error from None
        except OSError as e:  # by its errno: "cannot write <path>: No space left on device (ENOSPC)"
            if e.errno is None:
                raise CheckpointWriteError(f"cannot write checkpoint {path}: {e}; the previous checkpoint is "
                                           f"unchanged") from None
            raise CheckpointWriteError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from None
        except RuntimeError as e:  # a write error of torch's own, without an errno
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointWriteError(f"cannot write checkpoint {path}: {detail} (disk full, quota or "
                                       f"read-only?); the previous checkpoint is unchanged") from None


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors and plain values (checkpoints load with torch's weights_only=True)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
              "python": [py_version, list(py_state), py_gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, py_gauss = states["python"]
    random.setstate((version, tuple(state), py_gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint on CPU; a missing file raises FileNotFoundError, an unreadable one CorruptCheckpoint,
    each naming it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found (ckpt_path names a file that does not exist)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle garbage, ...: all mean the same to the user
        raise CorruptCheckpoint(f"checkpoint {path} is corrupted or unreadable ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else 'no detail'}); delete it to start this "
                                f"job afresh") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupted or unreadable (no model state in it); delete it to "
                                f"start this job afresh")
    return ckpt


def check_fits(path: str | os.PathLike, ckpt: dict[str, Any], module: torch.nn.Module) -> None:
    """Refuse a checkpoint whose weights do not fit the network (another architecture), naming the first key."""
    want = module.state_dict()
    have = ckpt.get("state_dict") or {}
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    shapes = [k for k in want if k in have and tuple(have[k].shape) != tuple(want[k].shape)]
    if missing or extra or shapes:
        what = (f"{shapes[0]} is {tuple(have[shapes[0]].shape)} there, {tuple(want[shapes[0]].shape)} here" if shapes
                else f"{len(missing)} weights missing (first {missing[0]})" if missing
                else f"{len(extra)} weights of another network (first {extra[0]})")
        raise CheckpointMismatch(f"checkpoint {path} was made for another architecture: {what}")


def _metric_states(module) -> dict[str, Any]:
    """Accumulated states of the module's torchmetrics (not in its state_dict: torchmetrics keeps them out); under
    DDP the sum-reduced states are summed over the ranks (what the epoch's compute() would see)."""
    from torchmetrics import Metric
    from torchmetrics.utilities.data import dim_zero_sum

    out = {}
    for name, m in module.named_modules():
        if isinstance(m, Metric) and name:
            state = {k: _clone(getattr(m, k)) for k in m._defaults}
            for k, v in state.items():
                if torch.is_tensor(v) and m._reductions.get(k) is dim_zero_sum:
                    all_sum(v)
            out[name] = {"state": state, "count": m._update_count}
    return out


def _clone(v):
    return [t.clone() for t in v] if isinstance(v, list) else v.clone()


def _load_metric_states(module, states: dict[str, Any]) -> None:
    mods = dict(module.named_modules())
    for name, saved in states.items():
        m = mods.get(name)
        if m is None:
            continue
        for k, v in saved["state"].items():
            setattr(m, k, v)
        m._update_count = saved["count"]
        m._computed = None


def _epoch_results(trainer):
    return trainer.fit_loop.epoch_loop._results


def _epoch_sums(trainer) -> dict[str, Any]:
    """Running sums of values logged on_epoch in training (Lightning starts them from zero after a restart)."""
    out = {}
    for key, rm in _epoch_results(trainer).items():
        if getattr(rm, "is_tensor", False) and rm.meta.on_epoch:
            value = rm.value.detach().clone()
            batch_size = rm.cumulated_batch_size.clone() if hasattr(rm, "cumulated_batch_size") else None
            if rm.meta.is_mean_reduction or rm.meta.is_sum_reduction:  # DDP: the sums over all ranks
                all_sum(value)
                if batch_size is not None:
                    all_sum(batch_size)
            out[key] = {"value": value, "batch_size": batch_size}
    return out


def _add_epoch_sums(trainer, sums: dict[str, Any]) -> None:
    results = _epoch_results(trainer)
    for key, saved in sums.items():
        rm = results.get(key)
        if rm is None or not getattr(rm, "is_tensor", False):
            continue
        if rm.meta.is_mean_reduction or rm.meta.is_sum_reduction:
            rm.value = rm.value + saved["value"].to(rm.value.device)
        elif rm.meta.is_max_reduction or rm.meta.is_min_reduction:
            rm.value = rm.meta.reduce_fx(rm.value, saved["value"].to(rm.value.device))
        if saved["batch_size"] is not None and hasattr(rm, "cumulated_batch_size"):
            rm.cumulated_batch_size = rm.cumulated_batch_size + saved["batch_size"].to(rm.value.device)


def _is_lightning_handler(handler) -> bool:
    owner = getattr(handler, "__self__", handler)
    return type(owner).__module__.startswith("lightning.pytorch.trainer.connectors.signal_connector")


class ResumeState(L.Callback):
    """See the module docstring. ``every_n_train_steps=0`` leaves periodic saving to ModelCheckpoint."""

    def __init__(self, checkpoint_dir: str | os.PathLike | None = None, every_n_train_steps: int = 0,
                 save_on_signal: bool = True, config_hash: str | None = None):
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.every_n_train_steps = int(every_n_train_steps)
        self.save_on_signal = save_on_signal
        self.config_hash = config_hash
        self.batches_done = 0  # training batches finished in the current epoch
        self.epoch_finished = False  # on_train_epoch_end has run for the current epoch
        self._trainer: L.Trainer | None = None
        self._pending: dict[str, Any] | None = None  # state loaded from a checkpoint, not yet applied
        self._epoch_sums: dict[str, Any] = {}
        self._signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}

    # --- what goes into the checkpoint -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        epoch = trainer.current_epoch if trainer is not None else 0
        state = {"rng": rng_states(), "epoch": epoch, "batches_done": self.batches_done,
                 "config_hash": self.config_hash, "metrics": {}, "epoch_sums": {}}
        # a checkpoint of a finished epoch (last.ckpt at its end) resumes at the next one, whose sums start at zero
        if trainer is not None and trainer.lightning_module is not None and not self.epoch_finished:
            state["metrics"] = _metric_states(trainer.lightning_module)
            if self.batches_done and trainer.training:
                state["epoch_sums"] = _epoch_sums(trainer)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint["snn_repro"] = {"config_hash": self.config_hash}

    # --- putting it back ---------------------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            if trainer.global_rank == 0:  # the saved partial-epoch sums cover all ranks (of the run that saved)
                _load_metric_states(pl_module, self._pending.get("metrics") or {})
                self._epoch_sums = self._pending.get("epoch_sums") or {}
            sampler = getattr(trainer.datamodule, "train_sampler", None)
            if sampler is not None and hasattr(sampler, "resume_at"):
                batch_size = int(trainer.datamodule.cfg.batch_size)
                sampler.resume_at(self._pending["epoch"], self._pending["batches_done"] * batch_size)
            self.batches_done = int(self._pending["batches_done"])
        if self.save_on_signal and threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous_handlers[sig] = signal.getsignal(sig)
                signal.signal(sig, self._on_signal)

    def _apply_pending_rng(self) -> None:
        # the RNG goes back at the first real work after the restart: whatever ran in between (sanity checks,
        # loader start-up) then cannot shift the random draws of the resumed run
        if self._pending is not None:
            set_rng_states(self._pending["rng"])
            self._pending = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._apply_pending_rng()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._apply_pending_rng()

    def on_test_start(self, trainer, pl_module) -> None:
        self._apply_pending_rng()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batches_done = 0
        self.epoch_finished = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_finished = True  # runs before ModelCheckpoint's (Lightning puts checkpoint callbacks last)

    # --- saving ------------------------------------------------------------------------------------------------
    def _last_path(self, trainer) -> Path:
        base = self.checkpoint_dir or Path(trainer.default_root_dir) / "checkpoints"
        return base / "last.ckpt"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches_done = batch_idx + 1
        if self._epoch_sums:  # first batch after a mid-epoch restart: add what the lost process had accumulated
            _add_epoch_sums(trainer, self._epoch_sums)
            self._epoch_sums = {}
        periodic = self.every_n_train_steps > 0 and trainer.global_step % self.every_n_train_steps == 0
        if self.save_on_signal and active():  # every rank stops after this batch if any rank was signalled
            agreed = int(all_max(torch.tensor([self._signal or 0], device=trainer.strategy.root_device)))
            self._signal = agreed or None
        if periodic or self._signal is not None:
            trainer.save_checkpoint(self._last_path(trainer))  # on all ranks (a collective), written by rank 0
        if self._signal is not None:
            self._forward_signal()

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()

    def _on_signal(self, signum, frame) -> None:
        # only a flag here: the checkpoint is written at the next batch boundary, where the state is consistent
        self._signal = signum

    def _forward_signal(self) -> None:
        """Hand the signal to whoever handled it before (submitit's requeue, or the default: exit); Lightning's own
        SIGTERM handler is replaced by its effect, a SIGTERMException on every rank (the handler's collectives
        and its killing of the other ranks would not meet the others' under DDP)."""
        signum, self._signal = self._signal, None
        self._restore_handlers()
        previous = signal.getsignal(signum)
        if _is_lightning_handler(previous):
            raise SIGTERMException()
        if callable(previous):
            previous(signum, None)
            if active():  # submitit requeues and exits on rank 0 only: the other ranks stop here
                raise SIGTERMException()
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}
