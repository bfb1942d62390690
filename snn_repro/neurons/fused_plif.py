"""Sequence forms of the PLIF neuron (snn_repro/neurons/plif.py).

With a compiled kernel (``backend.kernel_for``): one Function whose forward saves h_t (the potential before the
spike, float32) and whose backward is written out (k = 1/tau = sigmoid(w), v the post-reset state):
    dL/dh_t = g_o_t * sg(h_t - Vth) + g_v * (1 - o_t) - [not detach_reset] g_v * h_t * sg
    dL/dx_t = k * dL/dh_t (decay_input) or dL/dh_t ;  dL/dv_{t-1} = (1 - k) * dL/dh_t
    dL/dk = sum_t dL/dh_t * (x_t - v_{t-1})  (decay_input)  or  - sum_t dL/dh_t * v_{t-1} ;  dL/dw = dL/dk k (1 - k)
The input x is saved too when decay_input (dL/dk needs it). Without a kernel, the step recomputation of fused.py
(each step's input and incoming potential saved; the time constant's gradient from the recomputed steps).
"""
from __future__ import annotations

from typing import Any

import torch

from snn_repro.neurons.backend import kernel_for
from snn_repro.neurons.fused import f32, step_recompute_sequence
from snn_repro.neurons.kernel_params import PLIFKernelParams


class PLIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, s0, w, kernel, params: PLIFKernelParams):
        k = torch.sigmoid(w.detach()).to(torch.float32)
        x32, s0_32 = f32(x_seq), f32(s0)
        out, saved, s = kernel.plif_forward(x32, s0_32, k, params)
        out = out.to(x_seq.dtype)
        ctx.save_for_backward(saved, x32 if params.decay_input else None, s0_32, k)
        ctx.kernel, ctx.params, ctx.has_s0 = kernel, params, s0 is not None
        return out, s

    @staticmethod
    def backward(ctx, g_out, g_sT):
        saved, x32, s0, k = ctx.saved_tensors
        g_x, g_s0, g_k = ctx.kernel.plif_backward(f32(g_out), f32(g_sT), saved,
                                                  x32 if ctx.params.decay_input else saved[:0], s0, k, ctx.params)
        g_w = g_k.sum() * (k * (1 - k))
        return g_x.to(g_out.dtype), (g_s0 if ctx.has_s0 else None), g_w, None, None


def plif_sequence(neuron, x_seq: torch.Tensor, state: Any = None):
    kernel = kernel_for(x_seq)
    if kernel is None:
        return step_recompute_sequence(neuron, x_seq, state)
    return PLIFSequence.apply(x_seq, state, neuron.w, kernel, neuron.kernel_params())
