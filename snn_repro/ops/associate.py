"""``{op: associate}``: AIA's associative gradient f'(x) = x applied where the op sits (identity forward).

The AIA neuron (snn_repro/neurons/aia.py) applies it to the input it receives, which in a Conv -> BatchNorm ->
neuron network is the BatchNorm output (zero mean per channel: the gradient changes sign where it is negative).
The paper's x is the dendritic input sum_j w_ij o_j (it has no BatchNorm): placing this op right after the conv,
before the BatchNorm, with a LIF neuron after it, multiplies the gradient by that raw synaptic input instead
(conf/arch/vgg9_aia_raw.yaml, experiments aia/*_aia_raw_input).
"""
from __future__ import annotations

import torch
from torch import nn

from snn_repro.layers import register_op
from snn_repro.neurons.aia import associate


class Associate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return associate(x, "identity")

    def extra_repr(self) -> str:
        return "f'(x)=x on this input"


@register_op("associate")
def _associate(spec, in_shape, arch):
    return Associate()
