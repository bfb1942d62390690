"""Sequence form of the MAP-SNN neurons (snn_repro/neurons/map.py).

With a compiled kernel (``backend.kernel_for``): one Function whose forward saves m_t, the potential after
integration (float32), and whose backward is written out (straight-through ds/dn* = [m > 0], g_u the gradient
arriving at u_t, v, q, d the clamped Vth, q and decay of each neuron):
    g_reset = -g_u d ;  g_n = [m > 0] (g_s + g_reset dreset/ds)
    dL/dm = g_u d + g_n dn*/dm (+ g_reset s, SSP: reset = m s) = dL/du_{t-1} ;  dL/dx = dL/dm dFilter/dx
    dL/dv = sum_t g_n dn*/dv + g_reset dreset/dv ;  dL/dq likewise (SFA) ;  dL/dd = sum_t g_u (m - reset)
The spike count, the reset and the filtered input are recomputed from m_t (and x_t, saved with the swish filter).
The clamps of Vth, q and the decay stay outside the Function (torch's own, on the parameters). Where neither Vth
nor q is learned (the tables' setting), the kernels leave out their sums (for SFA, a log per element and step).

The SSP and linear patterns use only +, -, *, / and floor, so their spikes and states are bit-identical to the step
form. SFA's log and q^s, and the swish filter's exp, round as the C library's (CPU) or the GPU's math functions do,
torch's step form as its own vectorised ones: states agree to float rounding and spike counts agree except where
n* lies within rounding of an integer.

Without a kernel: the step recomputation of fused.py (each step's input and incoming potential saved; the learned
parameters' gradients from the recomputed steps).
"""
from __future__ import annotations

from typing import Any

import torch

from snn_repro.neurons.backend import kernel_for
from snn_repro.neurons.fused import f32, step_recompute_sequence
from snn_repro.neurons.kernel_params import MAPKernelParams


class MAPSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, s0, v_th, q, decay, kernel, params: MAPKernelParams):
        step = x_seq.shape[1:]
        v, d = f32(v_th.detach().expand(step)), f32(decay.detach().expand(step))
        qe = lq = None
        if params.pattern == "sfa":
            qe = f32(q.detach().expand(step))
            lq = torch.log(qe)
        x32 = f32(x_seq)
        out, saved, s = kernel.map_forward(x32, f32(s0), v, qe, lq, d, params)
        out = out.to(x_seq.dtype)
        ctx.save_for_backward(saved, x32 if params.swish else None, v, qe, lq, d)
        ctx.kernel, ctx.params, ctx.has_s0 = kernel, params, s0 is not None
        ctx.shapes = (v_th.shape, q.shape, decay.shape)
        return out, s

    @staticmethod
    def backward(ctx, g_out, g_sT):
        saved, x32, v, qe, lq, d = ctx.saved_tensors
        v_shape, q_shape, d_shape = ctx.shapes
        need = ctx.needs_input_grad
        g_x, g_s0, g_v, g_q, g_d = ctx.kernel.map_backward(f32(g_out), f32(g_sT), saved, x32, v, qe, lq, d,
                                                           ctx.params, need[2] or need[3])
        step = g_out.shape[1:]

        def reduce(g, shape, needed):
            return g.view(step).sum_to_size(shape) if needed else None

        return (g_x.to(g_out.dtype), g_s0 if ctx.has_s0 else None, reduce(g_v, v_shape, need[2]),
                reduce(g_q, q_shape, need[3] and ctx.params.pattern == "sfa"), reduce(g_d, d_shape, need[4]),
                None, None)


def map_sequence(neuron, x_seq: torch.Tensor, state: Any = None):
    kernel = kernel_for(x_seq)
    if kernel is None:
        return step_recompute_sequence(neuron, x_seq, state)
    v_th, q, decay = neuron.clamped_parameters()
    return MAPSequence.apply(x_seq, state, v_th, q, decay, kernel, neuron.kernel_params())
