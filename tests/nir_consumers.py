"""Run a NIR graph in the simulators that read NIR, the way their documentation loads one, and the networks the
consumer tests and ``scripts/nir_consumers.py`` compare with snn_repro's.

``run(consumer, graph, x_seq)`` -> (output [T, B, K], spikes of every neuron node {key: [T, B, ...]}): the graph
is loaded with the consumer's NIR import at its defaults and stepped through T steps of a batch [B, ...]; spikes
are read with forward hooks on the modules the import made for the neuron nodes (named by the node keys).
nirtorch has no neuron models of its own: its consumer here is ``nir_to_torch`` with nirtorch's default layer map
and a neuron map written from NIR's equations (``_EulerNeuron``), which is what a nirtorch user supplies.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snn_repro.network import build_network

CONSUMERS = ("snntorch", "spikingjelly", "norse", "sinabs", "nirtorch")
VERSIONS = {"snntorch": "1.0", "spikingjelly": "2.0", "norse": "1.1", "sinabs": "3.1", "nirtorch": "2.6"}

# The three networks of the consumer table: small, fixed random weights (seeded), every neuron layer firing.
MLP = {"bias": True, "layers": [{"op": "flatten"}, {"op": "linear", "out": 24}, {"op": "neuron"},
                                {"op": "linear", "out": 5}]}
CONVNET = {"bias": False, "layers": [{"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
                                     {"op": "avgpool", "k": 2}, {"op": "conv", "out": 6, "k": 3, "pad": 1},
                                     {"op": "neuron"}, {"op": "avgpool", "k": 2}, {"op": "flatten"},
                                     {"op": "linear", "out": 5}]}
LIF = {"_target_": "snn_repro.neurons.LIF", "threshold": 0.5, "leak": 0.8}
IF = {"_target_": "snn_repro.neurons.IF", "threshold": 0.7}
MODELS = {"MLP, LIF": (MLP, LIF), "convnet, LIF": (CONVNET, LIF), "MLP, IF": (MLP, IF)}
INPUT_SHAPE = (2, 8, 8)


def model(name: str, seed: int = 0):
    """One of ``MODELS`` with seeded random weights, scaled so that its layers fire."""
    arch, neuron = MODELS[name]
    torch.manual_seed(seed)
    net = build_network(arch, neuron, INPUT_SHAPE)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(2.0)
    return net.eval()


def inputs(time_steps: int, batch: int, seed: int = 1) -> torch.Tensor:
    """Binary input spikes [T, B, 2, 8, 8] (the encoder's output)."""
    return (torch.rand(time_steps, batch, *INPUT_SHAPE, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def reference(net, x_seq):
    """snn_repro's output and the spikes of every neuron layer, keyed by layer name (= the NIR node key)."""
    from snn_repro.neurons.base import Neuron

    seen = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
             for name, layer in zip(net.names, net.layers) if isinstance(layer, Neuron)]
    with torch.no_grad():
        out = net(x_seq)
    for h in hooks:
        h.remove()
    return out, seen


class _EulerNeuron(nn.Module):
    """NIR's LIF / IF by one Euler step of ``dt``, reset after the spike (a nirtorch user's neuron map)."""

    def __init__(self, node, dt: float):
        import nir

        super().__init__()
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.is_lif = isinstance(node, nir.LIF)
        self.gain = t(dt / node.tau * node.r) if self.is_lif else t(dt * node.r)
        self.decay = t(dt / node.tau) if self.is_lif else torch.zeros(())
        self.v_leak = t(node.v_leak) if self.is_lif else torch.zeros(())
        self.v_threshold, self.v_reset = t(node.v_threshold), t(node.v_reset)

    def forward(self, x, state=None):
        v = torch.zeros_like(x) if state is None else state
        v = v + self.decay * (self.v_leak - v) + self.gain * x
        z = (v > self.v_threshold).to(x.dtype)
        return z, torch.where(z.bool(), self.v_reset, v)


def load(consumer: str, graph, batch: int = 1):
    """The module ``consumer``'s NIR import makes of ``graph`` (its defaults; sinabs needs the batch size)."""
    import copy

    import nir

    graph = copy.deepcopy(graph)  # some imports change the nodes they read (sinabs)
    if consumer == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)
    if consumer == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange import import_from_nir

        return import_from_nir(graph)
    if consumer == "norse":
        from norse.torch import from_nir

        return from_nir(graph)
    if consumer == "sinabs":
        from sinabs import from_nir

        return from_nir(graph, batch_size=batch)
    if consumer == "nirtorch":
        import nirtorch

        dt = float(graph.metadata.get("dt", 1e-3))
        return nirtorch.nir_to_torch(graph, {nir.LIF: lambda n: _EulerNeuron(n, dt),
                                             nir.IF: lambda n: _EulerNeuron(n, dt)})
    raise ValueError(f"unknown consumer {consumer!r}; known: {', '.join(CONSUMERS)}")


def run(consumer: str, graph, x_seq: torch.Tensor):
    """``graph`` loaded in ``consumer`` on [T, B, ...] -> (output [T, B, K], {neuron node key: spikes [T, B, ...]})."""
    import nir

    time_steps, batch = x_seq.shape[:2]
    module = load(consumer, graph, batch)
    neuron_keys = [k for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.IF))]
    named = dict(module.named_modules())
    seen: dict[str, list] = {k: [] for k in neuron_keys}
    hooks = []
    for key in neuron_keys:
        sub = named.get(key.replace(".", "_"))
        if sub is None:
            raise ValueError(f"{consumer}: no module for neuron node {key}")
        hooks.append(sub.register_forward_hook(
            lambda m, i, o, key=key: seen[key].append(o[0] if isinstance(o, tuple) else o)))
    outputs, state = [], None
    try:
        with torch.no_grad():
            if consumer == "sinabs":  # its layers take the whole sequence as [B * T, ...] (batch-major)
                y = module(x_seq.transpose(0, 1).flatten(0, 1))
                y = y[0] if isinstance(y, tuple) else y
                back = lambda v: v.unflatten(0, (batch, time_steps)).transpose(0, 1)  # noqa: E731
                return back(y).detach(), {k: back(v[0]).detach() for k, v in seen.items()}
            for x in x_seq.unbind(0):  # the state a stateful import returns goes back in (snntorch keeps its own)
                y = module(x, state) if state is not None else module(x)
                y, state = (y[0], y[1]) if isinstance(y, tuple) else (y, None)
                outputs.append(y)
    finally:
        for h in hooks:
            h.remove()
    spikes = {k: torch.stack(v).detach() for k, v in seen.items()}
    return torch.stack(outputs).detach(), spikes


def agreement(ours, theirs) -> dict:
    """Shares of equal spikes (every value of every neuron layer), of equal predictions (argmax of the output summed
    over time), and of samples whose spike trains are all equal; the largest output difference."""
    (out, spikes), (out_c, spikes_c) = ours, theirs
    equal = torch.cat([(spikes[k] == spikes_c[k]).flatten(2) for k in spikes], dim=2)  # [T, B, all neurons]
    return {
        "spikes": float(equal.float().mean()),
        "samples": float(equal.all(dim=2).all(dim=0).float().mean()),
        "predictions": float((out.sum(0).argmax(-1) == out_c.sum(0).argmax(-1)).float().mean()),
        "max_output_diff": float((out - out_c).abs().max()),
        "spike_count": (float(sum(s.sum() for s in spikes.values())), float(sum(s.sum() for s in spikes_c.values()))),
    }
