"""A callback for the runner tests: at a training step, write this process's id to ``marker`` and wait until
``release`` exists (a job caught mid-training, for as long as the test needs)."""
import os
import time
from pathlib import Path

import lightning as L


class HoldAtStep(L.Callback):
    def __init__(self, marker: str, release: str, step: int = 1):
        self.marker, self.release, self.step = Path(marker), Path(release), step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step != self.step:
            return
        self.marker.write_text(str(os.getpid()))
        deadline = time.time() + 120  # never hang a test run
        while not self.release.exists() and time.time() < deadline:
            time.sleep(0.05)
