"""A callback for the DDP stop tests: send a signal to this rank at a given step, once (a marker file per rank)."""
from __future__ import annotations

import os
from pathlib import Path

import lightning as L


class SignalAtStep(L.Callback):
    """At the start of the batch that would make global step ``step + 1``, ranks in ``ranks`` signal themselves."""

    def __init__(self, step: int, signum: int, ranks: list[int], marker: str):
        self.step, self.signum, self.ranks, self.marker = step, int(signum), list(ranks), marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        marker = Path(f"{self.marker}.{trainer.global_rank}")
        if trainer.global_step == self.step and trainer.global_rank in self.ranks and not marker.exists():
            marker.write_text(f"signal {self.signum} at step {self.step}\n")
            os.kill(os.getpid(), self.signum)
