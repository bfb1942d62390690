"""The scale-factor schedule (which epochs, which batches change S), its log, and S through a real Lightning
checkpoint: saved, restored on resume, and used by the resumed run."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from snn_repro.callbacks.scale_factor import ScaleFactorRefresh
from snn_repro.encoders import Direct
from snn_repro.module import SNNModule
from snn_repro.rules.asf import ASF

ARCH = {"init": "kaiming_normal", "bias": False, "layers": [
    {"op": "linear", "out": 16}, {"op": "neuron"}, {"op": "linear", "out": 12}, {"op": "neuron"},
    {"op": "linear", "out": 3}]}


CONFIG = {"arch": ARCH, "neuron": {"_target_": "snn_repro.neurons.IF", "threshold": 1.0}, "fold_time": True,
          "dataset": {"input_shape": [6], "num_classes": 3}, "learning_rule": {"_target_": "snn_repro.rules.ASF"},
          "encoder": {"_target_": "snn_repro.encoders.Direct", "T": 8}, "readout": "membrane",
          "loss": {"name": "mse", "reduction": "sum"}, "scheduler": {"name": "none"},
          "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-2}}


def make_module(seed=0):
    torch.manual_seed(seed)
    module = SNNModule(CONFIG)
    assert isinstance(module.rule, ASF) and isinstance(module.encoder, Direct)
    return module


def loader():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 6, generator=g) * 1.5
    return DataLoader(TensorDataset(x, torch.arange(12) % 3), batch_size=3)  # 4 batches per epoch


class Spy(L.Callback):
    """Records S before and after every training batch, keyed by (epoch, batch)."""

    def __init__(self):
        self.before, self.after = {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[trainer.current_epoch, batch_idx] = pl_module.rule.scale.clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after[trainer.current_epoch, batch_idx] = pl_module.rule.scale.clone()


def fit(module, epochs, callbacks, tmp_path, ckpt_path=None):
    trainer = L.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(module, train_dataloaders=loader(), ckpt_path=ckpt_path)
    return trainer


def changed(spy):
    return sorted(k for k in spy.after if not torch.equal(spy.before[k], spy.after[k]))


def test_ema_mode_refreshes_every_batch_of_every_nth_epoch(tmp_path):
    spy = Spy()
    trainer = fit(make_module(), 5, [ScaleFactorRefresh(every_n_epochs=2, momentum=0.6), spy], tmp_path)
    assert changed(spy) == [(e, b) for e in (0, 2, 4) for b in range(4)]
    s = spy.after[4, 3]
    assert torch.all(s != 1.0) and torch.all(s > 0) and torch.all(s < 1)  # IF: FO/FI < 1/Vth
    names = trainer.lightning_module.rule.stage_names
    assert names == ["1_neuron", "3_neuron"]
    for i, name in enumerate(names):
        assert float(trainer.callback_metrics[f"asf/S/{name}"]) == pytest.approx(float(s[i]))


def test_ema_value_uses_this_batch_before_its_backward(tmp_path):
    """S after a refresh batch is 0.6 * ratio of that batch's flows (simulated with the pre-step weights) + 0.4 * S."""
    module = make_module()
    x, _ = next(iter(loader()))
    net, rule = module.net, module.rule
    torch.manual_seed(5)
    sums = rule.simulate(net, module.encoder, x)
    with torch.no_grad():  # FI = W * FO_prev (eq. 8; the ops are linear)
        fi = [net.layers[0].module(sums.input), net.layers[2].module(sums.counts[0])]
    want = torch.stack([0.6 * rule.batch_scale(fi[k], sums.counts[k], False) + 0.4 for k in range(2)])
    rule.refresh_momentum = 0.6
    rule.train_scores(net, module.encoder, x, module.read)  # Direct coding: the same flows again
    assert torch.allclose(rule.scale, want)


def test_plain_mode_refreshes_once_per_nth_epoch(tmp_path):
    spy = Spy()
    fit(make_module(), 4, [ScaleFactorRefresh(every_n_epochs=2, mode="plain"), spy], tmp_path)
    assert changed(spy) == [(0, 0), (2, 0)]


def test_scale_factors_survive_checkpoint_and_resume(tmp_path):
    trainer = fit(make_module(), 1, [ScaleFactorRefresh(every_n_epochs=5)], tmp_path)
    saved = trainer.lightning_module.rule.scale.clone()
    assert not torch.allclose(saved, torch.ones(2))
    ckpt = tmp_path / "epoch0.ckpt"
    trainer.save_checkpoint(ckpt)
    assert torch.equal(torch.load(ckpt, weights_only=False)["state_dict"]["rule.scale"], saved)

    fresh = make_module(seed=1)
    assert torch.equal(fresh.rule.scale, torch.ones(2))
    spy = Spy()
    fit(fresh, 3, [ScaleFactorRefresh(every_n_epochs=5), spy], tmp_path, ckpt_path=str(ckpt))
    assert sorted({e for e, _ in spy.before}) == [1, 2]  # resumed after epoch 0; 1 and 2 are not refresh epochs
    for s in list(spy.before.values()) + list(spy.after.values()):
        assert torch.equal(s, saved)


def test_mid_epoch_resume_inside_a_refresh_epoch_keeps_refreshing(tmp_path):
    """A checkpoint saved after batch 2 of refresh epoch 0, resumed: batches 2 and 3 still refresh S."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    every_step = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1,
                                 filename="{step}")
    trainer = L.Trainer(max_epochs=1, callbacks=[ScaleFactorRefresh(every_n_epochs=5), every_step], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(make_module(), train_dataloaders=loader())
    spy = Spy()
    fit(make_module(seed=1), 1, [ScaleFactorRefresh(every_n_epochs=5), spy], tmp_path,
        ckpt_path=str(tmp_path / "ckpt" / "step=2.ckpt"))
    assert sorted(spy.before) == [(0, 2), (0, 3)]  # resumed inside epoch 0
    assert changed(spy) == [(0, 2), (0, 3)]


def test_callback_refuses_a_rule_without_scale_factors(tmp_path):
    from snn_repro.rules import BPTT

    module = type("Module", (), {"rule": BPTT()})()
    with pytest.raises(TypeError, match="scale factors"):
        ScaleFactorRefresh().on_train_batch_start(type("T", (), {"current_epoch": 0})(), module, None, 0)
