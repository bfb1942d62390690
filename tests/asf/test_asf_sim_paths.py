"""ASF-BP simulation shortcuts give the same numbers as the plain path: parametrised weights computed once per
simulation (``parametrize.cached``), and pooled stages that sum their pooled spikes instead of the spike count."""
import contextlib

import pytest
import torch

import snn_repro.rules.asf as asf_module
from snn_repro.encoders import Frames
from snn_repro.ops.apbs import APBS
from snn_repro.readout import readout
from snn_repro.rules.asf import ASF
from tests.asf.conftest import firing_network

LIF = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 0.95}
APBS_ARCH = {"init": "default", "bias": False, "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1, "apbs": {"f": "abs", "grad": "eq11"}}, {"op": "neuron"},
    {"op": "avgpool", "k": 2}, {"op": "neuron", "threshold": 0.75},
    {"op": "flatten"}, {"op": "linear", "out": 5, "apbs": True}, {"op": "neuron"},
    {"op": "linear", "out": 3}]}
POOL_ARCH = {"init": "kaiming_normal", "bias": False, "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
    {"op": "avgpool", "k": 2}, {"op": "neuron", "threshold": 0.75},
    {"op": "conv", "out": 6, "k": 3, "pad": 1}, {"op": "neuron"},
    {"op": "avgpool", "k": 2}, {"op": "conv", "out": 6, "k": 1}, {"op": "neuron"},
    {"op": "maxpool", "k": 2}, {"op": "flatten"},
    {"op": "linear", "out": 5}, {"op": "neuron"},
    {"op": "linear", "out": 3}]}
T = 8


def _setup(arch, seed=0):
    return firing_network(arch, LIF, T, seed)


def _step(net, frames, rule, refresh=None):
    if not rule.stages:
        rule.attach(net)
    rule.refresh_momentum = refresh
    net.zero_grad(set_to_none=True)
    scores = rule.train_scores(net, Frames(T), frames, lambda s: readout(s, "membrane", T, net.threshold))
    ((scores - torch.eye(3)) ** 2).sum().backward()
    return scores.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}, rule.scale.clone()


def test_parametrised_weights_are_computed_once_per_simulation(monkeypatch):
    net, frames = _setup(APBS_ARCH)
    calls = []
    for m in net.modules():
        if isinstance(m, APBS):
            m.register_forward_hook(lambda *a: calls.append(1))
    rule = ASF()
    rule.attach(net)
    rule.simulate(net, Frames(T), frames)
    assert len(calls) == 2  # two parametrised weights, once each, not once per time step

    cached = _step(net, frames, ASF(), refresh=0.6)
    monkeypatch.setattr(asf_module.parametrize, "cached", contextlib.nullcontext)
    calls.clear()
    ASF().simulate(net, Frames(T), frames)
    assert len(calls) == 2 * T
    plain = _step(net, frames, ASF(), refresh=0.6)
    assert torch.equal(cached[0], plain[0])
    assert cached[1].keys() == plain[1].keys()
    assert all(torch.equal(cached[1][n], plain[1][n]) for n in plain[1])
    assert torch.equal(cached[2], plain[2])


def test_pooled_stages():
    net, _ = _setup(POOL_ARCH)
    rule = ASF()
    rule.attach(net)
    # stage 0 feeds avgpool -> neuron, stage 2 feeds avgpool -> conv; stage 1 feeds a conv, stage 3 max pooling
    assert rule.pooled_stages(net) == [0, 2]
    net3, _ = _setup({**POOL_ARCH, "layers": [
        {**POOL_ARCH["layers"][0], "pad": 1}, {"op": "neuron"}, {"op": "avgpool", "k": 3}, {"op": "neuron"},
        {"op": "flatten"}, {"op": "linear", "out": 3}]})
    rule3 = ASF()
    rule3.attach(net3)
    assert rule3.pooled_stages(net3) == []  # a divisor of 9 rounds: pooling the sum is not the sum of pooled steps


@pytest.mark.parametrize("maxpool_value", ["accumulated", "counts"])
def test_pooled_simulation_gives_the_same_step(maxpool_value, monkeypatch):
    """Outside scale-factor refreshes a step sums pooled spikes instead of counts: the same scores and gradients,
    bit for bit, as one that sums every count."""
    net, frames = _setup(POOL_ARCH)
    rule = ASF(maxpool_value=maxpool_value)
    rule.attach(net)
    pooled = rule.simulate(net, Frames(T), frames, pooled=True)
    assert ("FO", 0) not in pooled and ("FO", 2) not in pooled and ("FO", 1) in pooled
    full = rule.simulate(net, Frames(T), frames)
    assert torch.equal(pooled["acc", 2], net.layers[2].module(full["FO", 0]))
    assert torch.equal(pooled["acc", 6], net.layers[6].module(full["FO", 2]))

    rule.scale.copy_(torch.tensor([0.7, 0.9, 0.5, 0.8, 0.6]))
    fast = _step(net, frames, rule)  # refresh_momentum None: pooled
    monkeypatch.setattr(ASF, "pooled_stages", lambda self, net: [])
    slow = _step(net, frames, rule)
    assert torch.equal(fast[0], slow[0])
    assert all(torch.equal(fast[1][n], slow[1][n]) for n in slow[1])
    assert all(g.abs().sum() > 0 for g in fast[1].values())
    assert torch.equal(fast[2], slow[2]) and fast[2].tolist() == pytest.approx([0.7, 0.9, 0.5, 0.8, 0.6])


@pytest.mark.parametrize("arch", ["pool", "apbs", "residual"])
def test_the_simulation_speed_path_gives_the_sums_of_eq_7_as_written(arch):
    """``simulate`` (in-place IF/LIF steps, cached parametrisations) against ``simulate_reference``, eq. 7 written
    out with each neuron's own step: the same keys and the same values, every count FO exactly."""
    from tests.asf.test_asf_residual import ARCH as RES_ARCH

    net, frames = _setup({"pool": POOL_ARCH, "apbs": APBS_ARCH, "residual": RES_ARCH}[arch])
    rule = ASF(maxpool_value="counts")
    rule.attach(net)
    fast = rule.simulate(net, Frames(T), frames)
    plain = rule.simulate_reference(net, Frames(T), frames)
    assert set(fast) == set(plain)
    for key in plain:
        assert torch.equal(fast[key], plain[key]), key
    assert any(plain["FO", k].sum() > 0 for k in range(len(rule.stages)))  # the net fires
