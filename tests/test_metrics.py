"""NeuroBench-compatible metrics: equal to the neurobench package's own counts on a small spiking network."""
import pytest
import torch
from torch import nn

from snn_repro.metrics import SynOpsCounter, layer_synops, neurobench_summary, static_metrics
from snn_repro.network import build_network
from snn_repro.neurons.base import Neuron

NEURON = {"_target_": "snn_repro.neurons.LIF", "threshold": 0.5, "leak": 0.9}
ARCH = {"layers": [{"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"}, {"op": "avgpool", "k": 2},
                   {"op": "conv", "out": 6, "k": 3, "stride": 2}, {"op": "neuron"}, {"op": "flatten"},
                   {"op": "linear", "out": 10}, {"op": "neuron"}, {"op": "linear", "out": 3}], "bias": True}


def small_net():
    torch.manual_seed(0)
    net = build_network(ARCH, NEURON, (2, 8, 8)).eval()
    with torch.no_grad():  # zero weights: effective ops and connection sparsity must skip them
        net.layers[3].module.weight[:, 0] = 0
        net.layers[6].module.weight[::3] = 0
    return net


class BatchFirst(nn.Module):
    """NeuroBench feeds [B, T, ...] and counts samples on dim 0; the network runs [T, B, ...]."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1))


def neurobench_counts(net, batches):
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    model = TorchModel(BatchFirst(net))
    model.add_activation_module(Neuron)
    model.register_hooks()
    synops, sparsity = SynapticOperations(), []
    for x in batches:
        data = (x.transpose(0, 1), torch.zeros(x.shape[1]))
        preds = model(data[0])
        synops(model, preds, data)
        sparsity.append(ActivationSparsity()(model, preds, data))
        model.reset_hooks()
    model.cleanup_hooks()
    return {**synops.compute(), "sparsity": sparsity, "connection": ConnectionSparsity()(model),
            "footprint": Footprint()(model), "params": ParameterCount()(model)}


def ours(net, batches):
    counter = SynOpsCounter(net).attach()
    net.record = True
    net.reset_counts()
    with torch.no_grad():
        for x in batches:
            net(x)
    counter.detach()
    net.record = False
    return neurobench_summary(net, counter.counts, sum(x.shape[1] for x in batches))


@pytest.mark.parametrize("analog", [False, True], ids=["spike_input", "analog_input"])
def test_synops_and_sparsity_equal_neurobench(analog):
    net = small_net()
    g = torch.Generator().manual_seed(1)
    batches = [torch.rand(5, n, 2, 8, 8, generator=g) for n in (3, 4)]
    if not analog:
        batches = [(x < 0.3).float() for x in batches]
    ref = neurobench_counts(net, batches)
    got = ours(net, batches)
    assert got["synops"]["effective_acs"] == pytest.approx(ref["Effective_ACs"], rel=1e-9)
    assert got["synops"]["effective_macs"] == pytest.approx(ref["Effective_MACs"], rel=1e-9)
    assert got["synops"]["dense"] == pytest.approx(ref["Dense"], rel=1e-9)
    first = got["layers"]["0_conv"]
    assert (first["effective_macs"] > 0) == analog and (first["effective_acs"] > 0) != analog
    # average-pooled spikes are not binary: NeuroBench counts the next conv's ops as MACs, and so do we
    assert got["layers"]["3_conv"]["effective_macs"] > 0 and got["layers"]["6_linear"]["effective_acs"] > 0
    assert got["connection_sparsity"] == pytest.approx(ref["connection"], abs=1e-4) and got["connection_sparsity"] > 0
    assert got["footprint_bytes"] == ref["footprint"] and got["parameter_count"] == ref["params"]
    # neurobench's activation sparsity is per batch: check ours on each batch alone
    for x, sparsity in zip(batches, ref["sparsity"]):
        assert ours(net, [x])["activation_sparsity"] == pytest.approx(sparsity, rel=1e-9)


def test_layer_synops_by_hand():
    lin = nn.Linear(3, 2, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    # row 1: inputs 0,1 active; non-zero weights on them: (0,0) -> 1. Row 2: inputs 1,2: (0,2), (1,2) -> 2
    assert layer_synops(lin, x) == (3.0, 12.0, True)
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 0, 0] = 0.5  # a corner input reaches 4 outputs; analog -> MAC
    effective, dense, spiking = layer_synops(conv, img)
    # dense: each output sums its in-bounds neighbours: 4 corners x 4 + 8 edges x 6 + 4 inner x 9
    assert (effective, dense, spiking) == (4.0, 100.0, False)


def test_static_metrics_per_layer():
    net = small_net()
    s = static_metrics(net)
    assert s["layers"]["3_conv"]["zero_weights"] == 6 * 9 and s["layers"]["3_conv"]["weights"] == 6 * 4 * 9
    assert s["layers"]["6_linear"]["zero_weights"] == 4 * 6  # rows 0, 3, 6, 9 of a 6 -> 10 linear
    assert s["parameter_count"] == sum(p.numel() for p in net.parameters())


def test_measuring_callbacks_leave_the_config_hash_alone(cfg_factory):
    from omegaconf import open_dict

    from snn_repro.confighash import config_hash

    cfg = cfg_factory("+experiment=bpsa/cifar10")
    before = config_hash(cfg)
    with open_dict(cfg):  # a finished table row must not rerun because these were added to the defaults
        del cfg.callbacks["neurobench"], cfg.callbacks["plots"], cfg["optimized_metric"]
    assert config_hash(cfg) == before
    with open_dict(cfg):
        cfg.callbacks.spike_counter = None
    assert config_hash(cfg) != before  # other callbacks still count
