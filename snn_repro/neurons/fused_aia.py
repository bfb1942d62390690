"""Fused sequence forms of the AIA neurons (snn_repro/neurons/aia.py).

AIA's association f acts on each step's input alone, so it runs once on the whole sequence (the same elementwise
op on every step, with its own autograd), followed by the fused LIF recurrence. The cached form's f(x) = beta * x
runs inside the fused LIF function (its ``scale``).
"""
from __future__ import annotations

from typing import Any

import torch

from snn_repro.neurons.aia import AIA, CachedAIA, associate
from snn_repro.neurons.fused import lif_sequence, register_fused, scaled_lif_sequence


@register_fused(AIA)
def aia_sequence(neuron: AIA, x_seq: torch.Tensor, state: Any = None):
    return lif_sequence(neuron, associate(x_seq, neuron.forward_f), state)


@register_fused(CachedAIA)
def cached_aia_sequence(neuron: CachedAIA, x_seq: torch.Tensor, state: Any = None):
    # beta scales each step inside the LIF function: no scaled copy of the sequence, no full-size temporaries in
    # the backward for dL/dbeta (autograd's broadcast product made two)
    return scaled_lif_sequence(neuron, x_seq, neuron._scale(x_seq), state)
