"""The three numbers a run reports, from its per-epoch evaluations.

- paper protocol: the highest ``test_during_fit/acc`` over epochs (what the papers' codes print as their best
  accuracy: ASF-BP's ``best_prec1``, BP-STA's best test accuracy, MAP-SNN's max over epochs). It selects on test.
- last epoch: the test accuracy of the final weights.
- held-out protocol: the checkpoint with the best ``val/acc`` (a split carved from train), tested once after fit.

Evaluation draws (a Poisson encoder's spikes) come from a seed of the batch (``snn_repro.module.evaluation_draws``):
the last epoch's ``test_during_fit/acc`` is the final weights' test accuracy, so the paper protocol is never below it.

``EpochHistory`` keeps one row per evaluated epoch and travels in every checkpoint, so a resumed run's maximum
covers the epochs of the process that was killed. Every checkpoint also carries the fit's metrics and validation
spike counts as they stand (``FIT_RECORD``): a run resumed from the checkpoint of its last epoch trains nothing more,
and its results.json is rebuilt whole from them (snn_repro.train).
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch

HISTORY_KEYS = ("val/acc", "val/loss", "test_during_fit/acc", "test_during_fit/loss")
FIT_RECORD = "snn_repro_fit_record"  # checkpoint key: {"metrics": {...}, "spikes": {split: summary}}


def scalar_metrics(trainer) -> dict[str, float]:
    """The trainer's logged metrics that are single numbers (what results.json reports)."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}


class EpochHistory(L.Callback):
    def __init__(self):
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        row = {"epoch": int(trainer.current_epoch), **{k: float(m[k]) for k in HISTORY_KEYS if k in m}}
        self.history = [h for h in self.history if h["epoch"] != row["epoch"]] + [row]

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history]}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        spikes = {k: v for k, v in (getattr(pl_module, "spike_summary", None) or {}).items() if k != "test"}
        checkpoint[FIT_RECORD] = {"metrics": scalar_metrics(trainer), "spikes": spikes}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]


def best_epoch(history: list[dict[str, float]], key: str) -> dict[str, float] | None:
    """The first evaluated epoch with the highest ``key`` (a later tie does not replace it, as in the papers' codes)."""
    best = None
    for row in history:
        if key in row and (best is None or row[key] > best[key]):
            best = row
    return best
