"""ASF-BP against the authors' code (github.com/neural-lab/ASF-BP): lenet5.py (MNIST, IF, Vth 1), vgg7.py
(CIFAR10, IF, Vth 2) and dvs_cifar10_ASF.py (CIFAR10-DVS 42x42 frames, IF, Vth 1, each sequence injected 3 times,
output divided by the number of frames). Their train() runs on batches with the same weights (LeNet, VGG7: three
batches, the scale factors refreshed before the first two batches' backward and frozen in the third; DVS: one batch,
refreshed): the output, the summed-MSE loss, the spike count of every layer, the scale factors after each batch and
every weight's gradient. Inputs are the per-step inputs their first conv received (the spikes their Poisson coding
drew; the DVS frames), fed to ours through a stand-in encoder. Our side: experiments asf/mnist_if, asf/cifar10_if and
asf/cifar10dvs_if (repeat 3, divide_by frames), maxpool_value counts (the code's equivalent network feeds max pooling
of the counts to fc0), ScaleFactorRefresh's momentum 0.6; both simulations, the fast path and eq. 7 as written
(learning_rule.fast).

The code accumulates FI = sum_t W o_t during the simulation; ours recomputes FI = W (sum_t o_t) in the equivalent
pass (equal up to float rounding). FI enters the gradient's mask FI > 0 and the scale factors' mask FI >= FO."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from snn_repro.encoders import Encoder
from snn_repro.readout import loss_fn, readout
from tests.golden import golden_io as gio
from tests.golden.conftest import built_in, check, check_exact, check_grad, experiment, t

EXPERIMENTS = {"lenet5": "asf/mnist_if", "vgg7": "asf/cifar10_if",
               "dvs_cifar10_ASF": "asf/cifar10dvs_if"}


class StoredSteps(Encoder):
    """The per-step inputs the reference code fed its first layer."""

    def __init__(self, steps: torch.Tensor, T: int):
        super().__init__(T, repeat=steps.shape[0] // T)
        self.seq = steps

    def steps(self, x):
        yield from self.seq.unbind(0)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("script", list(EXPERIMENTS))
def test_training_steps(script, fast, dt):
    case = gio.load("asf", script)
    cfg = experiment(EXPERIMENTS[script])
    with built_in(dt):
        net = build(cfg)
        rule = instantiate(cfg.learning_rule, fast=fast)
        rule.attach(net)
    params = [p for _, p in net.named_parameters()]
    theirs_names = list(case.meta["weights"])
    assert len(params) == len(theirs_names)  # their cnn*/fc* in layer order = our convs and linears in order
    by_name = dict(zip(theirs_names, params))
    for name, p in by_name.items():
        with torch.no_grad():
            p.copy_(t(case.weight(name), dt))
    neuron_names = [n for n, _ in net.neuron_layers()]
    assert len(neuron_names) == len(case.meta["layers"])
    momentum = cfg.callbacks.scale_factor.momentum
    labels = torch.from_numpy(case["target"]).long()
    for k, sign in enumerate(case.meta["signs"]):
        pre = f"{dt}/batch{k}"
        encoder = StoredSteps(t(case[f"{pre}/step_inputs"], dt), case.meta["T"])
        rule.refresh_momentum = momentum if sign else None
        net.zero_grad(set_to_none=True)
        net.reset_counts()
        net.record = True
        scores = rule.train_scores(net, encoder, t(case["images"], dt),
                                   lambda out: readout(out, cfg.readout, encoder.time_steps, net.threshold))
        loss = loss_fn(scores, labels, **cfg.loss)
        loss.backward()
        counts = net.spike_counts
        for ours, theirs in zip(neuron_names, case.meta["layers"]):
            check_exact(f"batch {k}: spikes of {theirs}", np.array(counts[ours]), case[f"{pre}/spikes/{theirs}"].sum())
        check(f"batch {k}: output", scores, case[f"{pre}/output"], dt)
        check(f"batch {k}: loss", loss, case[f"{pre}/loss"], dt)
        check(f"batch {k}: scale factors", rule.scale, case[f"{pre}/scale"], dt)
        for name, p in by_name.items():
            _check_batch_grad(case, pre, dt, name, p.grad)


def test_dvs_frames_are_3x3_sums_of_the_event_counts():
    """The DVS script's input: 9 * AvgPool2d(3) of each 128x128 count frame = 3x3 sums, the last 2 rows and columns
    dropped (what dataset cifar10dvs's spatial sum_pool to 42 does with the events)."""
    case = gio.load("asf", "dvs_cifar10_ASF")
    raw = case["images"]  # [B, 2, 128, 128, T]
    sums = raw[:, :, :126, :126].reshape(*raw.shape[:2], 42, 3, 42, 3, raw.shape[-1]).sum((3, 5))
    frames = np.moveaxis(sums, -1, 0)  # [T, B, 2, 42, 42]
    for dt in ("f64", "f32"):
        steps = case[f"{dt}/batch0/step_inputs"]
        assert np.array_equal(steps, np.concatenate([frames] * (steps.shape[0] // frames.shape[0])))


def _check_batch_grad(case, pre: str, dt: str, name: str, g: torch.Tensor) -> None:
    sub = gio.Case.__new__(gio.Case)  # the batch's gradients under the keys compare_grad reads
    sub.arrays = {k.replace(f"{pre}/grad/", f"{dt}/grad/"): v for k, v in case.arrays.items() if k.startswith(pre)}
    sub.meta, sub.path = case.meta, case.path
    check_grad(sub, dt, name, g)


def build(cfg):
    from snn_repro.network import build_network

    return build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
