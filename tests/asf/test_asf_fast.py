"""ASF-BP's speed path (``snn_repro.rules.asf_fast.simulate_fast``, ``learning_rule.fast: true``) against eq. 7 as
written (``fast: false``): the same sums, counts and training steps, bit for bit, on the tables' ASF networks and on
small nets with APBS weights, pooled stages and residual blocks; and its shortcuts one by one (parametrised weights
computed once per simulation, pooled stages that sum their pooled spikes instead of the spike count)."""
import contextlib

import pytest
import torch

import snn_repro.rules.asf_fast as asf_fast
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
TABLE_EXPERIMENTS = ["asf/mnist_if", "asf/cifar10_if", "asf/cifar10dvs_if"]


def _setup(arch, seed=0):
    return firing_network(arch, LIF, T, seed)


def _step(net, frames, rule, refresh=None, encoder=None, read=None):
    if not rule.stages:
        rule.attach(net)
    rule.refresh_momentum = refresh
    net.zero_grad(set_to_none=True)
    encoder = encoder or Frames(T)
    read = read or (lambda s: readout(s, "membrane", T, net.threshold))
    torch.manual_seed(1)  # the encoder's draws, the same for both paths
    scores = rule.train_scores(net, encoder, frames, read)
    ((scores - torch.eye(*scores.shape)) ** 2).sum().backward()
    return scores.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}, rule.scale.clone()


def _assert_same_step(a, b):
    assert torch.equal(a[0], b[0])
    assert a[1].keys() == b[1].keys() and all(torch.equal(a[1][n], b[1][n]) for n in b[1])
    assert torch.equal(a[2], b[2])


def _assert_same_flows(fast, plain):
    for field in ("input", "output"):
        assert torch.equal(getattr(fast, field), getattr(plain, field)), field
    assert fast.maxpool.keys() == plain.maxpool.keys()
    assert all(torch.equal(fast.maxpool[k], plain.maxpool[k]) for k in plain.maxpool)
    assert fast.pooled == plain.pooled == {}
    assert len(fast.counts) == len(plain.counts)
    for n, (a, b) in enumerate(zip(fast.counts, plain.counts)):
        assert torch.equal(a, b), f"FO of stage {n}"


def _simulate_both(rule, net, encoder, x):
    """(fast flows, plain flows, fast spike counts, plain spike counts) of one simulation each."""
    out = []
    for fast in (True, False):
        rule.fast = fast
        net.reset_counts()
        net.record = True
        torch.manual_seed(1)
        out.append((rule.simulate(net, encoder, x), net.spike_counts))
        net.record = False
    rule.fast = True
    return out[0][0], out[1][0], out[0][1], out[1][1]


@pytest.fixture(scope="module")
def table_modules():
    """The tables' ASF-BP networks as their experiments build them, small (tests/networks/guard.py), each with a batch
    on which every neuron layer fires."""
    from tests.networks.guard import _exercising_batch, build

    built = {}
    for experiment in TABLE_EXPERIMENTS:
        cfg, module = build([f"+experiment={experiment}"])
        x, _ = _exercising_batch(cfg, module)
        built[experiment] = (module, module.as_float(x))
    return built


@pytest.mark.parametrize("experiment", TABLE_EXPERIMENTS)
def test_fast_equals_eq_7_as_written_on_the_table_networks(experiment, table_modules):
    module, x = table_modules[experiment]
    rule, net = module.rule, module.net
    assert isinstance(rule, ASF) and rule.fast and rule.maxpool_value == "counts"
    fast, plain, fast_spikes, plain_spikes = _simulate_both(rule, net, module.encoder, x)
    _assert_same_flows(fast, plain)
    assert fast_spikes == plain_spikes and all(v > 0 for v in plain_spikes.values())
    # training steps: a refresh (every count summed) and a frozen one (pooled stages on the fast path)
    for refresh in (0.6, None):
        steps = []
        for fast_path in (True, False):
            rule.scale.fill_(1.0)
            rule.fast = fast_path
            steps.append(_step(net, x, rule, refresh, module.encoder, module.read))
        rule.fast = True
        _assert_same_step(*steps)
        assert all(g.abs().sum() > 0 for g in steps[0][1].values())


@pytest.mark.parametrize("arch", ["pool", "apbs", "residual"])
def test_fast_equals_eq_7_as_written_on_small_nets(arch):
    """In-place IF/LIF steps, cached parametrisations, pooled stages and the shortcut of residual blocks: the same
    sums and the same training steps as each neuron's own step, every count FO exactly."""
    from tests.asf.test_asf_residual import ARCH as RES_ARCH

    net, frames = _setup({"pool": POOL_ARCH, "apbs": APBS_ARCH, "residual": RES_ARCH}[arch])
    rule = ASF()
    rule.attach(net)
    fast, plain, fast_spikes, plain_spikes = _simulate_both(rule, net, Frames(T), frames)
    _assert_same_flows(fast, plain)
    assert fast_spikes == plain_spikes
    assert all(c.sum() > 0 for c in plain.counts)  # the net fires
    for refresh in (0.6, None):
        steps = []
        for fast_path in (True, False):
            rule.scale.fill_(1.0)
            rule.fast = fast_path
            steps.append(_step(net, frames, rule, refresh))
        _assert_same_step(*steps)
    eval_scores = [ASF(fast=f).eval_scores(net, Frames(T), frames, lambda s: s.sum(0)) for f in (True, False)]
    assert torch.equal(*eval_scores)


def test_time_block_is_a_setting_of_the_fast_path():
    with pytest.raises(ValueError, match="learning_rule.fast"):
        ASF(fast=False, time_block=4)


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
    monkeypatch.setattr(asf_fast.parametrize, "cached", contextlib.nullcontext)
    calls.clear()
    ASF().simulate(net, Frames(T), frames)
    assert len(calls) == 2 * T
    plain = _step(net, frames, ASF(), refresh=0.6)
    _assert_same_step(cached, plain)


def test_pooled_stages():
    net, _ = _setup(POOL_ARCH)
    rule = ASF()
    rule.attach(net)
    # stage 0 feeds avgpool -> neuron, stage 2 feeds avgpool -> conv; stage 1 feeds a conv, stage 3 max pooling
    assert asf_fast.pooled_stages(rule.stages) == [0, 2]
    net3, _ = _setup({**POOL_ARCH, "layers": [
        {**POOL_ARCH["layers"][0], "pad": 1}, {"op": "neuron"}, {"op": "avgpool", "k": 3}, {"op": "neuron"},
        {"op": "flatten"}, {"op": "linear", "out": 3}]})
    rule3 = ASF()
    rule3.attach(net3)
    assert asf_fast.pooled_stages(rule3.stages) == []  # a divisor of 9 rounds: pooling the sum is not the sum


@pytest.mark.parametrize("maxpool_value", ["accumulated", "counts"])
def test_pooled_simulation_gives_the_same_step(maxpool_value, monkeypatch):
    """Outside scale-factor refreshes a step sums pooled spikes instead of counts: the same scores and gradients,
    bit for bit, as one that sums every count."""
    net, frames = _setup(POOL_ARCH)
    rule = ASF(maxpool_value=maxpool_value)
    rule.attach(net)
    pooled = rule.simulate(net, Frames(T), frames, pooled=True)
    assert pooled.counts[0] is None and pooled.counts[2] is None and pooled.counts[1] is not None
    full = rule.simulate(net, Frames(T), frames)
    assert torch.equal(pooled.pooled[2], net.layers[2].module(full.counts[0]))
    assert torch.equal(pooled.pooled[6], net.layers[6].module(full.counts[2]))

    rule.scale.copy_(torch.tensor([0.7, 0.9, 0.5, 0.8, 0.6]))
    fast = _step(net, frames, rule)  # refresh_momentum None: pooled
    monkeypatch.setattr(asf_fast, "pooled_stages", lambda stages: [])
    slow = _step(net, frames, rule)
    _assert_same_step(fast, slow)
    assert all(g.abs().sum() > 0 for g in fast[1].values())
    assert fast[2].tolist() == pytest.approx([0.7, 0.9, 0.5, 0.8, 0.6])
