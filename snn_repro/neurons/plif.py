"""Parametric LIF (PLIF, Fang et al. ICCV 2021): a LIF neuron whose membrane time constant is learned.

One learnable scalar ``w`` per layer; 1/tau = sigmoid(w), so tau stays above 1. With the post-reset potential
v_{t-1} as the state (hard reset to 0):
    decay_input=True  (the public implementation's default, used by the AIA paper's comparison):
        h_t = v_{t-1} + (x_t - v_{t-1}) / tau
    decay_input=False:
        h_t = (1 - 1/tau) * v_{t-1} + x_t
    o_t = H(h_t - Vth),   v_t = h_t * (1 - o_t)
``init_tau`` 2 gives a starting leak 1 - 1/tau = 0.5, the lambda of the AIA paper's LIF baseline.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from snn_repro.neurons.base import Neuron
from snn_repro.neurons.fused_plif import plif_sequence
from snn_repro.neurons.kernel_params import PLIFKernelParams
from snn_repro.neurons.surrogate import SURROGATE_GRADS, spike


class PLIF(Neuron):
    def __init__(self, threshold: float = 1.0, init_tau: float = 2.0, decay_input: bool = True, strict: bool = True,
                 surrogate: str = "rectangular", alpha: float = 1.0, detach_reset: bool = False):
        super().__init__()
        if init_tau <= 1.0:
            raise ValueError(f"init_tau must be > 1 (1/tau = sigmoid(w) < 1), got {init_tau}")
        if surrogate not in SURROGATE_GRADS:
            raise ValueError(f"unknown surrogate {surrogate!r}; known: {sorted(SURROGATE_GRADS)}")
        self.threshold, self.decay_input, self.strict = threshold, decay_input, strict
        self.surrogate, self.alpha, self.detach_reset = surrogate, alpha, detach_reset
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))  # sigmoid(w) = 1 / init_tau

    @property
    def tau(self) -> torch.Tensor:
        return 1.0 / torch.sigmoid(self.w.detach())

    def step(self, x, state):
        k = torch.sigmoid(self.w)  # 1 / tau
        h = state + k * (x - state) if self.decay_input else (1 - k) * state + x
        o = spike(h - self.threshold, self.surrogate, self.alpha, self.strict)
        keep = 1 - (o.detach() if self.detach_reset else o)
        return o, h * keep

    def kernel_params(self) -> PLIFKernelParams:
        return PLIFKernelParams(float(self.threshold), bool(self.decay_input), bool(self.strict), self.surrogate,
                                float(self.alpha), bool(self.detach_reset))

    def fused_sequence(self, x_seq, state=None):
        return plif_sequence(self, x_seq, state)

    def extra_repr(self) -> str:
        return (f"Vth={self.threshold}, tau={float(self.tau):.3f} (learned), decay_input={self.decay_input}, "
                f"surrogate={self.surrogate}({self.alpha})")
