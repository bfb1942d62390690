"""BPSA's ANN warm-up (the authors' train_cifar10.sh: ``--warm-up 80``): the first ``epochs`` epochs train the same
network with every neuron left out, an ANN of its ops (Conv-BN-ReLU ... vote), on one time step of a static image.

As BP-STA's train.py does it: ``model.set_warm_up(True)`` before training, ``set_warm_up(False)`` at the start of
epoch ``epochs``; in warm-up ConvNet.forward skips every layer of the neuron type and runs ``step = 1`` when its
input is an image ([B, C, H, W]; event frames keep all T). The loss, optimizer and learning-rate schedule are the
run's own, unchanged across the switch.

Evaluation: the authors' code evaluates the ANN in those epochs, so its best test accuracy over epochs may be an
ANN's. Here evaluation runs the spiking network from the first epoch (``evaluate_ann: false``), so the paper protocol
(best ``test_during_fit/acc``) and the checkpoint it selects are always a spiking network's; ``evaluate_ann: true``
evaluates as the authors' code does. ``train/ann_warmup`` (1 in a warm-up epoch, else 0) is logged every epoch.
The mode is derived from ``trainer.current_epoch`` at every batch, so a resumed run continues in the right phase.
"""
from __future__ import annotations

import lightning as L


class AnnWarmup(L.Callback):
    def __init__(self, epochs: int = 80, evaluate_ann: bool = False):
        if epochs < 0:
            raise ValueError(f"ann_warmup.epochs must be >= 0, got {epochs}")
        self.epochs, self.evaluate_ann = int(epochs), bool(evaluate_ann)

    def in_warmup(self, epoch: int) -> bool:
        return epoch < self.epochs

    def setup(self, trainer, pl_module, stage):
        from snn_repro.rules import BPTT

        if not isinstance(pl_module.rule, BPTT):
            raise TypeError(f"ann_warmup needs learning_rule=bptt (BPSA), got {type(pl_module.rule).__name__}")
        if pl_module.readout_mode != "rate":
            raise ValueError(f"ann_warmup needs readout=rate (the mean over the steps run), got "
                             f"{pl_module.readout_mode!r}")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        pl_module.net.ann = self.in_warmup(trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("train/ann_warmup", float(self.in_warmup(trainer.current_epoch)))

    def on_validation_epoch_start(self, trainer, pl_module):
        pl_module.net.ann = self.evaluate_ann and self.in_warmup(trainer.current_epoch)

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.net.ann = False

    def on_test_epoch_start(self, trainer, pl_module):
        pl_module.net.ann = False  # the trained network is tested as the SNN it is

    def on_fit_end(self, trainer, pl_module):
        pl_module.net.ann = False
