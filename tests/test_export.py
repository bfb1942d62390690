"""Export: a NIR graph written, read back and simulated fires the same spikes as snn_repro; ONNX runs the same."""
import numpy as np
import pytest
import torch

from snn_repro.export import ExportError, to_nir, to_onnx
from tests import nir_consumers as nc
from tests.nir_oracle import simulate_nir
from snn_repro.network import build_network
from snn_repro.neurons.base import Neuron

CONV_ARCH = {"bias": True, "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "bn"}, {"op": "neuron"}, {"op": "avgpool", "k": 2},
    {"op": "conv", "out": 6, "k": 3, "stride": 2}, {"op": "neuron", "threshold": 0.3}, {"op": "dropout", "p": 0.2},
    {"op": "flatten"}, {"op": "linear", "out": 12}, {"op": "neuron"},
    {"op": "vote_linear", "classes": 3, "per_class": 4}, {"op": "vote", "per_class": 4}]}
NEURONS = {
    "lif": {"_target_": "snn_repro.neurons.LIF", "threshold": 0.5, "leak": 0.8},
    "if": {"_target_": "snn_repro.neurons.IF", "threshold": 0.7},
    "plif": {"_target_": "snn_repro.neurons.plif.PLIF", "threshold": 0.4, "init_tau": 3.0},
    "plif_no_decay_input": {"_target_": "snn_repro.neurons.plif.PLIF", "threshold": 0.6, "decay_input": False},
    "aia_cached": {"_target_": "snn_repro.neurons.aia.CachedAIA", "threshold": 0.5, "leak": 0.6},
    "bpsa": {"_target_": "snn_repro.neurons.bpsa.BPSA", "threshold": 0.5, "decay": 0.9},
}


def trained_looking(neuron):
    torch.manual_seed(0)
    net = build_network(CONV_ARCH, neuron, (2, 8, 8))
    with torch.no_grad():  # batch-norm statistics and a non-trivial beta, as training would leave them
        bn = net.layers[1].module
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.3)
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(2.5)  # every layer fires, PLIF's 1/tau-scaled input included
            if getattr(m, "beta", None) is not None:
                m.beta.uniform_(0.8, 1.5)
    return net.eval()


@pytest.mark.parametrize("kind", list(NEURONS))
def test_nir_round_trip_gives_the_same_spikes(kind, tmp_path):
    import nir

    net = trained_looking(NEURONS[kind])
    x = (torch.rand(6, 3, 2, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    out, spikes = nc.reference(net, x)
    path = tmp_path / "net.nir"
    nir.write(str(path), to_nir(net, (2, 8, 8), dt=1e-3))
    graph = nir.read(str(path))
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"Conv2d", "AvgPool2d", "Flatten", "Affine", "Linear"}
    assert "BatchNorm" not in str(graph.nodes)  # folded into the first conv
    sim_out, sim_spikes = simulate_nir(graph, x)
    assert sim_spikes.keys() == spikes.keys()
    for name in spikes:
        assert spikes[name].sum() > 0, f"{name} silent: the comparison would be vacuous"
        assert torch.equal(sim_spikes[name], spikes[name]), name
    torch.testing.assert_close(sim_out, out, rtol=1e-5, atol=1e-5)


def test_nir_neuron_parameters_for_lif():
    import nir

    net = trained_looking(NEURONS["lif"])
    graph = to_nir(net, (2, 8, 8), dt=1e-3)
    lif = graph.nodes["2_neuron"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (4, 8, 8)
    # Euler step of dt: v += dt/tau (v_leak - v) + dt/tau r I  ==  u = 0.8 u + I
    assert np.allclose(1e-3 / lif.tau, 0.2) and np.allclose(1e-3 / lif.tau * lif.r, 1.0)
    assert np.allclose(lif.v_threshold, 0.5) and np.allclose(lif.v_reset, 0.0)
    assert isinstance(to_nir(trained_looking(NEURONS["if"]), (2, 8, 8)).nodes["2_neuron"], nir.IF)


@pytest.mark.parametrize("arch, neuron, message", [
    ({"layers": [{"op": "flatten"}, {"op": "linear", "out": 5}, {"op": "neuron"}]},
     {"_target_": "snn_repro.neurons.map.MAPNeuron", "pattern": "linear"}, "2_neuron: MAPNeuron has no NIR"),
    ({"layers": [{"op": "conv", "out": 2, "k": 3}, {"op": "neuron"}, {"op": "maxpool", "k": 2}]},
     NEURONS["lif"], "2_maxpool: MaxPool2d has no NIR node"),
    ({"layers": [{"op": "conv", "out": 2, "k": 3}, {"op": "neuron"}, {"op": "bn"}]},
     NEURONS["lif"], "2_bn: batch norm after 1_neuron"),
])
def test_nir_refuses_what_it_cannot_express(arch, neuron, message):
    net = build_network(arch, neuron, (2, 8, 8))
    with pytest.raises(ExportError, match=message):
        to_nir(net, (2, 8, 8))


def test_onnx_runs_the_reference_step_forms(tmp_path):
    import onnx
    from onnx.reference import ReferenceEvaluator

    net = trained_looking(NEURONS["lif"])
    path = to_onnx(net, (2, 8, 8), time_steps=4, path=tmp_path / "net.onnx", batch=5)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)  # standard ops only, no Python op
    assert all(m.__dict__.get("fused") is None for m in net.modules() if isinstance(m, Neuron))  # restored
    x = (torch.rand(4, 5, 2, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    (got,) = ReferenceEvaluator(model).run(None, {"spikes_in": x.numpy()})
    with torch.no_grad():
        expected = net(x)  # the fused forms: the export must equal them
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)
