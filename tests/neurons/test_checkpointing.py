"""BPTT with activation checkpointing over time blocks: same outputs and gradients as plain BPTT."""
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from snn_repro.network import build_network
from snn_repro.rules import BPTT
from snn_repro.results import ROOT

ARCH = {"init": "kaiming_normal", "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "bn"}, {"op": "neuron"}, {"op": "avgpool", "k": 2},
    {"op": "neuron", "threshold": 0.75, "leak": 1.0}, {"op": "dropout", "p": 0.3}, {"op": "flatten"},
    {"op": "linear", "out": 3}, {"op": "neuron", "detach_reset": True}]}


@pytest.fixture(autouse=True)
def core_ops_only(monkeypatch):
    # ARCH uses core ops only: do not depend on the op modules other families register
    monkeypatch.setattr("snn_repro.network.load_op_modules", lambda: None)


def run(rule, neuron_cfg, fold_time=True, fused=True):
    torch.manual_seed(0)
    net = build_network(ARCH, neuron_cfg, (2, 6, 6), fold_time=fold_time)
    for _, n in net.neuron_layers():
        n.fused = fused
    x = torch.rand(10, 5, 2, 6, 6) * 2  # already a sequence: the encoder is the identity
    weights = torch.randn(10, 5, 3)
    torch.manual_seed(1)  # the dropout mask
    scores = rule.train_scores(net, lambda s: s, x, lambda out: (out * weights).sum(0))
    scores.pow(2).sum().backward()
    return scores.detach(), {k: p.grad.clone() for k, p in net.named_parameters()}, dict(net.named_buffers())


@pytest.mark.parametrize("every", [1, 3, 10, 25])
@pytest.mark.parametrize("fused", [True, False])
def test_checkpointed_gradients_equal_plain_bptt(every, fused):
    neuron = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 0.9}
    # batch norm with per-step statistics (fold_time=false): the same in blocks as over the whole sequence
    ref_scores, ref_grads, ref_bn = run(BPTT(), neuron, fold_time=False, fused=fused)
    scores, grads, bn = run(BPTT(checkpoint_every=every), neuron, fold_time=False, fused=fused)
    for k in ref_bn:  # the recomputation in the backward does not update the running statistics again
        torch.testing.assert_close(bn[k], ref_bn[k], rtol=1e-6, atol=1e-7, msg=k)
    assert torch.equal(scores, ref_scores) and scores.abs().sum() > 0
    assert set(grads) == set(ref_grads)
    for k in grads:
        assert ref_grads[k].abs().sum() > 0, k
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=1e-5, atol=1e-6, msg=k)


def test_checkpointed_rule_from_config_and_spike_counts_once():
    rule = instantiate(OmegaConf.load(ROOT / "conf/learning_rule/bptt_checkpointed.yaml"))
    assert isinstance(rule, BPTT) and rule.checkpoint_every == 20
    torch.manual_seed(0)
    net = build_network(ARCH, {"_target_": "snn_repro.neurons.LIF"}, (2, 6, 6), fold_time=False)
    x = torch.rand(10, 5, 2, 6, 6) * 2
    net.record = True
    torch.manual_seed(1)  # the dropout mask
    net(x).sum()
    plain = dict(net.spike_counts)
    net.reset_counts()
    torch.manual_seed(0)
    net2 = build_network(ARCH, {"_target_": "snn_repro.neurons.LIF"}, (2, 6, 6), fold_time=False)
    net2.record = True
    torch.manual_seed(1)
    net2.forward_checkpointed(x, 4).sum().backward()  # the backward recomputes the blocks
    assert net2.spike_counts.keys() == plain.keys() and sum(plain.values()) > 0
    for k in plain:
        assert net2.spike_counts[k] == pytest.approx(plain[k]), k


def test_checkpointing_refuses_batch_norm_folded_over_time():
    net = build_network(ARCH, {"_target_": "snn_repro.neurons.LIF"}, (2, 6, 6), fold_time=True)
    with pytest.raises(ValueError, match="fold_time=false"):
        net.forward_checkpointed(torch.rand(4, 2, 2, 6, 6), 2)
    net.eval()  # running statistics: no batch statistics, blocks are fine
    assert net.forward_checkpointed(torch.rand(4, 2, 2, 6, 6), 2).shape == (4, 2, 3)


def test_checkpoint_every_must_be_positive():
    with pytest.raises(ValueError):
        BPTT(checkpoint_every=0)


def test_compact_spikes_keeps_gradients_and_saves_spikes_as_bool():
    neuron = {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 0.9}
    ref_scores, ref_grads, _ = run(BPTT(compact_spikes=False), neuron, fold_time=False)
    scores, grads, _ = run(BPTT(compact_spikes=True), neuron, fold_time=False)
    assert torch.equal(scores, ref_scores)
    for k in grads:
        assert torch.equal(grads[k], ref_grads[k]), k

    arch = {"layers": [{"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"}, {"op": "flatten"},
                       {"op": "linear", "out": 3}]}
    net = build_network(arch, neuron, (2, 6, 6))
    x = torch.rand(10, 5, 2, 6, 6) * 2
    saved, packed = [], []
    from snn_repro.neurons.saved_spikes import _pack

    def record(t):
        saved.append(t)
        packed.append(_pack(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(record, lambda t: t):
        net(x)
    # the linear layer keeps its input, the flattened spikes [T*B, 4*6*6]: as bool, with the same values
    kept = [(t, p) for t, p in zip(saved, packed) if isinstance(p, tuple)]
    assert [tuple(t.shape) for t, _ in kept] == [(50, 144)]
    t, (bits, dtype) = kept[0]
    assert bits.dtype == torch.bool and torch.equal(bits.to(dtype), t) and 0 < t.mean() < 1
    assert not any(isinstance(p, tuple) for t, p in zip(saved, packed) if t.shape != (50, 144))


def test_spike_counts_are_saved_as_they_are():
    """MAP-SNN's multi-spike patterns emit counts: the Linear after them keeps its input as float, not as bool
    (bool turned every count above 1 into 1: a wrong weight gradient); its single-spike pattern is binary."""
    from snn_repro.neurons.saved_spikes import _pack

    arch = {"layers": [{"op": "flatten"}, {"op": "linear", "out": 16}, {"op": "neuron"}, {"op": "linear", "out": 3}]}
    x = torch.rand(6, 2, 10) * 12
    for pattern, binary in (("linear", False), ("sfa", False), ("ssp", True)):
        neuron = {"_target_": "snn_repro.neurons.map.MAPNeuron", "pattern": pattern, "size": 16}
        net = build_network(arch, neuron, (10,))
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t, _pack(t))) or t, lambda t: t):
            out = net(x)
        spikes = [(t, p) for t, p in saved if tuple(t.shape) == (12, 16)]  # the second Linear's input
        assert spikes and (max(t.max().item() for t, _ in spikes) > 1) != binary, pattern
        assert all(isinstance(p, tuple) == binary for _, p in spikes), pattern
        assert out.requires_grad
