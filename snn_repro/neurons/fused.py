"""Fused multi-step forms of the neurons: one custom autograd Function per family over a whole sequence.

The reference form of a neuron is its loop over ``step``; autograd then keeps every intermediate of every step
(the sum, the comparison, the reset product, each as float32). A fused form runs the same recurrence inside one
``torch.autograd.Function`` that saves only what its hand-written backward needs, in the smallest exact dtype,
and replays the recurrence backwards in time. Values are bit-identical to ``forward_steps``; gradients equal its
gradients up to float rounding of the summation order.

A family's fused form is its class's ``fused_sequence`` method (see ``Neuron``). Inside a Function the loop over
T runs in one of three places, chosen by ``kernel_for(x)``: the compiled CPU kernels (``kernels_cpu``), the
Triton kernels on CUDA (``kernels_triton``), or the Python loop written below each Function (the reference of
the kernels, used where neither is there). The family's settings travel as one value, the record its neuron's
``kernel_params()`` builds (snn_repro/neurons/kernel_params.py), which each of the three reads in one place.

Where no kernel runs, PLIF and MAP-SNN (learned per-neuron parameters, several patterns) use
``StepRecomputeSequence``: it saves only each step's input and incoming state and, in the backward, recomputes one
step at a time with autograd (the step's own graph, so the same gradient), freeing it before the previous step.
"""
from __future__ import annotations

from typing import Any

import torch

from snn_repro.neurons import backend
from snn_repro.neurons.backend import kernel_for
from snn_repro.neurons.base import Neuron
from snn_repro.neurons.kernel_params import LIFKernelParams
from snn_repro.neurons.surrogate import SURROGATE_GRADS


def fused_form(neuron: Neuron):
    """The neuron's fused sequence form as ``fn(x_seq, state) -> (spikes, state)``, or None (reference loop)."""
    return neuron.fused_sequence if backend.fused_enabled and neuron.fused and neuron.fused_sequence else None


def f32(t: torch.Tensor | None) -> torch.Tensor | None:
    """A contiguous float32 tensor for the kernels."""
    return None if t is None else t.to(torch.float32).contiguous()


# --- IF / LIF ----------------------------------------------------------------------------------------------------
# u_t = s_{t-1} + x_t ; o_t = 1[u_t > Vth] ; s_t = leak * u_t * (1 - o_t)
# Backward, with g_s the gradient arriving at s_t from step t+1 and sg = surrogate'(u_t - Vth):
#   dL/du_t = g_o_t * sg + g_s * leak * (1 - o_t) - [not detach_reset] g_s * leak * u_t * sg
#   dL/dx_t = dL/ds_{t-1} = dL/du_t
# Saved: u_t as float32 in general (o_t = 1[u_t > Vth] is recomputed from it). With a detached reset and the
# rectangular surrogate the backward needs only two bits per element (o_t and the surrogate window), saved as uint8.
SPIKE_BIT, WINDOW_BIT = 1, 2  # code = o_t + 2 * window_t


class LIFSequence(torch.autograd.Function):
    """IF/LIF over a sequence, with the settings of ``params`` (a ``LIFKernelParams``); with ``scale`` (a tensor
    broadcasting over one step, e.g. [C, 1, 1]) the input of each step is ``scale * x_t``, as in the cached AIA
    neuron, without a scaled copy of the whole sequence: the forward scales one step at a time and the backward
    sums dL/dscale step by step (x_seq is then saved). With ``params.associative`` (the plain AIA neuron,
    f(x) = x) dL/dx_t = x_t * dL/du_t (x_seq is then saved)."""

    @staticmethod
    def forward(ctx, x_seq, s0, scale, params: LIFKernelParams):
        kernel = kernel_for(x_seq)
        if kernel is None:
            out, saved, s = _lif_forward_python(x_seq, s0, scale, params)
        else:
            full_scale = None if scale is None else f32(scale.expand(x_seq.shape[1:]))
            out, saved, s = kernel.lif_forward(f32(x_seq), f32(s0), full_scale, params)
            out = out.to(x_seq.dtype)
        # x_seq is kept only for dL/dscale or the associative gradient
        if params.associative:
            ctx.save_for_backward(saved, x_seq)
        else:
            ctx.save_for_backward(saved, *(() if scale is None else (x_seq if ctx.needs_input_grad[2] else None,
                                                                      scale)))
        ctx.params, ctx.has_s0, ctx.kernel = params, s0 is not None, kernel
        return out, s

    @staticmethod
    def backward(ctx, g_out, g_sT):
        saved, *scaling = ctx.saved_tensors
        params = ctx.params
        if params.associative:
            (x_seq,), scale, need_scale_grad = scaling, None, False
        else:
            x_seq, scale = scaling if scaling else (None, None)
            need_scale_grad = bool(scaling) and ctx.needs_input_grad[2]
        if ctx.kernel is None:
            g_x, g_s0, g_scale = _lif_backward_python(g_out, g_sT, saved, x_seq, scale, need_scale_grad,
                                                      ctx.has_s0, params)
        else:
            g_x, g_s0, g_scale = ctx.kernel.lif_backward(
                f32(g_out), f32(g_sT), saved, f32(x_seq) if need_scale_grad or params.associative else None,
                None if scale is None else f32(scale.expand(g_out.shape[1:])), params, need_scale_grad)
            g_x = g_x.to(g_out.dtype)
            g_scale = g_scale.view(g_out.shape[1:]).sum_to_size(scale.shape) if need_scale_grad else None
        return g_x, (g_s0 if ctx.has_s0 else None), g_scale, None


def _lif_forward_python(x_seq, s0, scale, p: LIFKernelParams):
    codes = p.saves_codes
    out = torch.empty_like(x_seq)
    saved = torch.empty(x_seq.shape, dtype=torch.uint8 if codes else x_seq.dtype, device=x_seq.device)
    s = torch.zeros_like(x_seq[0]) if s0 is None else s0
    u = torch.empty_like(s)
    scaled = None if scale is None else torch.empty_like(s)
    compare = torch.gt if p.strict else torch.ge
    for t in range(x_seq.shape[0]):
        # scale * x_t first, then the sum: the rounding of the step form (no fused multiply-add)
        xt = x_seq[t] if scale is None else torch.mul(scale, x_seq[t], out=scaled)
        ut = torch.add(s, xt, out=u if codes else saved[t])
        o = compare(ut, p.threshold, out=out[t])  # spikes as 0/1 straight into the output
        if codes:
            window = torch.lt(torch.sub(ut, p.threshold).abs_(), p.alpha / 2)
            saved[t].copy_(o).add_(window, alpha=WINDOW_BIT)
        # (leak * u) * (1 - o) of the step form, exactly: u - u * o is u or 0
        s = torch.addcmul(ut, ut, o, value=-1.0)
        if p.leak != 1.0:
            s.mul_(p.leak)
    return out, saved, s


def _lif_backward_python(g_out, g_sT, saved, x_seq, scale, need_scale_grad, has_s0, p: LIFKernelParams):
    sg_fn = SURROGATE_GRADS[p.surrogate]
    g_x = torch.empty_like(g_out)
    g_s = torch.zeros_like(g_out[0]) if g_sT is None else g_sT
    g_scale = None
    # dL/du_t goes to two buffers in turn (it is the next g_s); g_x[t] receives scale * dL/du_t or x_t * dL/du_t
    scaling = scale is not None or p.associative
    if scaling:
        g_u = (torch.empty_like(g_s), torch.empty_like(g_s))
        g_scale = torch.zeros_like(scale) if need_scale_grad else None
        xg = torch.empty_like(g_s)
    # few passes over memory per step, written straight into g_x[t]:
    #   g = g_s * leak ; b = g_o - g * u (reset path) ; g = g * (1 - o) ; g += b * sg
    o = torch.empty_like(g_s)
    for t in range(saved.shape[0] - 1, -1, -1):
        g = torch.mul(g_s, p.leak, out=g_u[t % 2] if scaling else g_x[t])
        if p.saves_codes:
            c = saved[t]
            o.copy_(c & SPIKE_BIT)
            g.addcmul_(g, o, value=-1.0)
            g.addcmul_(g_out[t], (c >> 1).to(g.dtype), value=1.0 / p.alpha)  # the window bit as 0/1
        else:
            u = saved[t]
            sg = sg_fn(u - p.threshold, p.alpha)
            (torch.gt if p.strict else torch.ge)(u, p.threshold, out=o)
            b = g_out[t] if p.detach_reset else torch.addcmul(g_out[t], g, u, value=-1.0)
            g.addcmul_(g, o, value=-1.0)
            g.addcmul_(b, sg)
        if scaling:
            if g_scale is not None:  # dL/dscale = sum over steps of x_t * dL/du_t, reduced to scale's shape
                g_scale += torch.mul(g, x_seq[t], out=xg).sum_to_size(scale.shape)
            torch.mul(g, x_seq[t] if p.associative else scale, out=g_x[t])
        g_s = g
    return g_x, g_s.clone() if has_s0 else None, g_scale


def lif_sequence(neuron, x_seq: torch.Tensor, state: Any = None, scale: torch.Tensor | None = None):
    """The LIF recurrence of ``neuron.kernel_params()`` on the input ``x_t``, or on ``scale * x_t`` with ``scale``
    broadcasting over one step (the cached AIA neuron's beta)."""
    return LIFSequence.apply(x_seq, state, scale, neuron.kernel_params())


# --- any neuron with a tensor state: save (x_t, s_{t-1}), recompute each step's graph in the backward ----------------
class StepRecomputeSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, neuron, x_seq, s0, *params):
        s = neuron.init_state(x_seq[0]) if s0 is None else s0
        if not isinstance(s, torch.Tensor) or s.shape != x_seq.shape[1:]:
            raise TypeError(f"{type(neuron).__name__}: step recomputation needs a state tensor shaped like one step")
        states = torch.empty((x_seq.shape[0], *s.shape), dtype=s.dtype, device=s.device)
        out = None
        for t, x in enumerate(x_seq.unbind(0)):
            states[t] = s
            o, s = neuron.step(x, s)
            if out is None:
                out = torch.empty((x_seq.shape[0], *o.shape), dtype=o.dtype, device=o.device)
            out[t] = o
        ctx.save_for_backward(x_seq, states)
        ctx.neuron, ctx.params, ctx.has_s0 = neuron, params, s0 is not None
        return out, s

    @staticmethod
    def backward(ctx, g_out, g_sT):
        x_seq, states = ctx.saved_tensors
        params = ctx.params
        g_x = torch.empty_like(x_seq)
        g_params = [torch.zeros_like(p) for p in params]
        g_s = torch.zeros_like(states[0]) if g_sT is None else g_sT
        for t in range(x_seq.shape[0] - 1, -1, -1):
            with torch.enable_grad():
                x = x_seq[t].detach().requires_grad_()
                s_prev = states[t].detach().requires_grad_()
                o, s = ctx.neuron.step(x, s_prev)
                outs = [(v, g) for v, g in ((o, g_out[t]), (s, g_s)) if v.requires_grad]
                grads = torch.autograd.grad([v for v, _ in outs], (x, s_prev, *params), [g for _, g in outs],
                                            allow_unused=True) if outs else (None,) * (2 + len(params))
            g_x[t] = 0 if grads[0] is None else grads[0]
            g_s = torch.zeros_like(s_prev) if grads[1] is None else grads[1]
            for acc, g in zip(g_params, grads[2:]):
                if g is not None:
                    acc += g
        return (None, g_x, g_s if ctx.has_s0 else None, *g_params)


def step_recompute_sequence(neuron: Neuron, x_seq: torch.Tensor, state: Any = None):
    params = tuple(p for p in neuron.parameters() if p.requires_grad)
    return StepRecomputeSequence.apply(neuron, x_seq, state, *params)
