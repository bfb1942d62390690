"""BPSA's ANN warm-up (train_cifar10.sh --warm-up 80, snn_repro/callbacks/ann_warmup.py): in a warm-up epoch the
network is its ops without the neurons on one time step of the image, as BP-STA's ConvNet.forward with warm_up set;
after it, the SNN over all T."""
import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from snn_repro.callbacks.ann_warmup import AnnWarmup
from snn_repro.encoders import Direct, Frames
from snn_repro.network import build_network
from snn_repro.readout import readout
from snn_repro.rules import ASF, BPTT
from snn_repro.rules.base import input_sequence
from tests.conftest import compose_config

NEURON = {"_target_": "snn_repro.neurons.bpsa.BPSA", "threshold": 0.5, "decay": 0.9, "residual": 0.2}
# C4 (bias) -> BN -> ReLU -> neuron, avgpool 4, flatten, Linear(16 -> 2 * 3), neuron, vote over 3 per class
ARCH = {"init": "default", "bias": True, "bn_per_step": True,
        "layers": [{"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "bn"}, {"op": "relu"}, {"op": "neuron"},
                   {"op": "avgpool", "k": 4}, {"op": "flatten"}, {"op": "vote_linear", "classes": 2, "per_class": 3},
                   {"op": "neuron"}, {"op": "vote", "per_class": 3}]}


def tiny_net():
    torch.manual_seed(0)
    return build_network(ARCH, NEURON, (2, 8, 8))


def read(seq):
    return readout(seq, "rate", 8, 0.5)


def by_hand(net, x):
    """The ANN of the same weights, written out: conv, batch norm on the batch's statistics, ReLU, 4x4 average pool,
    linear, the mean of each class's 3 outputs."""
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    fc = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    h = F.conv2d(x, conv.weight, conv.bias, padding=1)
    mean, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
    h = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    h = F.avg_pool2d(torch.relu(h), 4).flatten(1)
    return F.linear(h, fc.weight, fc.bias).view(len(x), 2, 3).mean(-1), mean.flatten()


def test_a_warmup_step_is_the_ann_of_the_same_weights_on_one_step_of_the_image():
    net, x = tiny_net(), torch.randn(5, 2, 8, 8)
    net.train()
    net.ann = True
    expected, batch_mean = by_hand(net, x)
    scores = BPTT().train_scores(net, Direct(8), x, read)
    assert torch.allclose(scores, expected, atol=1e-5)
    # one step: the batch norm's running mean moved once (momentum 0.1 from 0), not once per step of T = 8
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.allclose(bn.running_mean, 0.1 * batch_mean, atol=1e-6)
    # the same in evaluation (the base rule's eval_scores), with the running statistics
    net.eval()
    assert BPTT().eval_scores(net, Direct(8), x, read).shape == (5, 2)


def test_after_the_warmup_the_network_spikes_over_all_steps():
    net, x = tiny_net(), torch.randn(5, 2, 8, 8)
    scores = BPTT().train_scores(net, Direct(8), x, read)
    # spiking output: per class the mean of 3 rates over 8 steps, so a multiple of 1 / 24 in [0, 1]
    assert torch.allclose(scores * 24, (scores * 24).round(), atol=1e-4) and 0 <= scores.min() <= scores.max() <= 1
    assert not torch.allclose(scores, by_hand(net, x)[0], atol=1e-3)


def test_event_frames_keep_every_step_in_the_warmup():
    net = tiny_net()
    net.ann = True
    frames = torch.rand(3, 6, 2, 8, 8)  # [B, T, P, H, W]
    assert input_sequence(net, Frames(6), frames).shape == (6, 3, 2, 8, 8)
    assert input_sequence(net, Direct(6), torch.rand(3, 2, 8, 8)).shape == (1, 3, 2, 8, 8)
    net.ann = False
    assert input_sequence(net, Direct(6), torch.rand(3, 2, 8, 8)).shape == (6, 3, 2, 8, 8)


def module(rule=None, readout_mode="rate"):
    return SimpleNamespace(net=SimpleNamespace(ann=False), rule=rule or BPTT(), readout_mode=readout_mode,
                           log=lambda *a, **k: None)


@pytest.mark.parametrize("epoch, ann", [(0, True), (79, True), (80, False), (499, False)])
def test_the_callback_trains_the_ann_in_the_first_epochs_and_evaluates_the_snn(epoch, ann):
    cb, pl = AnnWarmup(epochs=80), module()
    trainer = SimpleNamespace(current_epoch=epoch)
    cb.on_train_batch_start(trainer, pl, None, 0)
    assert pl.net.ann is ann
    cb.on_validation_epoch_start(trainer, pl)
    assert pl.net.ann is False
    cb.on_train_batch_start(trainer, pl, None, 1)
    cb.on_test_epoch_start(trainer, pl)
    assert pl.net.ann is False
    # the authors' evaluation: the ANN during the warm-up
    authors = AnnWarmup(epochs=80, evaluate_ann=True)
    authors.on_validation_epoch_start(trainer, pl)
    assert pl.net.ann is ann


def test_the_warmup_needs_bptt_and_the_rate_readout():
    with pytest.raises(TypeError, match="learning_rule=bptt"):
        AnnWarmup(80).setup(None, module(rule=ASF()), "fit")
    with pytest.raises(ValueError, match="readout=rate"):
        AnnWarmup(80).setup(None, module(readout_mode="membrane"), "fit")
    with pytest.raises(ValueError, match="ann_warmup.epochs"):
        AnnWarmup(-1)


def test_the_script_option_warms_up_80_epochs_and_a_short_run_switches_after_them(tmp_path):
    from snn_repro.train import train

    cfg = compose_config(["+experiment=bpsa/cifar10_script"])
    cb = instantiate(cfg.callbacks.ann_warmup)
    assert isinstance(cb, AnnWarmup) and (cb.epochs, cb.evaluate_ann) == (80, False)
    cfg = compose_config(["+experiment=bpsa/cifar10_script", "++dataset.synthetic=true", "dataset.batch_size=4",
                          "dataset.T=2", "++dataset.options.synthetic_samples={train: 8, test: 4}",
                          "callbacks.ann_warmup.epochs=1", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                          "trainer.accelerator=cpu"], tmp_path)
    train(cfg)
    assert json.loads((Path(tmp_path) / "results.json").read_text())["status"] == "complete"
    with open(Path(tmp_path) / "csv" / "metrics.csv", newline="") as f:
        flags = {int(r["epoch"]): float(r["train/ann_warmup"]) for r in csv.DictReader(f) if r.get("train/ann_warmup")}
    assert flags == {0: 1.0, 1: 0.0}
