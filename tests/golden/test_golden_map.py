"""MAP-SNN against the authors' code (github.com/Tab-ct/MAP-SNN, model.py): the MSP neuron with SFA, ConvSyn, and the
two published networks (SHD 700-400-400-20; N-MNIST with one Linear(1024 -> 400) per polarity), one training step's
outputs, spike counts, loss and every gradient. Our side: conf/neuron/map_msp_sfa.yaml (decay_clamp hardtanh, as the
code's relu6(6d)/6), experiments map/shd_msp and map/nmnist_msp (arch bias_init default), ConvSyn non-causal (the
code's centred kernel; the paper's is causal and is the arch default)."""
from __future__ import annotations

import contextlib

import pytest
import torch
from hydra.utils import instantiate

from snn_repro.neurons.backend import reference_steps
from snn_repro.ops.convsyn import ConvSyn
from snn_repro.readout import loss_fn, readout
from tests.golden import golden_io as gio
from tests.golden.conftest import built_in, check, check_exact, check_grad, experiment, t

PATHS = {"fused": contextlib.nullcontext, "steps": reference_steps}  # the neurons' sequence form, or the step loop


@pytest.fixture(params=list(PATHS))
def path(request):
    return request.param


def test_neuron(dt, path):
    case = gio.load("map", "neuron")
    x = t(case["input"], dt).transpose(0, 1).contiguous().requires_grad_()  # theirs [B, T, N], ours [T, B, N]
    n = x.shape[-1]
    with built_in(dt):
        neuron = instantiate(experiment("map/shd_msp").neuron, size=n)
    with torch.no_grad():
        neuron.decay.copy_(t(case.meta["weights"]["h_decay"]["values"], dt))
    with PATHS[path]():
        out = neuron(x)
    loss = (out * t(case["probe"], dt).transpose(0, 1)).sum()
    loss.backward()
    check_exact("spikes", out.transpose(0, 1), case[f"{dt}/output"])
    check("loss", loss, case[f"{dt}/loss"], dt)
    check_grad(case, dt, "input", x.grad.transpose(0, 1))
    check_grad(case, dt, "h_decay", neuron.decay.grad)


def test_convsyn_noncausal_as_the_code(dt):
    case = gio.load("map", "convsyn")
    w = case.meta["weights"]
    x = t(case["input"], dt).transpose(0, 1).contiguous().requires_grad_()
    with built_in(dt):
        syn = ConvSyn(x.shape[-1], 7, causal=False)
    with torch.no_grad():
        syn.a.copy_(t(w["kernel_parameter_a"], dt))
        syn.b.copy_(t(w["kernel_parameter_b"], dt))
        syn.delay.copy_(t(w["kernel_time_shift"], dt))
    out = syn(x)
    loss = (out * t(case["probe"], dt).transpose(0, 1)).sum()
    loss.backward()
    check("output", out.transpose(0, 1), case[f"{dt}/output"], dt)
    check("loss", loss, case[f"{dt}/loss"], dt)
    check_grad(case, dt, "input", x.grad.transpose(0, 1))
    for ours, theirs in (("a", "kernel_parameter_a"), ("b", "kernel_parameter_b"), ("delay", "kernel_time_shift")):
        check_grad(case, dt, theirs, getattr(syn, ours).grad)


# their parameter -> (our parameter, slice of it): the N-MNIST code has two 400-neuron layers, ours one of 800
SHD = {"net1.0": "layers.0.module", "net1.2": "layers.3.module", "net1.4": "layers.6.module",
       "h1": "layers.1", "h2": "layers.4", "h3": "layers.7"}
NMNIST = {"net1_1.0": "layers.0.module.branches.0", "net1_2.0": "layers.0.module.branches.1",
          "net2.0": "layers.3.module", "h1_1": ("layers.1", slice(0, 400)), "h1_2": ("layers.1", slice(400, 800)),
          "h2": "layers.4"}
NETS = {"shd": ("map/shd_msp", SHD), "nmnist": ("map/nmnist_msp", NMNIST)}


def _ours(theirs: str, mapping: dict) -> tuple[str, slice]:
    prefix, attr = theirs.rsplit(".", 1)
    target = mapping[prefix]
    name, part = target if isinstance(target, tuple) else (target, slice(None))
    return f"{name}.{'decay' if attr == 'h_decay' else attr}", part


@pytest.mark.parametrize("net_name", list(NETS))
def test_network(net_name, dt, path):
    from snn_repro.network import build_network

    case = gio.load("map", net_name)
    exp, mapping = NETS[net_name]
    cfg = experiment(exp)
    with built_in(dt):
        net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
    params = dict(net.named_parameters())
    for theirs in case.meta["weights"]:
        name, part = _ours(theirs, mapping)
        with torch.no_grad():
            params[name][part] = t(case.weight(theirs), dt)
    spikes = []
    for _, layer in net.neuron_layers():
        layer.register_forward_hook(lambda m, i, o: spikes.append(o.detach()))
    x = t(case["input"], dt).transpose(0, 1)
    with PATHS[path]():
        out_seq = net(x)
    scores = readout(out_seq, cfg.readout, x.shape[0], net.threshold)
    labels = torch.from_numpy(case["target"]).long()
    loss = loss_fn(scores, labels, **cfg.loss)
    loss.backward()
    # spikes per sample and step of each of their neuron layers (ours: one layer of 800 for their h1_1 and h1_2)
    theirs_layers = [k[len(dt) + 8:] for k in case.keys(f"{dt}/spikes/")]
    ours_counts = {}
    neuron_keys = [f"layers.{name.split('_')[0]}" for name, _ in net.neuron_layers()]  # "1_neuron" -> "layers.1"
    for name, s in zip(neuron_keys, spikes):
        for their_name, target in mapping.items():
            if their_name.startswith("h") and (target if isinstance(target, str) else target[0]) == name:
                part = slice(None) if isinstance(target, str) else target[1]
                ours_counts[their_name] = s[..., part].sum(-1).transpose(0, 1)
    assert sorted(ours_counts) == sorted(theirs_layers)
    for layer, counts in ours_counts.items():
        check_exact(f"spikes of {layer}", counts, case[f"{dt}/spikes/{layer}"])
    check_exact("output spikes", out_seq.transpose(0, 1), case[f"{dt}/output_spikes"])
    check("output", scores, case[f"{dt}/output"], dt)
    check("loss", loss, case[f"{dt}/loss"], dt)
    names = case.grad_names(dt)
    assert len(names) == len(case.meta["weights"])  # every parameter of theirs has a gradient stored
    for theirs in names:
        name, part = _ours(theirs, mapping)
        check_grad(case, dt, theirs, params[name].grad[part])
