"""Export a trained network: ``python -m snn_repro.export <run dir | checkpoint> --format nir|onnx [--out PATH]
[--target CONSUMER]``.

NIR (the Neuromorphic Intermediate Representation, read by snntorch, spikingjelly, norse, sinabs, nirtorch, ...):
the network from its input (the encoder's output, one time step) to its output (the last layer's, before the
readout) as a chain of NIR nodes: ``conv`` -> Conv2d, ``linear`` -> Affine / Linear (a ``bn`` right after either is
folded into its weights), ``avgpool`` -> AvgPool2d, ``flatten`` -> Flatten, ``vote`` -> Linear (the group mean),
``dropout`` -> nothing (identity at inference). Neurons become NIR's continuous-time neurons, discretised by Euler
steps of ``dt`` so that one step is one of ours:
    LIF (u_t = leak * u_{t-1} + x_t, hard reset to 0):  LIF(tau = dt / (1 - leak), r = 1 / (1 - leak), v_leak = 0,
                                                         v_threshold = Vth, v_reset = 0);  IF (leak 1): IF(r = 1 / dt)
    PLIF (k = sigmoid(w) = 1 / tau):                     LIF(tau = dt / k, r = 1 if decay_input else 1 / k)
    BPSA / BPSA+BPTA (values are LIF's, decay lambda):   LIF as above (their gradients are training-only)
    AIA (f = identity forward): LIF;  cached AIA:        Scale(beta) then LIF
Surrogate gradients, detached resets and BPTA's residual path shape only the backward and are not exported.
NIR fires at v > v_threshold: a neuron firing at u >= Vth (``strict: false``) exports with a note (the two differ
only where u equals Vth exactly). What NIR cannot express stops the export with one line naming the layer: MAP-SNN's
multi-spike neurons, max pooling, ReLU, the MAP-SNN synapse / polarity branches, the residual block, a bn not after
a conv/linear. ``tests/nir_oracle.py`` runs a NIR graph with the same discretisation (the round-trip test holds
its spikes to snn_repro's).

``--target CONSUMER`` (``for_target``, ``TARGETS``) writes the graph a simulator's NIR import runs as ours at its
defaults (its dt, the parameters it reads or ignores), or refuses with one line naming the consumer and the layer;
``tests/test_nir_consumers.py`` loads each in its consumer and compares spikes and outputs.

ONNX: the whole sequence [T, B, ...] -> [T, B, K] (T and B fixed, ``--batch``) through the neurons' reference step
forms (``fused`` off), so the graph holds only standard ops; the readout is not part of it.
"""
from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snn_repro.layers import SharedDropout, TimeFolded
from snn_repro.network import SpikingNetwork
from snn_repro.neurons.base import Neuron

FORMATS = ("nir", "onnx")


class ExportError(ValueError):
    pass


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy()


def neuron_nodes(name: str, neuron: Neuron, shape: tuple, dt: float) -> list:
    """The NIR node(s) of one neuron layer with per-step input ``shape`` (module docstring for the mapping)."""
    import nir

    from snn_repro.neurons.aia import AIA, CachedAIA
    from snn_repro.neurons.bpsa import BPSA
    from snn_repro.neurons.lif import LIF
    from snn_repro.neurons.plif import PLIF

    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    threshold = float(neuron.threshold)
    if not isinstance(neuron, (LIF, BPSA, PLIF)):
        raise ExportError(f"{name}: {type(neuron).__name__} has no NIR equivalent (NIR's neurons emit one spike per "
                          f"step and reset or leak as IF / LIF / CubaLIF)")
    if not getattr(neuron, "strict", False):  # BPSA's node fires at u >= Vth too
        print(f"note: {name} fires at u >= Vth; NIR's neurons fire at v > v_threshold (the same unless u == Vth)",
              file=sys.stderr)
    if isinstance(neuron, AIA) and neuron.forward_f != "identity":
        raise ExportError(f"{name}: AIA with forward_f={neuron.forward_f!r} transforms its input non-linearly; "
                          f"NIR has no such node")
    pre = []
    if isinstance(neuron, CachedAIA):  # f(x) = beta * x, per channel or shared
        beta = neuron.beta.detach().reshape(-1, *([1] * (len(shape) - 1))) if neuron.beta.numel() > 1 else \
            neuron.beta.detach().reshape(())
        pre = [nir.Scale(_np(beta.expand(shape)).copy())]
    if isinstance(neuron, PLIF):
        k = float(torch.sigmoid(neuron.w.detach()))
        return pre + [nir.LIF(tau=full(dt / k), r=full(1.0 if neuron.decay_input else 1.0 / k), v_leak=full(0.0),
                              v_threshold=full(threshold), v_reset=full(0.0))]
    leak = float(neuron.decay if isinstance(neuron, BPSA) else neuron.leak)
    if leak == 1.0:
        return pre + [nir.IF(r=full(1.0 / dt), v_threshold=full(threshold), v_reset=full(0.0))]
    return pre + [nir.LIF(tau=full(dt / (1 - leak)), r=full(1.0 / (1 - leak)), v_leak=full(0.0),
                          v_threshold=full(threshold), v_reset=full(0.0))]


# --- per-consumer forms: the generic graph rewritten where a consumer's NIR import reads it otherwise ------------
# Each takes the generic graph (made with the consumer's dt) and returns the graph that consumer runs as ours, or
# raises ExportError naming the consumer and the first layer it cannot run. The versions named are those tested
# (tests/test_nir_consumers.py); results/bench/nir_consumers.md has the measured agreement.
def _neurons(graph):
    import nir

    return [(k, n) for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.IF))]


def _refuse_nodes(graph, consumer: str, types: tuple, why: str) -> None:
    for key, node in graph.nodes.items():
        if isinstance(node, types):
            raise ExportError(f"--target {consumer}: {key} ({type(node).__name__}): {why}")


def _for_snntorch(graph):
    """snntorch 1.0 ``import_from_nir``: dt fixed at 1e-4 (our dt for it); it maps nir.IF to a leaky neuron
    (beta 0.9, reset by subtraction) and requires r = 1, so an IF layer is written as the LIF whose leak
    1 - dt/tau rounds to 1 in float32 (tau = 1e30 s, r = tau/dt: one step adds the input, as IF's)."""
    import nir

    _refuse_nodes(graph, "snntorch", (nir.Scale,), "snntorch 1.0 import_from_nir has no Scale node")
    dt = graph.metadata["dt"]
    for key, node in _neurons(graph):
        if isinstance(node, nir.IF):
            shape = node.v_threshold.shape
            graph.nodes[key] = nir.LIF(tau=np.full(shape, 1e30, np.float32), r=np.full(shape, 1e30 / dt, np.float32),
                                       v_leak=np.zeros(shape, np.float32), v_threshold=node.v_threshold,
                                       v_reset=node.v_reset)
    return graph


def _for_spikingjelly(graph):
    """spikingjelly 2.0 ``import_from_nir`` reads the generic graph as it is at its default dt (1e-4, our dt for
    it): LIF r = tau/dt -> decay_input=False, IF r = 1/dt; it has no Scale node."""
    import nir

    _refuse_nodes(graph, "spikingjelly", (nir.Scale,), "spikingjelly 2.0 import_from_nir has no Scale node")
    return graph


def _for_norse(graph):
    """norse 1.1 ``from_nir`` ignores a LIF's r (its LIFBox integrates dv = dt/tau (v_leak - v + I)): a LIF is
    written with r = 1 and its potential divided by r (v_threshold / r, v_reset / r, v_leak / r: the same spikes).
    Its IAF adds the input each step whatever r and dt, as our IF(r = 1/dt) does. It maps no AvgPool2d (loads it as
    nothing): each is written as a SumPool2d (norse's LPPool2d of norm 1) and 1 / its area moved into the next
    node (``_sum_pools``). It maps no Scale."""
    import nir

    _refuse_nodes(graph, "norse", (nir.Scale,), "norse 1.1 from_nir maps no Scale node (it loads as nothing)")
    for key, node in _neurons(graph):
        if isinstance(node, nir.LIF):
            r = node.r
            graph.nodes[key] = nir.LIF(tau=node.tau, r=np.ones_like(r), v_leak=node.v_leak / r,
                                       v_threshold=node.v_threshold / r, v_reset=node.v_reset / r)
    return _sum_pools(graph, "norse")


def _sum_pools(graph, consumer: str):
    """Each AvgPool2d as a SumPool2d, the mean's 1 / area moved into the next node that is linear in its input: a
    Conv2d / Affine / Linear's weight (through a Flatten), or a LIF / IF's potential (v_threshold, v_reset, v_leak
    times the area). The graph is a chain (``to_nir``'s)."""
    import nir

    successor = dict(graph.edges)
    for key, node in list(graph.nodes.items()):
        if not isinstance(node, nir.AvgPool2d):
            continue
        if np.any(np.asarray(node.padding) != 0):
            raise ExportError(f"--target {consumer}: {key} (AvgPool2d): padding {node.padding}; its sum pool "
                              f"ignores padding")
        area = float(np.prod(node.kernel_size))
        pool = nir.SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
        pool.input_type, pool.output_type = node.input_type, node.output_type  # the types check_types infers
        graph.nodes[key] = pool
        after = successor[key]
        while isinstance(graph.nodes[after], nir.Flatten):
            after = successor[after]
        n = graph.nodes[after]
        if isinstance(n, nir.Conv2d):
            n = nir.Conv2d(n.input_shape, n.weight / area, n.stride, n.padding, n.dilation, n.groups, n.bias)
        elif isinstance(n, nir.Affine):
            n = nir.Affine(n.weight / area, n.bias)
        elif isinstance(n, nir.Linear):
            n = nir.Linear(n.weight / area)
        elif isinstance(n, nir.LIF):
            n = nir.LIF(tau=n.tau, r=n.r, v_leak=n.v_leak * area, v_threshold=n.v_threshold * area,
                        v_reset=n.v_reset * area)
        elif isinstance(n, nir.IF):
            n = nir.IF(r=n.r, v_threshold=n.v_threshold * area, v_reset=n.v_reset * area)
        else:
            raise ExportError(f"--target {consumer}: {key} (AvgPool2d) before {after} ({type(n).__name__}): "
                              f"{consumer} has no average pooling, and the mean's 1 / area has no node to go into")
        graph.nodes[after] = n
    return graph


def _for_sinabs(graph):
    """sinabs 3.1 ``from_nir`` makes every LIF / IF a multi-spike neuron reset by subtraction (MultiSpike,
    MembraneSubtract; IF's potential also clipped at -v_threshold): our single-spike, reset-to-0 neurons differ."""
    import nir

    _refuse_nodes(graph, "sinabs", (nir.LIF, nir.IF),
                  "sinabs 3.1 from_nir fires several spikes per step and resets by subtraction; ours fire one "
                  "spike and reset to 0")
    return graph


def _for_nirtorch(graph):
    """nirtorch 2.6 ``nir_to_torch`` (the interpreter the others build on, with a neuron map of one's own): its
    default Affine map leaves the bias at torch's random init (it sets ``weight.bias``)."""
    import nir

    _refuse_nodes(graph, "nirtorch", (nir.Scale,), "nirtorch 2.6 nir_to_torch has no default map for Scale")
    _refuse_nodes(graph, "nirtorch", (nir.Affine,),
                  "nirtorch 2.6 nir_to_torch drops an Affine's bias (its default map sets weight.bias)")
    return graph


# target -> (the form's function, the dt the consumer's import assumes; None: the --dt given, default 1e-3)
TARGETS = {
    "generic": (lambda graph: graph, None),
    "snntorch": (_for_snntorch, 1e-4),
    "spikingjelly": (_for_spikingjelly, 1e-4),
    "norse": (_for_norse, 1e-3),
    "sinabs": (_for_sinabs, None),
    "nirtorch": (_for_nirtorch, None),
}
DEFAULT_DT = 1e-3


def for_target(net: SpikingNetwork, input_shape, target: str = "generic", dt: float | None = None):
    """The NIR graph of ``net`` in the form ``target``'s import runs with its defaults (``TARGETS``)."""
    if target not in TARGETS:
        raise ExportError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    form, consumer_dt = TARGETS[target]
    if consumer_dt is not None and dt is not None and dt != consumer_dt:
        raise ExportError(f"--target {target}: its import assumes dt = {consumer_dt:g}; --dt {dt:g} would change "
                          f"the neurons it builds (leave --dt out)")
    graph = to_nir(net, input_shape, dt if dt is not None else consumer_dt or DEFAULT_DT)
    graph = form(graph)
    graph.metadata["target"] = target
    return graph


def _fold_bn(node, bn: nn.modules.batchnorm._BatchNorm):
    """A Conv2d / Affine node with the inference-mode batch norm after it folded into weight and bias."""
    import nir

    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(
        bn.running_var + bn.eps)
    shift = (bn.bias.detach() if bn.affine else 0) - bn.running_mean * scale
    scale, shift = _np(scale), _np(shift)
    w = node.weight * scale.reshape(-1, *([1] * (node.weight.ndim - 1)))
    b = (getattr(node, "bias", None) if getattr(node, "bias", None) is not None else 0) * scale + shift
    if isinstance(node, nir.Conv2d):
        return nir.Conv2d(node.input_shape, w, node.stride, node.padding, node.dilation, node.groups, b)
    return nir.Affine(w, b)


def to_nir(net: SpikingNetwork, input_shape, dt: float = 1e-3):
    """The NIR graph of ``net`` for per-step inputs of ``input_shape`` (C, H, W) or (features,)."""
    import nir

    from snn_repro.ops.vote import Vote

    shape = tuple(int(s) for s in input_shape)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(shape)})}
    chain = ["input"]
    probe = torch.zeros(1, *shape)
    net = net.eval()
    for name, layer in zip(net.names, net.layers):
        if isinstance(layer, Neuron):
            for node in neuron_nodes(name, layer, shape, dt):
                key = f"{name}.scale" if isinstance(node, nir.Scale) else name
                nodes[key] = node
                chain.append(key)
            continue
        if isinstance(layer, SharedDropout):
            continue
        if not isinstance(layer, TimeFolded):
            raise ExportError(f"{name}: {type(layer).__name__} runs along time with its own state; NIR has no such node")
        m = layer.module
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ExportError(f"{name}: conv padding {m.padding!r} ({m.padding_mode}) has no NIR form")
            node = nir.Conv2d(input_shape=shape[1:], weight=_np(m.weight), stride=m.stride, padding=m.padding,
                              dilation=m.dilation, groups=m.groups,
                              bias=_np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32))
        elif isinstance(m, nn.Linear):
            node = nir.Affine(_np(m.weight), _np(m.bias)) if m.bias is not None else nir.Linear(_np(m.weight))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            prev = nodes[chain[-1]]
            if not isinstance(prev, (nir.Conv2d, nir.Affine, nir.Linear)):
                raise ExportError(f"{name}: batch norm after {chain[-1]} ({type(prev).__name__}); NIR has no batch "
                                  f"norm, and only one right after a conv / linear folds into its weights")
            nodes[chain[-1]] = _fold_bn(prev, m)
            node = None
        elif isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or not m.count_include_pad:
                raise ExportError(f"{name}: average pooling with ceil_mode / count_include_pad=False has no NIR form")
            pair = lambda v: np.array(v if isinstance(v, (tuple, list)) else (v, v))  # noqa: E731
            node = nir.AvgPool2d(kernel_size=pair(m.kernel_size), stride=pair(m.stride), padding=pair(m.padding))
        elif isinstance(m, nn.Flatten):
            # counted from the end: a consumer that passes NIR's (batch-free) dims to torch unchanged (snntorch,
            # norse, nirtorch) then flattens each sample of a batch, not the batch
            node = nir.Flatten(input_type={"input": np.array(shape)},
                               start_dim=m.start_dim - 1 - len(shape) if m.start_dim >= 0 else m.start_dim,
                               end_dim=m.end_dim - 1 - len(shape) if m.end_dim >= 0 else m.end_dim)
        elif isinstance(m, Vote):  # the mean of each class's voters: a fixed linear map
            k = shape[-1] // m.per_class
            node = nir.Linear(np.kron(np.eye(k, dtype=np.float32), np.full((1, m.per_class), 1 / m.per_class,
                                                                            dtype=np.float32)))
        else:
            raise ExportError(f"{name}: {type(m).__name__} has no NIR node (exportable: conv, linear, bn after "
                              f"them, avgpool, flatten, vote, dropout, IF/LIF-type neurons)")
        with torch.no_grad():
            probe = m(probe)
        shape = tuple(probe.shape[1:])
        if node is not None:
            nodes[name] = node
            chain.append(name)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    chain.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])),
                        metadata={"producer": "snn_repro", "dt": dt})


# --- ONNX ---------------------------------------------------------------------------------------------------------
@contextmanager
def reference_forms(net: nn.Module):
    """Every neuron of ``net`` runs its reference loop over ``step`` (standard ops only) inside the block."""
    neurons = [m for m in net.modules() if isinstance(m, Neuron)]
    saved = [m.__dict__.get("fused") for m in neurons]
    for m in neurons:
        m.fused = False
    try:
        yield net
    finally:
        for m, f in zip(neurons, saved):
            if f is None:
                del m.fused
            else:
                m.fused = f


def to_onnx(net: SpikingNetwork, input_shape, time_steps: int, path: str | Path, batch: int = 1) -> Path:
    """``net`` on [T, batch, *input_shape] -> [T, batch, K] as an ONNX file (shapes fixed at export: the traced
    time folding reshapes by them)."""
    import warnings

    x = torch.zeros(time_steps, batch, *[int(s) for s in input_shape])
    net = net.eval().cpu()
    graph = io.BytesIO()
    with reference_forms(net), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (x,), graph, dynamo=False, input_names=["spikes_in"], output_names=["out"])
    return _write_whole(path, graph.getvalue())


def _write_whole(path: str | Path, data: bytes) -> Path:
    """``data`` into ``path`` through a temporary file and a rename: a full disk leaves no partial model behind and
    raises an OSError naming ``path`` (the graph is made in memory first: h5py crashes on a full disk)."""
    from snn_repro.results import atomic_file

    with atomic_file(path, "wb") as f:
        f.write(data)
    return Path(path)


def export(path: str | Path, fmt: str, out: str | Path | None = None, which: str = "last", dt: float | None = None,
           batch: int = 1, target: str = "generic") -> Path:
    from snn_repro.eval import load_module, run_dir_of

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt != "nir" and target != "generic":
        raise ExportError(f"--target {target}: only NIR graphs have per-consumer forms")
    module = load_module(path, which=which, map_location="cpu")
    cfg = module.config
    shape = cfg["dataset"]["input_shape"]
    dest = Path(out) if out else run_dir_of(Path(module.checkpoint_path)) / "export" / f"model.{fmt}"
    if fmt == "nir":
        import nir

        graph = io.BytesIO()
        nir.write(graph, for_target(module.net, shape, target, dt))
        _write_whole(dest, graph.getvalue())
    else:
        to_onnx(module.net, shape, module.encoder.time_steps, dest, batch)
    form = f", the form {target}'s NIR import runs" if target != "generic" else ""
    print(f"export: {fmt} graph of {module.checkpoint_path} -> {dest} (input: the encoder's output, "
          f"{module.encoder.time_steps} steps of {list(shape)}; readout {cfg.get('readout')} not included{form})")
    return dest


def main(argv: list[str] | None = None) -> int:
    from snn_repro.eval import EvalError, checkpoint_parser

    p = checkpoint_parser("python -m snn_repro.export", __doc__,
                          "output file (default: <run dir>/export/model.<format>)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--dt", type=float, default=None,
                   help=f"NIR time step in seconds (one step of the network); default: the target's, else {DEFAULT_DT:g}")
    p.add_argument("--target", default="generic", choices=list(TARGETS),
                   help="the NIR consumer whose import defaults the graph is written for (default: the spec's form)")
    p.add_argument("--batch", type=int, default=1, help="ONNX batch size (fixed in the graph)")
    args = p.parse_args(argv)
    from snn_repro.runtime import run_command

    return run_command(lambda: export(args.path, args.format, args.out, args.ckpt, args.dt, args.batch, args.target),
                       (ExportError, EvalError))


if __name__ == "__main__":
    sys.exit(main())
