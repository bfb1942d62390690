"""NeuroBench-compatible efficiency metrics of a spiking network on the test split (Yik et al., NeuroBench 2025).

Counted the way the ``neurobench`` package counts them (``neurobench.metrics``), so the numbers compare with the
field's; ``tests/test_metrics.py`` holds them to that package on a small network:
- synaptic operations per sample, for every synaptic layer (``nn.Linear``, ``nn.Conv1d/2d/3d``), summed over all
  time steps: *effective* ops = pairs (non-zero input, non-zero weight), i.e. the binarised layer applied to the
  binarised input, summed over its outputs (bias not counted); they are ACs when the layer's input is all in
  {-1, 0, 1} (spikes) and MACs otherwise (analog input: direct coding, event counts). *Dense* = the same with every
  input and weight set to one (what the layer would cost as a dense ANN layer on the same input; padding excluded).
- activation sparsity: zero outputs / all outputs of the neuron layers, over all steps and samples (per layer and
  total). Neurons inside a composite op (a residual block) are not seen, as their spikes are not counted either.
- connection sparsity: zero weights / weights of the synaptic layers; parameter count; footprint in bytes
  (parameters + buffers of the network, as NeuroBench's ``Footprint``).
Ops of the MAP-SNN temporal synapse (``convsyn``), pooling and the voting mean are not synaptic ops here (NeuroBench
does not count them either).
"""
from __future__ import annotations

import lightning as L
import torch
from torch import nn

from snn_repro.distributed import sum_over_ranks
from snn_repro.network import SpikingNetwork

SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def synaptic_layers(net: SpikingNetwork) -> dict[str, nn.Module]:
    """Synaptic modules by key: the arch layer's name, with the path inside a composite op (``3_resblock.conv1``)."""
    out = {}
    for name, layer in zip(net.names, net.layers):
        for sub, m in layer.named_modules():
            if isinstance(m, SYNAPTIC):
                sub = sub.removeprefix("module").lstrip(".")  # TimeFolded wraps the op as .module
                out[f"{name}.{sub}" if sub else name] = m
    return out


def layer_synops(layer: nn.Module, x: torch.Tensor) -> tuple[float, float, bool]:
    """(effective ops, dense ops, spiking input) of one call of ``layer`` on ``x`` (any batch/time folding)."""
    effective, dense, spiking = layer_synops_on_device(layer, x)
    return float(effective), float(dense), bool(spiking)


def layer_synops_on_device(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor]:
    """``layer_synops`` with the effective ops and the spiking flag left as tensors on x's device: the counter
    reads them once per epoch, not once per layer and time step (each read would wait for the GPU)."""
    x = x.detach()
    weight = layer.weight.detach()  # a parametrised weight (APBS) is computed here
    x_bin, w_bin = (x != 0).to(weight.dtype), (weight != 0).to(weight.dtype)
    spiking = ((x == 0) | (x == 1) | (x == -1)).all()
    if isinstance(layer, nn.Linear):
        effective = (x_bin @ w_bin.T).sum(dtype=torch.float64)
        dense = x.numel() // layer.in_features * layer.in_features * layer.out_features
    else:  # the layer's own convolution (stride, padding, dilation, groups) on the binarised tensors
        effective = layer._conv_forward(x_bin, w_bin, None).sum(dtype=torch.float64)
        dense = layer._conv_forward(torch.ones_like(x_bin), torch.ones_like(w_bin), None).sum(dtype=torch.float64)
    return effective, dense, spiking


def static_metrics(net: SpikingNetwork) -> dict:
    """Parameter count, footprint (bytes of parameters and buffers) and connection sparsity, per layer and total."""
    layers = {}
    zeros = weights = 0
    for key, m in synaptic_layers(net).items():
        w = m.weight.detach()
        z = int((w == 0).sum())
        layers[key] = {"weights": w.numel(), "zero_weights": z, "connection_sparsity": z / w.numel()}
        zeros, weights = zeros + z, weights + w.numel()
    params = sum(p.numel() for p in net.parameters())
    footprint = sum(p.numel() * p.element_size() for p in net.parameters()) + sum(
        b.numel() * b.element_size() for b in net.buffers())
    return {"parameter_count": params, "footprint_bytes": footprint,
            "connection_sparsity": zeros / weights if weights else 0.0, "layers": layers}


class LayerHooks:
    """Forward hooks on chosen layers of a network: ``hook(key, module)`` makes every call of ``module`` run
    ``self.count(key, module, inputs, output)``; ``detach`` removes them all."""

    def __init__(self):
        self._handles = []

    def hook(self, key: str, module: nn.Module) -> None:
        self._handles.append(module.register_forward_hook(
            lambda m, inputs, output: self.count(key, m, inputs, output)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def count(self, key: str, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        raise NotImplementedError


class SynOpsCounter(LayerHooks):
    """Forward hooks on every synaptic layer of ``net`` accumulating effective ACs / MACs and dense ops."""

    def __init__(self, net: SpikingNetwork):
        super().__init__()
        self.layers = synaptic_layers(net)
        self.counts = {k: {"effective_acs": 0.0, "effective_macs": 0.0, "dense": 0.0} for k in self.layers}

    def attach(self) -> "SynOpsCounter":
        for key, m in self.layers.items():
            self.hook(key, m)
        return self

    def count(self, key, module, inputs, output):
        effective, dense, spiking = layer_synops_on_device(module, inputs[0])
        c = self.counts[key]
        c["effective_acs"] = c["effective_acs"] + torch.where(spiking, effective, 0.0)
        c["effective_macs"] = c["effective_macs"] + torch.where(spiking, 0.0, effective)
        c["dense"] = c["dense"] + dense


def neurobench_summary(net: SpikingNetwork, counts: dict[str, dict[str, float]], samples: int,
                       activity: dict[str, tuple[float, float]] | None = None) -> dict:
    """Per-sample synaptic ops and the sparsities, per layer and total (see the module docstring); ``activity``
    (default: the network's ``activation_counts``) is (non-zero outputs, outputs) per neuron layer."""
    static = static_metrics(net)
    layers = {k: {**static["layers"].get(k, {}), **{op: float(v) / samples for op, v in c.items()}}
              for k, c in counts.items()}
    activity = net.activation_counts if activity is None else activity
    active = sum(a for a, _ in activity.values())
    outputs = sum(n for _, n in activity.values())
    return {
        "samples": samples,
        "synops": {op: sum(layer[op] for layer in layers.values()) for op in ("effective_acs", "effective_macs",
                                                                                 "dense")},
        "activation_sparsity": 1 - active / outputs if outputs else 0.0,
        "activation_sparsity_per_layer": {n: 1 - a / o if o else 0.0 for n, (a, o) in activity.items()},
        "connection_sparsity": static["connection_sparsity"],
        "parameter_count": static["parameter_count"],
        "footprint_bytes": static["footprint_bytes"],
        "layers": layers,
    }


class NeuroBenchMetrics(L.Callback):
    """The metrics of the module docstring on the test split: logged as ``test/neurobench/...``, kept in
    ``pl_module.neurobench_summary`` for results.json."""

    def __init__(self):
        self.counter: SynOpsCounter | None = None
        self.samples = 0

    def on_test_epoch_start(self, trainer, pl_module):
        self.counter = SynOpsCounter(pl_module.net).attach()
        pl_module.net.record = True  # shared with SpikeCounter / EnergyCounter, which reset the same way here
        pl_module.net.reset_counts()
        self.samples = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.samples += len(batch[1])

    def on_test_epoch_end(self, trainer, pl_module):
        self.counter.detach()
        pl_module.net.record = False
        # under DDP each rank counted its shard of the test split: the sums over all ranks
        local = {"samples": self.samples}
        for key, c in self.counter.counts.items():
            local.update({f"ops/{key}/{op}": float(v) for op, v in c.items()})
        for name, (active, outputs) in pl_module.net.activation_counts.items():
            local.update({f"act/{name}/active": active, f"act/{name}/outputs": outputs})
        totals = sum_over_ranks(local)
        samples = int(totals["samples"])
        if not samples:
            return
        counts = {key: {op: totals[f"ops/{key}/{op}"] for op in c} for key, c in self.counter.counts.items()}
        activity = {name: (totals[f"act/{name}/active"], totals[f"act/{name}/outputs"])
                    for name in pl_module.net.activation_counts}
        summary = neurobench_summary(pl_module.net, counts, samples, activity)
        for op, value in summary["synops"].items():
            pl_module.log(f"test/neurobench/{op}", float(value))
        for key in ("activation_sparsity", "connection_sparsity"):
            pl_module.log(f"test/neurobench/{key}", float(summary[key]))
        pl_module.neurobench_summary = summary
