"""The one LightningModule: network + encoder + learning rule + readout + loss, all composed from config."""
from __future__ import annotations

import contextlib
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchmetrics.classification import MulticlassAccuracy

from snn_repro.network import build_network
from snn_repro.nir_network import network_from_nir
from snn_repro.readout import loss_fn, readout
from snn_repro.schedules import build_scheduler


class NonFiniteLoss(FloatingPointError):
    pass


class NonFiniteWeights(NonFiniteLoss):
    """Weights that reached NaN or infinity: a neuron fed NaN never fires, so the loss can stay finite while the
    network is dead (chance accuracy, zero spikes) and the run would otherwise finish "complete"."""


def check_finite_weights(module: torch.nn.Module, epoch: int, step: int) -> None:
    """Raise NonFiniteWeights naming the first parameter holding NaN or infinity (one device synchronisation)."""
    named = [(n, p) for n, p in module.named_parameters() if p.is_floating_point()]
    if not named:
        return
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in named])
    if bool(finite.all()):
        return
    first = named[int((~finite).nonzero()[0])][0]
    raise NonFiniteWeights(f"weights {first} hold NaN or infinity at epoch {epoch}, step {step} (a non-finite input "
                           f"or gradient reached them): check the data, lower the learning rate")


class NonFiniteWatch:
    """The first non-finite loss, recorded on the loss's device without waiting for it: a host-side check of every
    step (``bool(torch.isfinite(loss))``) would stop the CPU until the GPU has finished that step, every step.
    ``record`` queues three tiny device ops; ``check`` reads them (one synchronisation) and raises."""

    def __init__(self):
        self.found = None  # device tensors: [found flag, loss value, split index, epoch, step] of the first one

    def record(self, loss: torch.Tensor, split: int, epoch: int, step: int) -> None:
        loss = loss.detach().float().reshape(())
        if self.found is None:
            self.found = torch.zeros(5, dtype=torch.float64, device=loss.device)
        first = ~torch.isfinite(loss) & (self.found[0] == 0)
        here = torch.stack([torch.ones_like(loss, dtype=torch.float64), loss.double(),
                            *(torch.full((), float(v), dtype=torch.float64, device=loss.device)
                              for v in (split, epoch, step))])
        self.found = torch.where(first, here, self.found)

    def check(self) -> None:
        if self.found is None:
            return
        flag, value, split, epoch, step = self.found.tolist()
        if flag:
            raise NonFiniteLoss(f"{EVAL_SPLITS[int(split)]} loss is {value} at epoch {int(epoch)}, "
                                f"step {int(step)}: lower the learning rate or check the input scale")


# metric prefixes: `val` is the held-out split carved from train (only when dataset.split.val_fraction > 0),
# `test_during_fit` the test split evaluated after every epoch, `test` the evaluation after fit
EVAL_SPLITS = ("train", "val", "test_during_fit", "test")
DATA_SPLITS = {"val": "val", "test_during_fit": "test", "test": "test"}  # the data each evaluation reads


@contextlib.contextmanager
def evaluation_draws(seed: int, data_split: str, rank: int, batch_idx: int, device: torch.device):
    """The random draws of one evaluation batch (a Poisson encoder's spikes) from a seed of (run seed, data split,
    rank, batch), and the random state of training left as it was. The same weights then score the same on the
    same data whenever they are evaluated: the last epoch's test, the test after fit, ``snn_repro.eval``. (From the
    running stream, each evaluation drew other spikes: the best test accuracy over epochs could come out below the
    final weights' own test.)"""
    code = ("train", "val", "test").index(data_split)
    state = np.random.SeedSequence([seed, code, rank, batch_idx]).generate_state(1, np.uint64)[0]
    # saved and restored: the CPU's random state, and that of the accelerator the batch is on
    on_accelerator = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if on_accelerator else [],
                               device_type=device.type if on_accelerator else "cuda"):
        torch.manual_seed(int(state) & (2**63 - 1))
        yield


class SNNModule(L.LightningModule):
    def __init__(self, config: dict):
        """The module of a run config (composed; resolved where it resolves): network, learning rule, encoder,
        readout, loss, optimizer and scheduler, built in that order. The config is the module's one hyperparameter,
        so Lightning's own ``SNNModule.load_from_checkpoint(path)`` rebuilds it (snn_repro.eval adds overrides)."""
        super().__init__()
        self.save_hyperparameters("config", logger=False)  # the loggers get the config from snn_repro.train
        cfg = OmegaConf.create(config)
        if cfg.arch.get("nir"):  # arch=nir: the layers and weights of a NIR graph
            self.net = network_from_nir(cfg.arch.nir, cfg.neuron, cfg.dataset.input_shape, cfg.fold_time,
                                        cfg.arch.get("dt"))
        else:
            self.net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape, fold_time=cfg.fold_time)
        self.rule = instantiate(cfg.learning_rule)
        if hasattr(self.rule, "attach"):  # rules that keep per-layer state (ASF scale factors) hook into the network
            self.rule.attach(self.net)
        self.encoder = instantiate(cfg.encoder)
        self.readout_mode, self.loss_cfg = cfg.readout, OmegaConf.to_container(cfg.loss)
        self.optimizer_factory, self.scheduler_cfg = instantiate(cfg.optimizer), OmegaConf.to_container(cfg.scheduler)
        self.metrics = torch.nn.ModuleDict({
            split + "_": MulticlassAccuracy(cfg.dataset.num_classes, average="micro") for split in EVAL_SPLITS
        })  # "train" etc. clash with nn.Module attributes inside a ModuleDict
        self.config = config  # the run config, also saved in checkpoints as snn_repro_config (read by snn_repro.eval)
        # the same before resolution: which keys follow which (encoder.T: ${dataset.T}), for eval's overrides
        self.config_source: dict | None = None
        self.test_data_split = "test"  # what the test loop reads (snn_repro.eval can point it at val)
        self.nonfinite = NonFiniteWatch()

    def check_finite(self) -> None:
        """Raise NonFiniteLoss naming the first non-finite loss since the start (one device synchronisation)."""
        self.nonfinite.check()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 50) or 50))
        if (batch_idx + 1) % every == 0:  # at the logging cadence: a diverged run stops within that many steps
            self.check_finite()

    def on_train_epoch_end(self) -> None:
        self.check_finite()
        check_finite_weights(self, self.current_epoch, self.global_step)

    def on_validation_epoch_end(self) -> None:
        self.check_finite()

    def on_test_epoch_end(self) -> None:
        self.check_finite()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite()  # never a checkpoint of weights that a non-finite loss has reached
        check_finite_weights(self, self.current_epoch, self.global_step)
        checkpoint["snn_repro_config"] = self.config
        if self.config_source is not None:
            checkpoint["snn_repro_config_source"] = self.config_source

    def read(self, out_seq: torch.Tensor) -> torch.Tensor:
        return readout(out_seq, self.readout_mode, self.encoder.time_steps, self.net.threshold)

    @staticmethod
    def as_float(x: torch.Tensor) -> torch.Tensor:
        """Event frames arrive as integer counts (a quarter of float32's bytes to pin and copy): float32 here, on
        the device the batch was moved to, which equals the float32 frames exactly."""
        return x if x.is_floating_point() else x.to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rule.eval_scores(self.net, self.encoder, self.as_float(x), self.read)

    def _shared(self, batch, split: str, batch_idx: int = 0):
        x, y = batch
        x = self.as_float(x)
        if split == "train":
            scores = self.rule.train_scores(self.net, self.encoder, x, self.read)
        else:
            data = self.test_data_split if split == "test" else DATA_SPLITS[split]
            seed = int((self.config or {}).get("seed") or 0)
            with evaluation_draws(seed, data, self.global_rank, batch_idx, x.device):
                scores = self.rule.eval_scores(self.net, self.encoder, x, self.read)
        loss = loss_fn(scores, y, **self.loss_cfg)
        self.nonfinite.record(loss, EVAL_SPLITS.index(split), self.current_epoch, self.global_step)
        acc = self.metrics[split + "_"]
        acc(scores.detach(), y)
        # sync_dist: the epoch mean over all ranks' samples (synchronised once, at the epoch's end)
        self.log(f"{split}/loss", loss.detach(), prog_bar=split in ("train", "val"), on_step=False, on_epoch=True,
                 batch_size=len(y), add_dataloader_idx=False, sync_dist=True)
        self.log(f"{split}/acc", acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(y),
                 add_dataloader_idx=False)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        names = getattr(self.trainer.datamodule, "eval_names", ("test_during_fit",))
        self._shared(batch, names[dataloader_idx], batch_idx)

    def test_step(self, batch, batch_idx):
        self._shared(batch, "test", batch_idx)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        except RuntimeError as e:  # e.g. Adam's step size lr / (1 - beta1^t) beyond float32: the non-finite case
            if "overflow" not in str(e) and "finite" not in str(e):
                raise
            lrs = ", ".join(f"{g['lr']:g}" for g in optimizer.param_groups)
            raise NonFiniteLoss(f"optimizer step is not finite at epoch {epoch}, step {self.global_step} "
                                f"({str(e).splitlines()[0]}; lr {lrs}): lower the learning rate") from None

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        scheduler = build_scheduler(optimizer, max_epochs=self.trainer.max_epochs, **self.scheduler_cfg)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
