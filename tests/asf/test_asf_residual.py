"""ASF-BP through residual blocks: forward values are the simulation's, gradients are eq. 10-11 on the equivalent
network in which the block's second neuron receives conv2(FO_1) + shortcut(FO_in)."""
import pytest
import torch

from snn_repro.encoders import Frames
from snn_repro.network import build_network
from snn_repro.readout import readout
from snn_repro.rules.asf import ASF
from tests.asf.conftest import firing_network

IF_CFG = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 1.0}
ARCH = {"init": "kaiming_normal", "bias": False, "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
    {"op": "resblock", "out": 4, "neuron": IF_CFG},  # identity shortcut
    {"op": "avgpool", "k": 2}, {"op": "neuron", "threshold": 0.75},
    {"op": "resblock", "out": 6, "stride": 2, "neuron": IF_CFG},  # 1x1 conv shortcut
    {"op": "flatten"}, {"op": "linear", "out": 3}]}
T = 10


def setup():
    return firing_network(ARCH, IF_CFG, T)


def read(s):
    return readout(s, "membrane", T, 1.0)


def test_forward_values_equal_the_sequence_forward():
    net, frames = setup()
    rule = ASF()
    rule.attach(net)
    assert len(rule.stages) == 6 and rule.stages[2].shortcut is net.layers[2].shortcut
    assert rule.stages[2].shortcut_from == 0
    assert rule.stages[5].shortcut_from == 3 and rule.stage_names[1] == "2_resblock.neuron1"
    with torch.no_grad():
        reference = read(net(Frames(T)(frames)))
    scores = rule.train_scores(net, Frames(T), frames, read)
    torch.testing.assert_close(scores.detach(), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rule.eval_scores(net, Frames(T), frames, read), reference, rtol=1e-5, atol=1e-6)
    rule.refresh_momentum = 0.6  # a refresh reads every stage's flows, those of the block's neurons too
    torch.testing.assert_close(rule.train_scores(net, Frames(T), frames, read).detach(), reference, rtol=1e-5,
                               atol=1e-6)
    assert (rule.scale != 1).all()


def test_gradients_equal_eq_10_11_with_the_shortcut_path():
    net, frames = setup()
    rule = ASF()
    rule.attach(net)
    rule.scale = torch.tensor([1.0, 0.7, 0.9, 1.1, 0.8, 0.6])
    target = torch.randn(3, 3)
    # per-neuron sums over time of input current (FI) and spikes (FO), from the sequence forward
    b1, b2 = net.layers[2], net.layers[5]
    neurons = [net.layers[1], b1.neuron1, b1.neuron2, net.layers[4], b2.neuron1, b2.neuron2]
    flows = {}
    hooks = [n.register_forward_hook(lambda m, i, o, k=k: flows.__setitem__(k, (i[0].sum(0), o.sum(0))))
             for k, n in enumerate(neurons)]
    with torch.no_grad():
        net(Frames(T)(frames))
    for h in hooks:
        h.remove()
    assert all(fo.sum() > 0 for _, fo in flows.values())

    def gate(z, k):
        fi, fo = flows[k]
        g = z * ((fi > 0).float() * rule.scale[k])
        return g + (fo - g).detach()

    x = frames.sum(1)
    g0 = gate(net.layers[0].module(x), 0)
    g1 = gate(b1.conv1(g0), 1)
    g2 = gate(b1.conv2(g1) + g0, 2)  # identity shortcut
    g3 = gate(net.layers[3].module(g2), 3)
    g4 = gate(b2.conv1(g3), 4)
    g5 = gate(b2.conv2(g4) + b2.shortcut(g3), 5)
    hand = net.layers[7].module(g5.flatten(1)) / T
    (hand - target).pow(2).sum().backward()
    expected = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    (rule.train_scores(net, Frames(T), frames, read) - target).pow(2).sum().backward()
    for k, p in net.named_parameters():
        assert expected[k].abs().sum() > 0, k
        torch.testing.assert_close(p.grad, expected[k], rtol=1e-4, atol=1e-5, msg=k)


def test_refuses_a_block_with_batch_norm():
    arch = {"bias": False, "layers": [{"op": "resblock", "out": 2, "bn": True, "neuron": IF_CFG},
                                      {"op": "flatten"}, {"op": "linear", "out": 2}]}
    net = build_network(arch, IF_CFG, (2, 4, 4))
    with pytest.raises(ValueError, match="layer 0 .*not linear"):
        ASF().attach(net)
