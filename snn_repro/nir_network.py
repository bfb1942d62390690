"""The SpikingNetwork of a NIR graph, so that a network trained elsewhere (snntorch, spikingjelly, norse, or
ours exported) is evaluated and fine-tuned here with the same tables and metrics: ``arch=nir arch.nir=<file.nir>``.

The graph must be a chain from its input to its output (the form ``snn_repro.export`` writes and the other
libraries export for feed-forward networks). Nodes map to arch ops, their weights copied:
    Affine -> linear (bias), Linear -> linear (no bias), Conv2d -> conv (dilation 1, groups 1, numeric padding),
    AvgPool2d -> avgpool (no padding), Flatten of a whole step -> flatten,
    LIF / IF -> neuron: one Euler step of dt (``arch.dt``, else the graph's ``metadata["dt"]``) of
        LIF  v += dt/tau (v_leak - v) + dt/tau r I      is   u_t = leak u_{t-1} + x_t   with
             leak = 1 - dt/tau,  u = v / g,  threshold = v_threshold / g,  g = dt r / tau  (the input gain)
        IF   v += dt r I                                 is   leak = 1,  g = dt r
    with v_leak = v_reset = 0 and every neuron of a layer alike (our neurons have one leak and threshold a layer).
The neurons are ``snn_repro.neurons.LIF`` with the neuron group's surrogate gradient (``neuron=lif`` or ``if``), so
fine-tuning trains them as any of ours; they fire at u > threshold, as NIR's. What has no snn_repro form (another
neuron model, a v_leak or v_reset, per-neuron parameters, a branch, a node type) is one line naming the node.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snn_repro.network import SpikingNetwork, build_network


class NIRImportError(ValueError):
    pass


def _uniform(node_key: str, name: str, value) -> float:
    values = np.unique(np.asarray(value, dtype=np.float64))
    if values.size != 1:
        raise NIRImportError(f"NIR node {node_key}: {name} differs between neurons ({values.size} values); "
                             f"snn_repro's neurons have one per layer")
    return float(values[0])


def _chain(graph) -> list[str]:
    """The node keys from the input to the output, refusing anything but a chain."""
    import nir

    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise NIRImportError(f"NIR graph has {len(inputs)} input nodes; snn_repro builds a chain from one input")
    nexts = {k: [b for a, b in graph.edges if a == k] for k in graph.nodes}
    prevs = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
    chain = [inputs[0]]
    while not isinstance(graph.nodes[chain[-1]], nir.Output):
        key = chain[-1]
        if len(nexts[key]) != 1 or len(prevs[nexts[key][0]]) != 1:
            raise NIRImportError(f"NIR node {key}: the graph branches or merges there (or ends without an Output); "
                                 f"snn_repro builds a chain of layers")
        if nexts[key][0] in chain:
            raise NIRImportError(f"NIR node {key}: a recurrent edge back to {nexts[key][0]}; snn_repro builds "
                                 f"feed-forward chains")
        chain.append(nexts[key][0])
    if len(chain) != len(graph.nodes):
        unused = sorted(set(graph.nodes) - set(chain))
        raise NIRImportError(f"NIR node {unused[0]}: not on the path from the input to the output")
    return chain


def _pair(value, key: str, name: str):
    v = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    if len(v) not in (1, 2):
        raise NIRImportError(f"NIR node {key}: {name} {v} is not 2-d")
    return v[0] if len(v) == 1 or v[0] == v[1] else v


def _neuron_spec(key: str, node, dt: float) -> dict:
    import nir

    if not np.allclose(node.v_reset, 0.0):
        raise NIRImportError(f"NIR node {key}: v_reset {_uniform(key, 'v_reset', node.v_reset):g}; snn_repro's "
                             f"neurons reset to 0")
    threshold = _uniform(key, "v_threshold", node.v_threshold)
    if isinstance(node, nir.IF):
        return {"op": "neuron", "leak": 1.0, "threshold": threshold / (dt * _uniform(key, "r", node.r))}
    if not np.allclose(node.v_leak, 0.0):
        raise NIRImportError(f"NIR node {key}: v_leak {_uniform(key, 'v_leak', node.v_leak):g}; snn_repro's "
                             f"neurons leak towards 0")
    decay = dt / _uniform(key, "tau", node.tau)
    if not 0.0 <= decay <= 1.0:
        raise NIRImportError(f"NIR node {key}: dt / tau = {decay:g} is outside [0, 1] (dt {dt:g}): one Euler step "
                             f"would overshoot; give the graph's dt as arch.dt")
    gain = decay * _uniform(key, "r", node.r)
    return {"op": "neuron", "leak": 1.0 - decay, "threshold": threshold / gain}


def arch_of(graph, dt: float | None = None) -> tuple[tuple, list[dict], dict[int, object]]:
    """(per-step input shape, arch layer specs, {layer index: the NIR node whose weights it takes})."""
    import nir

    dt = dt if dt is not None else (graph.metadata or {}).get("dt")
    chain = _chain(graph)
    shape = tuple(int(s) for s in next(iter(graph.nodes[chain[0]].input_type.values())))
    layers, weighted = [], {}
    for key in chain[1:-1]:
        node = graph.nodes[key]
        if isinstance(node, (nir.Affine, nir.Linear)):
            weighted[len(layers)] = node
            layers.append({"op": "linear", "out": int(node.weight.shape[0]), "bias": isinstance(node, nir.Affine)})
        elif isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str) or np.any(np.asarray(node.dilation) != 1) or int(node.groups) != 1:
                raise NIRImportError(f"NIR node {key}: Conv2d with padding {node.padding!r}, dilation "
                                     f"{node.dilation}, groups {node.groups}; snn_repro's conv has numeric padding, "
                                     f"dilation 1, groups 1")
            weighted[len(layers)] = node
            # a zero bias is how a bias-free conv is exported (ours included): imported without one
            layers.append({"op": "conv", "out": int(node.weight.shape[0]), "bias": bool(np.any(node.bias != 0)),
                           "k": _pair(node.weight.shape[2:], key, "kernel"),
                           "stride": _pair(node.stride, key, "stride"), "pad": _pair(node.padding, key, "padding")})
        elif isinstance(node, nir.AvgPool2d):
            if np.any(np.asarray(node.padding) != 0):
                raise NIRImportError(f"NIR node {key}: AvgPool2d with padding {node.padding}; snn_repro's avgpool "
                                     f"has none")
            layers.append({"op": "avgpool", "k": _pair(node.kernel_size, key, "kernel_size"),
                           "stride": _pair(node.stride, key, "stride")})
        elif isinstance(node, nir.Flatten):
            layers.append({"op": "flatten", "dims": (int(node.start_dim), int(node.end_dim))})
        elif isinstance(node, (nir.LIF, nir.IF)):
            if dt is None:
                raise NIRImportError(f"NIR node {key}: the graph's metadata has no dt; give the time step it was "
                                     f"exported with as arch.dt (snntorch and spikingjelly export with 1e-4)")
            layers.append(_neuron_spec(key, node, float(dt)))
        else:
            raise NIRImportError(f"NIR node {key}: {type(node).__name__} has no snn_repro layer (importable: "
                                 f"Affine, Linear, Conv2d, AvgPool2d, Flatten, LIF, IF)")
        layers[-1]["node"] = key
    return shape, layers, weighted


def network_from_nir(graph, neuron: dict | None = None, input_shape=None, fold_time: bool = True,
                     dt: float | None = None) -> SpikingNetwork:
    """The SpikingNetwork of ``graph`` (a NIRGraph or a .nir file); ``neuron`` (a neuron config, LIF or IF) gives
    the surrogate gradient its neurons train with; ``input_shape`` (the dataset's) must be the graph's input."""
    from omegaconf import DictConfig, OmegaConf

    import nir

    if not isinstance(graph, nir.NIRGraph):
        path = Path(graph)
        if not path.is_file():
            raise NIRImportError(f"arch.nir: {path} is not a file")
        graph = nir.read(str(path))
    shape, layers, weighted = arch_of(graph, dt)
    if input_shape is not None and tuple(int(s) for s in input_shape) != shape:
        raise NIRImportError(f"arch.nir: the graph's input is {list(shape)} per step; dataset.input_shape gives "
                             f"{list(input_shape)}")
    neuron = OmegaConf.to_container(neuron, resolve=True) if isinstance(neuron, DictConfig) else dict(neuron or {})
    target = neuron.get("_target_", "snn_repro.neurons.LIF")
    if target not in ("snn_repro.neurons.LIF", "snn_repro.neurons.IF", "snn_repro.neurons.lif.LIF",
                      "snn_repro.neurons.lif.IF"):
        raise NIRImportError(f"neuron: arch=nir builds NIR's LIF / IF as snn_repro.neurons.LIF; neuron {target} "
                             f"(use neuron=lif or neuron=if, whose surrogate gradient it keeps)")
    neuron = {**neuron, "_target_": "snn_repro.neurons.LIF", "strict": True}  # NIR fires at v > v_threshold
    specs = [{k: v for k, v in spec.items() if k not in ("node", "dims")} for spec in layers]
    net = build_network({"layers": specs}, neuron, shape, fold_time)
    net.names = [spec["node"] for spec in layers]  # the graph's node keys name the layers (spike counts, metrics)
    probe = torch.zeros(1, *shape)
    with torch.no_grad():
        for i, (spec, layer) in enumerate(zip(layers, net.layers)):
            if spec["op"] == "flatten" and not _flattens_all(spec["dims"], probe.dim() - 1):
                raise NIRImportError(f"NIR node {spec['node']}: Flatten dims {spec['dims']} of a {probe.dim() - 1}-d "
                                     f"step keep some dims; snn_repro's flatten flattens the whole step")
            if i in weighted:
                node, m = weighted[i], layer.module
                m.weight.copy_(torch.as_tensor(np.asarray(node.weight), dtype=m.weight.dtype))
                if m.bias is not None:
                    m.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=m.bias.dtype))
            if spec["op"] != "neuron":
                probe = layer.module(probe)
    return net


def _flattens_all(dims: tuple[int, int], ndim: int) -> bool:
    start, end = (d % ndim if ndim else 0 for d in dims)
    return start == 0 and end == ndim - 1
