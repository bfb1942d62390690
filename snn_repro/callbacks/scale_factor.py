"""When ASF-BP's scale factors change: a schedule over epochs and batches, and their per-layer log.

``mode: ema`` (the reference code): on every training batch of the epochs where epoch % every_n_epochs == 0,
S <- momentum * S_batch + (1 - momentum) * S; frozen in all other epochs.
``mode: plain`` (the paper's "updated every 5 epochs"): S <- S_batch once, on the first training batch of each
such epoch, then frozen until the next one.
The factors themselves are a buffer of the rule (``pl_module.rule.scale``), so checkpoints carry them and a resumed
run continues with them; the schedule follows ``trainer.current_epoch`` and the batch index, which a resume restores
too, and is derived from them at every batch (a mid-epoch resume continues a refresh epoch's refreshes).
"""
from __future__ import annotations

import lightning as L


class ScaleFactorRefresh(L.Callback):
    def __init__(self, every_n_epochs: int = 5, momentum: float = 0.6, mode: str = "ema"):
        if mode not in ("ema", "plain"):
            raise ValueError(f"mode must be 'ema' or 'plain', got {mode!r}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs, self.momentum, self.mode = every_n_epochs, momentum, mode

    def is_refresh_epoch(self, epoch: int) -> bool:
        return epoch % self.every_n_epochs == 0

    @staticmethod
    def _rule(pl_module):
        rule = getattr(pl_module, "rule", None)
        if not hasattr(rule, "refresh_momentum"):
            raise TypeError(f"ScaleFactorRefresh needs a learning rule with scale factors (asf), "
                            f"got {type(rule).__name__}")
        return rule

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # derived from the epoch at every batch, not set once at the epoch's start: a run resumed from a checkpoint
        # saved inside a refresh epoch starts mid-epoch, where Lightning calls no on_train_epoch_start
        rule = self._rule(pl_module)
        if not self.is_refresh_epoch(trainer.current_epoch):
            rule.refresh_momentum = None
        elif self.mode == "ema":
            rule.refresh_momentum = self.momentum
        else:  # plain: the epoch's first batch only
            rule.refresh_momentum = 1.0 if batch_idx == 0 else None

    def on_train_epoch_end(self, trainer, pl_module):
        rule = self._rule(pl_module)
        rule.refresh_momentum = None  # nothing outside training epochs changes them
        for name, value in rule.scale_factors().items():
            pl_module.log(f"asf/S/{name}", value)
