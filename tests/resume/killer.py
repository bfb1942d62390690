"""A callback for the resume tests: SIGKILL this process when training reaches a given step, once."""
from __future__ import annotations

import os
import signal
import signal as signal_module
from pathlib import Path

import lightning as L


class KillAtStep(L.Callback):
    """Kill -9 at the start of the batch that would make global step ``step + 1`` (unless ``marker`` exists)."""

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(f"killed at step {self.step}, batch {batch_idx}\n")
            os.kill(os.getpid(), signal.SIGKILL)


class RecordEpochs(L.Callback):
    """Appends the number of every training epoch this process starts to ``path`` (one per line)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_epoch_start(self, trainer, pl_module):
        with self.path.open("a") as f:
            f.write(f"{trainer.current_epoch}\n")


class SignalAtStep(L.Callback):
    """Send ``signal`` (a name: SIGUSR2, SIGHUP, ...) to this process when training reaches global step ``step``."""

    def __init__(self, step: int, signal: str):
        self.step, self.signum = step, getattr(signal_module, signal)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
