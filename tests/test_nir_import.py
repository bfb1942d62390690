"""A NIR graph builds an snn_repro network: ours round-trips to the same spikes, a graph spikingjelly exported runs
as spikingjelly's model, what snn_repro cannot express is one line, and the result evaluates and trains here."""
import nir
import numpy as np
import pytest
import torch

from snn_repro.export import to_nir
from snn_repro.nir_import import main, write_run
from snn_repro.nir_network import NIRImportError, arch_of, network_from_nir
from tests import nir_consumers as nc
from tests.nir_oracle import simulate_nir
from tests.test_export import NEURONS, trained_looking

X = nc.inputs(time_steps=6, batch=4)


@pytest.mark.parametrize("model", list(nc.MODELS))
def test_ours_to_nir_to_ours_gives_identical_outputs(model):
    net = nc.model(model)
    back = network_from_nir(to_nir(net, nc.INPUT_SHAPE), {"_target_": "snn_repro.neurons.LIF"}, nc.INPUT_SHAPE)
    out, spikes = nc.reference(net, X)
    out_back, spikes_back = nc.reference(back.eval(), X)
    assert back.names == net.names  # the same layers, in order, named by the node keys
    assert spikes.keys() == spikes_back.keys()
    for key in spikes:
        assert spikes[key].sum() > 0 and torch.equal(spikes_back[key], spikes[key]), key
    assert torch.equal(out_back, out)


@pytest.mark.parametrize("kind", ["lif", "if", "plif", "bpsa"])
def test_a_folded_bn_vote_and_plif_network_imports_with_the_same_spikes(kind):
    # batch norm folded into the conv, the vote's group mean as a Linear, PLIF's decayed input as LIF's gain
    net = trained_looking(NEURONS[kind])
    x = (torch.rand(6, 3, 2, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    graph = to_nir(net, (2, 8, 8))
    back = network_from_nir(graph, {"_target_": "snn_repro.neurons.LIF"}).eval()
    out, spikes = nc.reference(back, x)
    ref_out, ref_spikes = simulate_nir(graph, x)  # the graph by the spec's equations
    assert spikes.keys() == ref_spikes.keys()
    for key in spikes:
        assert spikes[key].sum() > 0 and torch.equal(spikes[key], ref_spikes[key]), key
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)


def test_neuron_parameters_map_back_to_leak_and_threshold():
    # a hand-made LIF: dt 1e-3, tau 4e-3 -> leak 0.75; r 2 -> gain dt r / tau = 0.5 -> threshold 0.3 / 0.5 = 0.6
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}),
        nir.Affine(np.eye(3, dtype=np.float32), np.zeros(3, np.float32)),
        nir.LIF(tau=np.full(3, 4e-3), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.full(3, 0.3),
                v_reset=np.zeros(3)),
        nir.Output(output_type={"output": np.array([3])}))
    _, layers, _ = arch_of(graph, dt=1e-3)
    assert layers[1]["op"] == "neuron" and layers[1]["leak"] == pytest.approx(0.75)
    assert layers[1]["threshold"] == pytest.approx(0.6)
    # the built neuron: inputs 0.4 each step -> u 0.4, 0.7 (> 0.6: spike, reset), 0.4, 0.7 (spike)
    net = network_from_nir(graph, dt=1e-3).eval()
    with torch.no_grad():
        out = net(torch.full((4, 1, 3), 0.4))
    assert out[:, 0, 0].tolist() == [0, 1, 0, 1]


def test_a_graph_exported_by_spikingjelly_runs_as_spikingjellys_model():
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    sj = torch.nn.Sequential(layer.Conv2d(2, 4, 3, padding=1), neuron.LIFNode(tau=2.5, decay_input=False,
                                                                             v_threshold=0.5),
                             layer.AvgPool2d(2), layer.Flatten(), layer.Linear(64, 5), neuron.IFNode(v_threshold=0.6))
    with torch.no_grad():
        sj[0].weight.mul_(3.0)
        sj[4].weight.mul_(3.0)
    graph = export_to_nir(sj, torch.zeros(1, 2, 8, 8))  # its dt 1e-4, not in the graph's metadata
    with pytest.raises(NIRImportError, match="metadata has no dt; give the time step it was exported with as arch.dt"):
        network_from_nir(graph)
    ours = network_from_nir(graph, {"_target_": "snn_repro.neurons.LIF"}, (2, 8, 8), dt=1e-4).eval()
    assert [type(m).__name__ for m in ours.layers] == ["TimeFolded", "LIF", "TimeFolded", "TimeFolded",
                                                       "TimeFolded", "LIF"]
    assert ours.layers[1].leak == pytest.approx(0.6) and ours.layers[5].leak == 1.0
    functional.reset_net(sj)
    seen = {}
    for i in (1, 5):
        sj[i].register_forward_hook(lambda m, a, o, i=i: seen.setdefault(i, []).append(o))
    with torch.no_grad():
        for x in X.unbind(0):
            sj(x)
        out, spikes = nc.reference(ours, X)
    assert ours.names == ["_0", "_1", "_2", "_3", "_4", "_5"]  # spikingjelly's node keys
    for i, key in ((1, "_1"), (5, "_5")):
        theirs = torch.stack(seen[i])
        assert theirs.sum() > 0 and torch.equal(spikes[key], theirs), key
    assert torch.equal(out, torch.stack(seen[5]))


def _chain(*nodes):
    return nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([3])}), *nodes,
                                  nir.Output(output_type={"output": np.array([3])}))


LIF3 = dict(tau=np.full(3, 4e-3), r=np.full(3, 4.0), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))


@pytest.mark.parametrize("graph, message", [
    (_chain(nir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                        v_threshold=np.ones(3))), r"NIR node \w+: CubaLIF has no snn_repro layer"),
    (_chain(nir.LIF(**{**LIF3, "v_reset": np.full(3, -0.5)})), r"NIR node \w+: v_reset -0.5; snn_repro's neurons reset"),
    (_chain(nir.LIF(**{**LIF3, "tau": np.array([4e-3, 5e-3, 4e-3])})), r"NIR node \w+: tau differs between neurons"),
    (_chain(nir.LIF(**{**LIF3, "v_leak": np.full(3, 0.1)})), r"NIR node \w+: v_leak 0.1"),
    (_chain(nir.LIF(**{**LIF3, "tau": np.full(3, 1e-4)})), r"NIR node \w+: dt / tau = 10 is outside \[0, 1\]"),
])
def test_what_snn_repro_cannot_express_is_one_line(graph, message):
    with pytest.raises(NIRImportError, match=message):
        network_from_nir(graph, dt=1e-3)


def test_a_branching_graph_and_a_wrong_input_shape_are_refused():
    graph = _chain(nir.Affine(np.eye(3, dtype=np.float32), np.zeros(3, np.float32)))
    graph.edges.append(("input", "output"))  # a skip connection
    with pytest.raises(NIRImportError, match="NIR node input: the graph branches or merges there"):
        network_from_nir(graph, dt=1e-3)
    with pytest.raises(NIRImportError, match=r"the graph's input is \[2, 8, 8\] per step; dataset.input_shape gives "
                                             r"\[1, 8, 8\]"):
        network_from_nir(to_nir(nc.model("MLP, LIF"), nc.INPUT_SHAPE), input_shape=(1, 8, 8))


def test_an_imported_run_evaluates_and_fine_tunes_as_ours(tmp_path):
    from snn_repro.eval import load_module

    net = nc.model("MLP, LIF")
    arch = {**nc.MLP, "layers": [*nc.MLP["layers"][:-1], {"op": "linear", "out": 10}]}  # digits: 10 classes
    torch.manual_seed(0)
    from snn_repro.network import build_network

    net = build_network(arch, nc.LIF, (1, 8, 8)).eval()
    path = tmp_path / "model.nir"
    nir.write(str(path), to_nir(net, (1, 8, 8)))
    write_run(path, tmp_path / "run", ["dataset=digits", "neuron=lif", "neuron.surrogate=atan"])
    module = load_module(tmp_path / "run")  # what snn_repro.eval and the tables read
    assert module.config["arch"] == {"nir": str(path), "dt": None}
    x = (torch.rand(8, 5, 1, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    with torch.no_grad():
        assert torch.equal(module.net(x), net(x))
    # fine-tuning: the imported neurons pass gradients (the neuron group's surrogate) to the imported weights
    train = network_from_nir(path, {"_target_": "snn_repro.neurons.LIF", "surrogate": "atan"}, (1, 8, 8))
    assert train.training and train.layers[2].surrogate == "atan"
    train(x).sum().backward()
    assert train.layers[1].module.weight.grad.abs().sum() > 0


def test_the_import_command_says_what_is_wrong_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.nir"), str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.nir'}: no such NIR graph"
    path = tmp_path / "model.nir"
    nir.write(str(path), to_nir(nc.model("MLP, LIF"), nc.INPUT_SHAPE))  # [2, 8, 8] steps; digits has [1, 8, 8]
    assert main([str(path), str(tmp_path / "run"), "dataset=digits"]) == 1
    assert "the graph's input is [2, 8, 8] per step; dataset.input_shape gives [1, 8, 8]" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_a_training_run_of_a_missing_graph_stops_with_one_line(cfg_factory, tmp_path):
    from snn_repro.app import _error_line, _expected_errors
    from snn_repro.train import build_module

    with pytest.raises(NIRImportError) as e:
        build_module(cfg_factory("arch=nir", f"arch.nir={tmp_path / 'gone.nir'}"))
    assert isinstance(e.value, _expected_errors())  # the run reports it as one line, exit status 1
    assert _error_line(e.value) == f"error: NIRImportError: arch.nir: {tmp_path / 'gone.nir'} is not a file"
