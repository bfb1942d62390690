"""BPSA and BPSA+BPTA neurons (Shen, Zhao, Zeng): LIF with hand-shaped spatial and temporal gradients.

Forward (values; the reference code's node, threshold 0.5, decay lambda 0.9):
    u_t = s_{t-1} + x_t                 (s_0 = 0)
    o_t = 1[u_t >= Vth]
    s_t = lambda * u_t * (1 - o_t)      (reset to 0 where spiking, then decay)

Backward (what ``step`` implements, one custom autograd function per step):
    d o_t / d u_t     = o_t / u_t                                  BPSA, paper eq. 9: 1/u at spikes, 0 elsewhere
    d s_t / d u_t     = lambda * (1 - o_t) + lambda * c * o_t / u_t
    d u_t / d x_t     = d u_t / d s_{t-1} = 1
The reset carries no gradient (d s_t / d o_t = 0). With c = 0 (BPSA alone) the temporal path is cut at a spike,
as in the paper's eq. 8. BPTA (c > 0) is the temporal residual path of the paper's eq. 10: across a spike,
d u_{t+1} / d u_t = lambda * c * g'(u_t) with g'(u_t) = 1/u_t, so that
    d o_{t+1} / d o_t = g'(u_{t+1}) * lambda * (1 - o_t) / g'(u_t) + lambda * c * g'(u_{t+1}).
The reference code uses c = 0.2; the paper text says alpha = 0.8.

Every BPSA node follows Conv -> BatchNorm -> ReLU, so u >= 0; at a spike u >= Vth > 0 and 1/u is finite.
The baseline of the paper (rectangular surrogate, gradient through the reset) is the ``LIF`` class with threshold
0.5, leak 0.9, non-strict threshold, ``surrogate: rectangular``, ``alpha: 1`` (conf/neuron/bpsa_baseline.yaml).
"""
from __future__ import annotations

import torch

from snn_repro.neurons.base import Neuron
from snn_repro.neurons.fused_bpsa import bpsa_sequence
from snn_repro.neurons.kernel_params import BPSAKernelParams


class _BPSAStep(torch.autograd.Function):
    """u -> (o, s): spikes and the post-reset, decayed potential, with the gradients of the module docstring."""

    @staticmethod
    def forward(ctx, u, threshold, decay, residual):
        o = (u >= threshold).to(u.dtype)
        ctx.save_for_backward(u, o)
        ctx.decay, ctx.residual = decay, residual
        return o, decay * u * (1 - o)

    @staticmethod
    def backward(ctx, grad_o, grad_s):
        u, o = ctx.saved_tensors
        # 1/u only where spiking; where(...) keeps 1/0 of silent neurons out of the result
        inv_u = torch.where(o.bool(), 1 / u, torch.zeros_like(u))
        grad_u = grad_o * inv_u + grad_s * ctx.decay * ((1 - o) + ctx.residual * inv_u)
        return grad_u, None, None, None


class BPSA(Neuron):
    """BPSA node; ``residual`` > 0 adds BPTA's temporal residual path (c in the module docstring)."""

    def __init__(self, threshold: float = 0.5, decay: float = 0.9, residual: float = 0.0):
        super().__init__()
        if threshold <= 0:
            raise ValueError(f"BPSA needs a positive threshold (its gradient is 1/u at spikes), got {threshold}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if residual < 0:
            raise ValueError(f"residual must be >= 0, got {residual}")
        self.threshold, self.decay, self.residual = threshold, decay, residual

    def step(self, x, state):
        return _BPSAStep.apply(state + x, self.threshold, self.decay, self.residual)

    def kernel_params(self) -> BPSAKernelParams:
        return BPSAKernelParams(float(self.threshold), float(self.decay), float(self.residual))

    def fused_sequence(self, x_seq, state=None):
        return bpsa_sequence(self, x_seq, state)

    def extra_repr(self) -> str:
        kind = f"BPSA+BPTA(c={self.residual})" if self.residual else "BPSA"
        return f"{kind}, Vth={self.threshold}, decay={self.decay}, spike: u >= Vth"
