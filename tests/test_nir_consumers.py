"""Our NIR export, loaded by each simulator that reads NIR (installed by `make install`), fires the same spikes and
predicts the same classes as snn_repro; where a consumer cannot run a layer, the export refuses in one line naming
the consumer and the layer."""
import contextlib
import io

import pytest
import torch

from snn_repro.export import ExportError, for_target, to_nir
from tests import nir_consumers as nc
from tests.nir_oracle import simulate_nir

RUNS = ("snntorch", "spikingjelly", "norse", "nirtorch")
# (consumer, model) -> the start of the export's refusal; every other pair must run with the same spikes
REFUSED = {
    ("nirtorch", "MLP, LIF"): "--target nirtorch: 1_linear (Affine): nirtorch 2.6 nir_to_torch drops an Affine's bias",
    ("nirtorch", "MLP, IF"): "--target nirtorch: 1_linear (Affine): nirtorch 2.6 nir_to_torch drops an Affine's bias",
}
X = nc.inputs(time_steps=6, batch=4)


@pytest.fixture(scope="module")
def ours():
    return {name: nc.reference(nc.model(name), X) for name in nc.MODELS}


@pytest.mark.parametrize("model", list(nc.MODELS))
@pytest.mark.parametrize("consumer", RUNS)
def test_consumer_runs_the_export_for_it_as_ours(consumer, model, ours):
    net = nc.model(model)
    if (consumer, model) in REFUSED:
        with pytest.raises(ExportError, match=REFUSED[consumer, model].replace("(", r"\(").replace(")", r"\)")):
            for_target(net, nc.INPUT_SHAPE, consumer)
        return
    graph = for_target(net, nc.INPUT_SHAPE, consumer)
    with contextlib.redirect_stdout(io.StringIO()):  # snntorch prints its weight-scale warnings
        out, spikes = nc.run(consumer, graph, X)  # a batch of 4 through T = 6 steps
    ref_out, ref_spikes = ours[model]
    assert spikes.keys() == ref_spikes.keys() and len(spikes) == (2 if "convnet" in model else 1)
    for key in ref_spikes:
        assert ref_spikes[key].sum() > 0, f"{key} silent: the comparison would be vacuous"
        assert torch.equal(spikes[key], ref_spikes[key]), (consumer, model, key)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.sum(0).argmax(-1), ref_out.sum(0).argmax(-1))


@pytest.mark.parametrize("target", ["snntorch", "spikingjelly", "norse", "nirtorch"])
def test_every_target_form_is_still_the_same_network_by_the_nir_spec(target, ours):
    # the per-consumer forms rescale or re-express nodes (norse: a sum pool and the next conv's weights / 4); read
    # by the spec's equations they fire as ours
    for model in nc.MODELS:
        try:
            graph = for_target(nc.model(model), nc.INPUT_SHAPE, target)
        except ExportError:
            continue
        assert graph.check_types(), (target, model)  # nir's own type check
        out, spikes = simulate_nir(graph, X)
        for key, ref in ours[model][1].items():
            assert torch.equal(spikes[key], ref), (target, model, key)


def test_the_default_dt_forms_differ_where_a_target_is_needed(ours):
    # why the targets exist: snntorch reads the generic graph (dt 1e-3) with its dt 1e-4, norse ignores r
    ref_spikes = ours["MLP, LIF"][1]["2_neuron"]
    generic = to_nir(nc.model("MLP, LIF"), nc.INPUT_SHAPE)
    for consumer in ("snntorch", "norse"):
        with contextlib.redirect_stdout(io.StringIO()):
            spikes = nc.run(consumer, generic, X)[1]["2_neuron"]
        assert spikes.sum() < ref_spikes.sum() / 4, consumer


@pytest.mark.parametrize("target", RUNS)
def test_cached_aias_scale_is_refused_where_the_consumer_has_no_scale_node(target):
    from tests.test_export import NEURONS, trained_looking

    net = trained_looking(NEURONS["aia_cached"])
    with pytest.raises(ExportError, match=rf"--target {target}: 2_neuron.scale \(Scale\): {target} [\d.]+ "):
        for_target(net, (2, 8, 8), target)
    to_nir(net, (2, 8, 8))  # the spec's form has it


@pytest.mark.parametrize("model", list(nc.MODELS))
def test_sinabs_is_refused_at_the_first_neuron(model):
    first = "2_neuron" if "MLP" in model else "1_neuron"
    with pytest.raises(ExportError, match=rf"--target sinabs: {first} \((LIF|IF)\): sinabs 3.1 from_nir fires several"):
        for_target(nc.model(model), nc.INPUT_SHAPE, "sinabs")


def test_sinabs_makes_multi_spike_subtracting_neurons():
    # the reason for the refusal, read from what sinabs' import builds (this fails if a release changes it)
    from sinabs.activation import MembraneSubtract, MultiSpike

    module = nc.load("sinabs", to_nir(nc.model("MLP, LIF"), nc.INPUT_SHAPE))
    neuron = dict(module.named_modules())["2_neuron"]
    assert neuron.spike_fn is MultiSpike and isinstance(neuron.reset_fn, MembraneSubtract)


def test_a_target_fixes_its_consumers_dt():
    net = nc.model("MLP, LIF")
    assert for_target(net, nc.INPUT_SHAPE, "snntorch").metadata["dt"] == 1e-4
    assert for_target(net, nc.INPUT_SHAPE, "norse").metadata["dt"] == 1e-3
    assert for_target(net, nc.INPUT_SHAPE, "generic", dt=2e-3).metadata["dt"] == 2e-3
    with pytest.raises(ExportError, match="--target snntorch: its import assumes dt = 0.0001; --dt 0.001"):
        for_target(net, nc.INPUT_SHAPE, "snntorch", dt=1e-3)
    with pytest.raises(ExportError, match="--target 'lava': expected one of generic, snntorch"):
        for_target(net, nc.INPUT_SHAPE, "lava")
