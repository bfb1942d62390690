"""ASF-BP's simulation k steps at a time (``time_block``) against the step-by-step one: the same sums, the same
training step. In float64, where an op gives each sample the same value whether its batch holds k steps or one,
every spike and count is equal; the analog sums (input, recorded max pooling, output) are summed in another order."""
import pytest
import torch

from snn_repro.encoders import Frames
from snn_repro.network import build_network
from snn_repro.readout import readout
from snn_repro.rules.asf import ASF

LIF = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 0.95}
IF = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 1.0}
ARCHS = {
    "pool": {"init": "kaiming_normal", "bias": False, "layers": [
        {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
        {"op": "avgpool", "k": 2}, {"op": "neuron", "threshold": 0.75},
        {"op": "conv", "out": 6, "k": 3, "pad": 1}, {"op": "neuron"},
        {"op": "maxpool", "k": 2}, {"op": "flatten"},
        {"op": "linear", "out": 5}, {"op": "neuron"},
        {"op": "linear", "out": 3}]},
    "residual": {"init": "kaiming_normal", "bias": False, "layers": [
        {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
        {"op": "resblock", "out": 4, "neuron": IF},  # identity shortcut
        {"op": "resblock", "out": 6, "stride": 2, "neuron": IF},  # 1x1 conv shortcut
        {"op": "flatten"}, {"op": "linear", "out": 3}]},
}
T = 8


def _setup(arch):
    torch.manual_seed(0)
    net = build_network(ARCHS[arch], LIF, (2, 8, 8)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)  # enough activity that every layer fires
    frames = (torch.rand(3, T, 2, 8, 8) < 0.4).double()
    return net, frames


def _train_step(net, frames, rule):
    rule.attach(net)
    rule.refresh_momentum = 0.5
    net.zero_grad(set_to_none=True)
    scores = rule.train_scores(net, Frames(T), frames, lambda s: readout(s, "membrane", T, net.threshold))
    ((scores - torch.eye(3, dtype=scores.dtype)) ** 2).sum().backward()
    return scores.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}, rule.scale.clone()


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("time_block", [3, 8])  # 3 leaves a shorter last block (8 = 3 + 3 + 2)
@pytest.mark.parametrize("pooled", [False, True])
def test_blocks_of_steps_give_the_sums_of_single_steps(arch, time_block, pooled):
    net, frames = _setup(arch)
    by_step, by_block = ASF(), ASF(time_block=time_block)
    by_step.attach(net)
    by_block.attach(net)
    single = by_step.simulate(net, Frames(T), frames, pooled=pooled)
    blocks = by_block.simulate(net, Frames(T), frames, pooled=pooled)
    assert [c is None for c in blocks.counts] == [c is None for c in single.counts]
    for n, (b, s) in enumerate(zip(blocks.counts, single.counts)):
        assert s is None or torch.equal(b, s), f"FO of stage {n}"
    assert all(c is None or c.sum() > 0 for c in single.counts)  # the net fires
    assert blocks.maxpool.keys() == single.maxpool.keys() and blocks.pooled.keys() == single.pooled.keys()
    analog = [("input", blocks.input, single.input), ("output", blocks.output, single.output)]
    analog += [(f"sum of op {k}", blocks.maxpool[k], v) for k, v in single.maxpool.items()]
    analog += [(f"sum of op {k}", blocks.pooled[k], v) for k, v in single.pooled.items()]
    for name, b, s in analog:
        torch.testing.assert_close(b, s, rtol=1e-12, atol=1e-12, msg=name)
    out_only = by_block.simulate(net, Frames(T), frames, flows=False)
    assert out_only.input is None and out_only.counts == [None] * len(single.counts)
    assert out_only.maxpool == {} and out_only.pooled == {}
    torch.testing.assert_close(out_only.output, single.output, rtol=1e-12, atol=1e-12)


def test_a_training_step_by_blocks_equals_one_by_steps():
    net, frames = _setup("pool")
    scores, grads, scale = _train_step(net, frames, ASF())
    scores_b, grads_b, scale_b = _train_step(net, frames, ASF(time_block=3))
    torch.testing.assert_close(scores_b, scores, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(scale_b, scale, rtol=1e-12, atol=1e-12)
    assert grads_b.keys() == grads.keys() and all(g.abs().sum() > 0 for g in grads.values())
    for name in grads:
        torch.testing.assert_close(grads_b[name], grads[name], rtol=1e-10, atol=1e-12, msg=name)


def test_spike_counts_of_a_recording_network_are_the_same():
    net, frames = _setup("pool")
    counted = []
    for rule in (ASF(), ASF(time_block=3)):
        rule.attach(net)
        net.record = True
        net.reset_counts()
        rule.simulate(net, Frames(T), frames)
        counted.append(({k: float(v) for k, v in net._spike_sums.items()}, dict(net.neuron_sizes)))
        net.record = False
    assert counted[0] == counted[1] and sum(counted[0][0].values()) > 0


def test_time_block_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="time_block"):
        ASF(time_block=0)
