"""A spiking network built from an arch's layer list: ops interleaved with neurons.

The network runs either on a whole sequence (``forward``: layer by layer, each neuron over all T; used by
BPTT) or one time step at a time through every layer (``step``; used where nothing per step may be kept,
e.g. ASF-BP's simulation). Spike counts per neuron layer are recorded on demand for the callbacks.
With ``ann`` set every neuron layer is left out (the input passes unchanged): the ANN of the same ops that BPSA's
reference code trains in its warm-up epochs (snn_repro/callbacks/ann_warmup.py).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from snn_repro.layers import OPS, SequenceOp, TimeFolded, load_op_modules
from snn_repro.neurons.base import Neuron, full_precision

# Weight-parametrisation hooks (e.g. APBS) applied to a built op: name -> fn(module, options)
WEIGHT_PARAMETRISATIONS: dict[str, Callable[[nn.Module, dict], None]] = {}


def _init_weights(module: nn.Module, scheme: str, bias_init: str = "zeros") -> None:
    """``scheme`` for the weights; biases zeroed (``bias_init: zeros``) or left at PyTorch's default init
    (``default``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the MAP-SNN reference code keeps them)."""
    if bias_init not in ("zeros", "default"):
        raise ValueError(f"unknown bias_init {bias_init!r}; known: zeros, default")
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Conv1d)):
            # a parametrised weight (APBS) is computed: initialise the stored original instead
            weight = m.parametrizations.weight.original if "weight" in getattr(m, "parametrizations", {}) else m.weight
            if scheme == "kaiming_normal":  # N(0, sqrt(2 / fan_in)), the ASF-BP / AIA reference
                nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
            elif scheme == "xavier_normal":
                nn.init.xavier_normal_(weight)
            else:
                raise ValueError(f"unknown init {scheme!r}; known: default, kaiming_normal, xavier_normal")
            if m.bias is not None and bias_init == "zeros":
                nn.init.zeros_(m.bias)


class SpikingNetwork(nn.Module):
    def __init__(self, layers: list[nn.Module], names: list[str]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.names = names
        self.record = False
        self.ann = False  # neurons left out: an ANN warm-up epoch
        self.reset_counts()

    # --- spike bookkeeping -------------------------------------------------------------
    def neuron_layers(self) -> list[tuple[str, Neuron]]:
        return [(n, l) for n, l in zip(self.names, self.layers) if isinstance(l, Neuron)]

    def reset_counts(self) -> None:
        self._spike_sums: dict[str, torch.Tensor] = {}
        self._active_sums: dict[str, torch.Tensor] = {}  # non-zero outputs (a two-spike step counts once)
        self._output_sums: dict[str, int] = {}  # outputs seen: neurons x steps x samples
        self.neuron_sizes: dict[str, int] = {}

    @property
    def spike_counts(self) -> dict[str, float]:
        """Spikes summed per neuron layer since ``reset_counts`` (read once per epoch by the callbacks)."""
        return {name: float(total) for name, total in self._spike_sums.items()}

    @property
    def activation_counts(self) -> dict[str, tuple[float, int]]:
        """(non-zero outputs, outputs) per neuron layer since ``reset_counts`` (activation sparsity)."""
        return {name: (float(self._active_sums[name]), self._output_sums[name]) for name in self._active_sums}

    def _count(self, name: str, spikes: torch.Tensor, batch_dim: int) -> None:
        # summed on the device: a float() here would wait for the GPU at every layer and time step
        if self.record:
            spikes = spikes.detach()
            total, active = spikes.sum(dtype=torch.float64), torch.count_nonzero(spikes)
            self._spike_sums[name] = self._spike_sums[name] + total if name in self._spike_sums else total
            self._active_sums[name] = self._active_sums[name] + active if name in self._active_sums else active
            self._output_sums[name] = self._output_sums.get(name, 0) + spikes.numel()
            self.neuron_sizes[name] = math.prod(spikes.shape[batch_dim + 1:])

    @property
    def threshold(self) -> float:
        """Threshold of the last neuron layer (readouts divide by it)."""
        neurons = self.neuron_layers()
        return neurons[-1][1].threshold if neurons else 1.0

    # --- running ---------------------------------------------------------------------------
    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        for name, layer in zip(self.names, self.layers):
            if isinstance(layer, Neuron) and self.ann:
                continue
            x_seq = layer(x_seq)
            if isinstance(layer, Neuron):
                self._count(name, x_seq, batch_dim=1)
        return x_seq

    def forward_chunk(self, x_chunk: torch.Tensor, states: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """A block of time steps [t0:t1] through every layer, from ``states`` (None: initial) -> (output, new states).

        Neurons carry their state across blocks; stateless ops run on the block; a sequence op runs its
        ``forward_state(x_chunk, state) -> (y, state)`` if it has one, else steps through the block.
        Running the blocks in order equals ``forward`` on the whole sequence.
        """
        states = list(states)
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            if isinstance(layer, Neuron) and self.ann:
                continue
            if isinstance(layer, Neuron):
                x_chunk, states[i] = layer.forward_state(x_chunk, states[i])
                self._count(name, x_chunk, batch_dim=1)
            elif isinstance(layer, TimeFolded):
                x_chunk = layer(x_chunk)
            elif hasattr(layer, "forward_state"):  # a sequence op that carries its own state across blocks
                x_chunk, states[i] = layer.forward_state(x_chunk, states[i])
            else:
                out = []
                for x in x_chunk.unbind(0):
                    if states[i] is None:
                        states[i] = layer.init_state(x)
                    y, states[i] = layer.step(x, states[i])
                    out.append(y)
                x_chunk = torch.stack(out)
        return x_chunk, states

    def forward_checkpointed(self, x_seq: torch.Tensor, every: int) -> torch.Tensor:
        """``forward`` in blocks of ``every`` time steps, each under activation checkpointing.

        Only the block inputs and the states between blocks are kept; a block's activations are recomputed in the
        backward (same random numbers: the RNG state is restored). Memory ~ T / every + every steps instead of T.
        """
        from torch.utils.checkpoint import checkpoint

        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if self.training and any(l.fold_time for l in self.layers
                                 if isinstance(l, TimeFolded) and isinstance(l.module, nn.modules.batchnorm._BatchNorm)):
            # batch statistics over a block's steps would differ from those over all T
            raise ValueError("checkpointing over time with batch norm in training needs per-step batch norm "
                             "(bn per_step: true or fold_time=false: per-step statistics, the same in blocks as over the "
                             "whole sequence)")
        ran: set[int] = set()
        record = self.record

        def block(k, x_chunk, states):
            recompute = k in ran
            ran.add(k)
            self.record = record and not recompute  # the recomputation in the backward does not count spikes again
            # nor does it move the running statistics a second time
            saved = [{n: b.clone() for n, b in m.named_buffers()} for m in norms] if recompute else None
            try:
                return self.forward_chunk(x_chunk, states)
            finally:
                self.record = record
                if saved is not None:
                    with torch.no_grad():
                        for m, buffers in zip(norms, saved):
                            for n, b in m.named_buffers():
                                b.copy_(buffers[n])

        states, out = self.init_states(), []
        for k, x_chunk in enumerate(x_seq.split(every, 0)):
            y, states = checkpoint(block, k, x_chunk, states, use_reentrant=False)
            out.append(y)
        return torch.cat(out)

    def init_states(self) -> list[Any]:
        return [None] * len(self.layers)

    def step(self, x: torch.Tensor, states: list[Any]) -> torch.Tensor:
        """One time step through every layer; ``states`` is updated in place."""
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            if isinstance(layer, Neuron) and self.ann:
                continue
            if isinstance(layer, Neuron):  # float32 state under autocast, as in Neuron.forward_state
                x = full_precision(x)
                with torch.autocast(x.device.type, enabled=False):
                    if states[i] is None:
                        states[i] = layer.init_state(x)
                    x, states[i] = layer.step(x, states[i])
                self._count(name, x, batch_dim=0)
                continue
            if states[i] is None:
                states[i] = layer.init_state(x)
            x, states[i] = layer.step(x, states[i])
        return x


def build_network(arch: DictConfig | dict, neuron: DictConfig | dict, input_shape, fold_time: bool = True) -> SpikingNetwork:
    """Build the layers of ``arch.layers`` for per-step inputs of ``input_shape`` (C, H, W) or (features,).

    ``{op: neuron, ...}`` puts a neuron from the ``neuron`` config there, with the spec's other keys overriding
    the neuron's parameters (e.g. a spiking pool with its own threshold).
    """
    load_op_modules()
    arch = OmegaConf.to_container(arch, resolve=True) if isinstance(arch, DictConfig) else dict(arch)
    shape = tuple(input_shape)
    layers, names = [], []
    probe = torch.zeros(1, *shape)
    for i, spec in enumerate(arch["layers"]):
        spec = dict(spec)
        op = spec.pop("op")
        if op == "neuron":
            layer = instantiate(neuron, **spec)
            if hasattr(layer, "build"):  # neurons with per-channel parameters (cached AIA's beta) need the shape
                layer.build(shape)
        elif op in OPS:
            module = OPS[op](spec, shape, arch)
            for key, apply in WEIGHT_PARAMETRISATIONS.items():
                if spec.get(key):
                    apply(module, spec[key])
            layer = module if isinstance(module, SequenceOp) else TimeFolded(module, fold_time)
        else:
            raise ValueError(f"arch layer {i}: unknown op {op!r}; known: neuron, {', '.join(sorted(OPS))}")
        if not isinstance(layer, Neuron):  # shape inference on one zero step, in eval mode (BN stats untouched)
            layer.eval()
            with torch.no_grad():
                probe = layer(probe.unsqueeze(0)).squeeze(0)
            layer.train()
        shape = tuple(probe.shape[1:])
        layers.append(layer)
        names.append(f"{i}_{op}")
    net = SpikingNetwork(layers, names)
    _init_weights(net, arch.get("init", "default"), arch.get("bias_init", "zeros"))
    return net
