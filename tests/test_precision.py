"""Mixed precision: neuron states, ASF-BP's sums and counts stay float32, so spikes and counts equal float32's on
the same inputs; precisions that would put the states in another dtype are refused by the config check."""
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from snn_repro.encoders import Direct
from snn_repro.network import build_network
from snn_repro.rules.asf import ASF
from snn_repro.schema import ConfigError, validate
from snn_repro.results import ROOT

NEURONS = sorted(p.stem for p in (ROOT / "conf" / "neuron").glob("*.yaml"))
SHAPE = (4, 3, 3)


def make_neuron(name):
    node = OmegaConf.load(ROOT / "conf" / "neuron" / f"{name}.yaml")
    if "size" in node:
        node.size = None
    neuron = instantiate(node)
    if hasattr(neuron, "build"):
        neuron.build(SHAPE)
    return neuron


@pytest.mark.parametrize("name", NEURONS)
def test_neuron_under_bf16_autocast_equals_float32_on_the_same_input(name):
    torch.manual_seed(0)
    neuron = make_neuron(name)
    # the input as an autocast conv would hand it over: bfloat16; float32 gets exactly the same values
    x16 = (torch.rand(60, 2, *SHAPE) * 0.9).to(torch.bfloat16)
    x32 = x16.float().requires_grad_()
    x16 = x16.requires_grad_()
    out32, state32 = neuron.forward_state(x32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16, state16 = neuron.forward_state(x16)
    assert torch.equal(out16.float(), out32), f"{name}: spikes differ under autocast"
    for s in (state16 if isinstance(state16, (tuple, list)) else [state16]):
        if torch.is_tensor(s) and s.is_floating_point():
            assert s.dtype == torch.float32, f"{name}: state carried in {s.dtype}"
    # the backward (a recomputing one included) runs on the same float32 values as the forward
    weight = torch.linspace(-1, 1, out32.numel()).view_as(out32)
    (g32,) = torch.autograd.grad((out32 * weight).sum(), x32, allow_unused=True)
    (g16,) = torch.autograd.grad((out16.float() * weight).sum(), x16, allow_unused=True)
    if g32 is not None:
        torch.testing.assert_close(g16.float(), g32, rtol=1e-2, atol=1e-2)
        assert torch.equal(g16.float(), g32.to(torch.bfloat16).float())


def test_asf_counts_past_256_are_exact_under_bf16_autocast():
    """T = 500 with an input that fires every step: counts reach 500 (bfloat16 sums would stop at 256). Weights
    and inputs are exact in bfloat16, so the synaptic currents are the same under autocast and in float32."""
    arch = {"init": "default", "bias": False, "layers": [
        {"op": "linear", "out": 3}, {"op": "neuron"}, {"op": "linear", "out": 2}]}
    net = build_network(arch, {"_target_": "snn_repro.neurons.IF", "threshold": 1.0, "strict": False}, (4,))
    with torch.no_grad():
        net.layers[0].module.weight.copy_(torch.tensor([[1.0, 0.5, 0, 0], [0.25, 0.25, 0, 0], [0, 0, 0.5, 0.125]]))
        net.layers[2].module.weight.copy_(torch.tensor([[0.5, -0.25, 1.0], [0.125, 0.5, -0.5]]))
    encoder = Direct(T=500)
    x = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.5, 1.0, 0.25, 1.0]])
    rule = ASF()
    rule.attach(net)
    sums32 = rule.simulate(net, encoder, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sums16 = rule.simulate(net, encoder, x)
    assert sums32.counts[0].max() == 500
    pairs = [("input", sums32.input, sums16.input), ("output", sums32.output, sums16.output)]
    pairs += [(f"FO^{n}", c32, c16) for n, (c32, c16) in enumerate(zip(sums32.counts, sums16.counts))]
    for key, value, value16 in pairs:
        assert value16.dtype == torch.float32, key
        assert torch.equal(value16, value), key
    # scale factors from a refresh batch equal float32's too (the equivalent pass runs in float32)
    rule.refresh_momentum = 1.0
    read = lambda seq: seq.sum(0)  # noqa: E731
    rule.train_scores(net, encoder, x, read)
    scale32 = rule.scale.clone()
    rule.scale.fill_(1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rule.train_scores(net, encoder, x, read)
    assert torch.equal(rule.scale, scale32)


@pytest.mark.parametrize("precision", ["bf16-true", "16-true", "64-true", "transformer-engine"])
def test_precisions_that_change_neuron_states_are_refused(cfg_factory, precision):
    cfg = cfg_factory(f"trainer.precision={precision}")
    with pytest.raises(ConfigError, match=r"trainer\.precision: .* is not supported"):
        validate(cfg)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32-true"])
def test_mixed_precisions_are_accepted(cfg_factory, precision):
    validate(cfg_factory(f"trainer.precision={precision}"))
