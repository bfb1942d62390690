"""Fused sequence form of the BPSA / BPSA+BPTA neuron (snn_repro/neurons/bpsa.py).

Forward as the step form: u_t = s_{t-1} + x_t, o_t = 1[u_t >= Vth], s_t = lambda * u_t * (1 - o_t).
Backward, with g_s the gradient arriving at s_t and 1/u_t taken only where o_t = 1:
    dL/du_t = g_o_t / u_t * o_t + g_s * lambda * ((1 - o_t) + c * o_t / u_t) = dL/dx_t = dL/ds_{t-1}
Saved: u_t (float32; o_t is recomputed from it), nothing else.
"""
from __future__ import annotations

from typing import Any

import torch

from snn_repro.neurons.backend import kernel_for
from snn_repro.neurons.fused import f32
from snn_repro.neurons.kernel_params import BPSAKernelParams


class BPSASequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, s0, params: BPSAKernelParams):
        kernel = kernel_for(x_seq)
        if kernel is None:
            out, saved, s = _bpsa_forward_python(x_seq, s0, params)
        else:
            out, saved, s = kernel.bpsa_forward(f32(x_seq), f32(s0), params)
            out = out.to(x_seq.dtype)
        ctx.save_for_backward(saved)
        ctx.params, ctx.has_s0, ctx.kernel = params, s0 is not None, kernel
        return out, s

    @staticmethod
    def backward(ctx, g_out, g_sT):
        (saved,) = ctx.saved_tensors
        if ctx.kernel is None:
            return (*_bpsa_backward_python(g_out, g_sT, saved, ctx.params, ctx.has_s0), None)
        g_x, g_s0 = ctx.kernel.bpsa_backward(f32(g_out), f32(g_sT), saved, ctx.params)
        return g_x.to(g_out.dtype), (g_s0 if ctx.has_s0 else None), None


def _bpsa_forward_python(x_seq, s0, p: BPSAKernelParams):
    saved = torch.empty_like(x_seq)
    out = torch.empty_like(x_seq)
    s = torch.zeros_like(x_seq[0]) if s0 is None else s0
    for t in range(x_seq.shape[0]):
        u = torch.add(s, x_seq[t], out=saved[t])
        o = torch.ge(u, p.threshold, out=out[t])
        s = torch.addcmul(u, u, o, value=-1.0).mul_(p.decay)  # (decay * u) * (1 - o) exactly: u or 0, times decay
    return out, saved, s


def _bpsa_backward_python(g_out, g_sT, saved, p: BPSAKernelParams, has_s0):
    g_x = torch.empty_like(g_out)
    g_s = torch.zeros_like(g_out[0]) if g_sT is None else g_sT
    o = torch.empty_like(g_s)
    # the same sum regrouped, few passes per step, written straight into g_x[t]:
    #   g = g_s * lambda ; b = g_o + c * g ; g = g * (1 - o) ; g += b * o / u
    for t in range(saved.shape[0] - 1, -1, -1):
        u = saved[t]
        torch.ge(u, p.threshold, out=o)
        # o / u: 1/u at spikes (u >= Vth > 0 there, so the clamp changes nothing), 0 elsewhere, never 0/0
        inv_u = torch.div(o, u.clamp(min=p.threshold))
        g = torch.mul(g_s, p.decay, out=g_x[t])
        b = torch.add(g_out[t], g, alpha=p.residual) if p.residual else g_out[t]
        g.addcmul_(g, o, value=-1.0)
        g.addcmul_(b, inv_u)
        g_s = g
    return g_x, (g_s.clone() if has_s0 else None)


def bpsa_sequence(neuron, x_seq: torch.Tensor, state: Any = None):
    return BPSASequence.apply(x_seq, state, neuron.kernel_params())
