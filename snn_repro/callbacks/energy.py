"""Energy estimate of a spiking network against the same network run as an ANN (BPSA paper, Table 6).

Counted on the test split, per sample, for every synaptic layer (``nn.Conv2d``, ``nn.Linear``):
- MAC (ANN): the dense multiply-accumulates of one pass, as FLOPs counters count them: for a conv,
  out_channels * H_out * W_out * (in_channels / groups) * k_h * k_w (padded positions included); for a linear,
  in_features * out_features. BatchNorm, pooling, ReLU and the voting mean are not counted (BN folds into the conv).
- AC (SNN): the synaptic operations triggered by non-zero inputs over all T steps: each non-zero input of a conv
  adds one accumulate for every output channel and every output position whose receptive field holds it (counted
  exactly, borders and stride included, as a convolution of a ones kernel over the non-zero map); for a linear,
  non-zeros * out_features. A layer placed after a neuron layer is spike-driven (its ops are ACs; average-pooled
  spikes count as one event per non-zero pooled value). A layer before the first neuron sees the encoder's output:
  binary input -> ACs, analog input (direct coding, event counts) -> MACs at every step ("mac_snn").

Energies (pJ per op configurable; defaults 45 nm, Horowitz 2014: 4.6 pJ for a 32-bit float MAC, 0.9 pJ for a
32-bit float add; the paper's eq. 11 calls its AC an integer accumulate, 0.1 pJ for a 32-bit int add):
- the paper's eq. 11:  E_ANN = FLOPS_ANN * E_MAC,   E_SNN = FLOPS_SNN * E_AC * T,
  with FLOPS_SNN = FLOPS_ANN * fr, fr the network's firing rate (spikes / (neurons * T), all neuron layers):
  EE_eq11 = E_ANN / E_SNN = E_MAC / (E_AC * T * fr). The paper's Table 6 EE values equal 46 / (16 * fr), i.e.
  E_MAC / E_AC = 4.6 / 0.1 at T = 16.
- spike-count based: E_SNN = AC * E_AC + MAC_snn * E_MAC, EE_count = E_ANN / E_SNN.

Logged as ``test/energy/...``; the summary is kept in ``pl_module.energy_summary`` for results.json. The test pass
after training counts the last epoch's weights; a run with this callback also tests its protocol's checkpoint (the
best epoch's weights in the paper protocol, the val-chosen ones in the held-out protocol) and records those counts as
``paper_protocol/test/energy/...`` / ``held_out/test/energy/...`` (snn_repro.train.checkpoint_metrics), which tables
read, so that energy and accuracy come from the same weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from snn_repro.distributed import sum_over_ranks
from snn_repro.metrics import LayerHooks
from snn_repro.neurons.base import Neuron

SYNAPTIC = (nn.Conv2d, nn.Linear)


def conv2d_ops_from_nonzeros(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Accumulates triggered by the non-zero entries of ``x`` [N, C, H, W] in ``conv`` (all samples summed), as a
    float64 scalar on x's device (exact: integer counts below 2^53)."""
    if conv.padding_mode != "zeros":
        raise ValueError(f"energy count assumes zero padding, {conv} pads with {conv.padding_mode!r}")
    groups = conv.groups
    nz = (x != 0).to(torch.float64)
    per_group = nz.unflatten(1, (groups, -1)).sum(2)  # [N, G, H, W]: non-zeros per position in each group
    ones = torch.ones(groups, 1, *conv.kernel_size, dtype=torch.float64, device=x.device)
    hits = F.conv2d(per_group, ones, stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=groups)
    return hits.sum() * (conv.out_channels // groups)


def dense_macs_per_row(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """MACs of one row (one sample at one step) of ``module`` computing ``y`` from ``x``."""
    rows = x.shape[0]
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return y.numel() / rows * (module.in_channels // module.groups) * k_h * k_w
    return y.numel() / rows * module.in_features


@dataclass
class LayerOps:
    """While counting, ``events``, ``nonzeros`` and ``analog`` are tensors on the network's device (a host read per
    layer and time step would wait for the GPU each time); ``EnergyCounter`` reads them once, at the epoch's end."""

    spike_driven: bool  # placed after a neuron layer
    mac_per_row: float = 0.0
    events: float | torch.Tensor = 0.0  # accumulates triggered by non-zero inputs, summed over all calls
    nonzeros: float | torch.Tensor = 0.0
    inputs: float = 0.0
    analog: bool | torch.Tensor = False  # some input was neither 0 nor 1 (encoder side only)


class SynapticOpCounter(LayerHooks):
    """Forward hooks on the synaptic layers of a SpikingNetwork, counting ops while attached."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.layers: dict[str, LayerOps] = {}

    def attach(self) -> None:
        self.detach()
        self.layers = {}
        seen_neuron = False
        for name, layer in zip(self.net.names, self.net.layers):
            if isinstance(layer, Neuron):
                seen_neuron = True
                continue
            for sub, module in layer.named_modules():
                if isinstance(module, SYNAPTIC):
                    key = name if sub in ("", "module") else f"{name}.{sub}"
                    self.layers[key] = LayerOps(spike_driven=seen_neuron)
                    self.hook(key, module)
            # a composite op with its own neurons: later layers are spike-driven
            seen_neuron = seen_neuron or any(isinstance(m, Neuron) for m in layer.modules())

    def count(self, key, module, inputs, output):
        x = inputs[0].detach()
        ops = self.layers[key]
        ops.mac_per_row = dense_macs_per_row(module, x, output)  # from shapes: no device read
        nonzeros = (x != 0).sum(dtype=torch.float64)
        if isinstance(module, nn.Conv2d):
            ops.events = ops.events + conv2d_ops_from_nonzeros(x, module)
        else:
            ops.events = ops.events + nonzeros * module.out_features
        ops.nonzeros = ops.nonzeros + nonzeros
        ops.inputs += x.numel()
        if not ops.spike_driven:
            ops.analog = ~((x == 0) | (x == 1)).all() | ops.analog


def energy_summary(ops: dict[str, LayerOps], spike_counts: dict[str, float], neuron_sizes: dict[str, int],
                   samples: int, time_steps: int, e_mac_pj: float, e_ac_pj: float) -> dict:
    """Per-sample op counts, firing rates and the two energy-efficiency estimates of the module docstring."""
    per_layer, mac_ann, ac_snn, mac_snn = {}, 0.0, 0.0, 0.0
    for key, o in ops.items():
        events = o.events / samples
        as_mac = o.analog and not o.spike_driven
        per_layer[key] = {"mac_ann": o.mac_per_row, "ops_snn": events, "op": "mac" if as_mac else "ac",
                          "input_rate": o.nonzeros / o.inputs if o.inputs else 0.0}
        mac_ann += o.mac_per_row
        if as_mac:
            mac_snn += events
        else:
            ac_snn += events
    spikes = sum(spike_counts.values())
    neurons = sum(neuron_sizes[n] for n in spike_counts)
    fr = spikes / (neurons * time_steps * samples) if neurons else 0.0
    e_ann = mac_ann * e_mac_pj
    e_snn_eq11 = mac_ann * fr * e_ac_pj * time_steps
    e_snn_count = ac_snn * e_ac_pj + mac_snn * e_mac_pj
    return {
        "samples": samples, "T": time_steps, "e_mac_pj": e_mac_pj, "e_ac_pj": e_ac_pj,
        "firing_rate": fr,
        "firing_rate_per_layer": {n: c / (neuron_sizes[n] * time_steps * samples) for n, c in spike_counts.items()},
        "mac_ann": mac_ann, "ac_snn": ac_snn, "mac_snn": mac_snn,
        "energy_ann_pj": e_ann, "energy_snn_eq11_pj": e_snn_eq11, "energy_snn_count_pj": e_snn_count,
        "ee_eq11": e_ann / e_snn_eq11 if e_snn_eq11 else float("inf"),
        "ee_count": e_ann / e_snn_count if e_snn_count else float("inf"),
        "per_layer": per_layer,
    }


class EnergyCounter(L.Callback):
    """Counts synaptic ops and spikes on the test split and logs ``test/energy/...`` (see the module docstring)."""

    def __init__(self, e_mac_pj: float = 4.6, e_ac_pj: float = 0.9):
        self.e_mac_pj, self.e_ac_pj = e_mac_pj, e_ac_pj
        self.counter: SynapticOpCounter | None = None
        self.samples = 0

    def on_test_epoch_start(self, trainer, pl_module):
        self.counter = SynapticOpCounter(pl_module.net)
        self.counter.attach()
        pl_module.net.record = True  # spike counts per neuron layer (shared with SpikeCounter, reset by both here)
        pl_module.net.reset_counts()
        self.samples = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.samples += len(batch[1])

    def on_test_epoch_end(self, trainer, pl_module):
        net = pl_module.net
        self.counter.detach()
        net.record = False  # the counts stay readable for SpikeCounter, whichever callback ends first
        # under DDP each rank counted its shard of the test split: the sums over all ranks
        local = {"samples": self.samples, **{f"spikes/{n}": c for n, c in net.spike_counts.items()}}
        for key, o in self.counter.layers.items():
            local.update({f"ops/{key}/events": float(o.events), f"ops/{key}/nonzeros": float(o.nonzeros),
                          f"ops/{key}/inputs": o.inputs, f"ops/{key}/analog": float(o.analog)})
        totals = sum_over_ranks(local)
        samples = int(totals["samples"])
        if not samples:
            return
        for key, o in self.counter.layers.items():
            o.events, o.nonzeros, o.inputs = (totals[f"ops/{key}/{k}"] for k in ("events", "nonzeros", "inputs"))
            o.analog = totals[f"ops/{key}/analog"] > 0
        spikes = {k.removeprefix("spikes/"): v for k, v in totals.items() if k.startswith("spikes/")}
        summary = energy_summary(self.counter.layers, spikes, dict(net.neuron_sizes), samples,
                                 pl_module.encoder.time_steps, self.e_mac_pj, self.e_ac_pj)
        for key in ("firing_rate", "ee_eq11", "ee_count", "mac_ann", "ac_snn", "mac_snn"):
            pl_module.log(f"test/energy/{key}", float(summary[key]))
        for name, rate in summary["firing_rate_per_layer"].items():
            pl_module.log(f"test/energy/firing_rate/{name}", float(rate))
        pl_module.energy_summary = summary
