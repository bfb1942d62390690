"""Triton kernels of the fused neurons (CUDA): one forward and one backward per family, each looping over T inside.

Each program takes BLOCK neighbouring elements of one step and walks them through all T steps with the state in
registers; spikes, what the backward needs and the gradients are each written once. The functions have the
signatures of the CPU ops (``torch.ops.snn_cpu.*``, see kernels_cpu.cpp), so the autograd functions of fused.py
call either. The forward kernels are compiled without fused multiply-add (``enable_fp_fusion=False``), so that
scale * x + s rounds as the step form's two operations do.

Without a GPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``), which is how the tests check them;
without the ``triton`` package ``available()`` is False and the neurons use the other paths.
"""
from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the project runs without triton
    triton = None

BLOCK = 256
SURROGATE_CODES = {"rectangular": 0, "sigmoid": 1, "atan": 2}


def available() -> bool:
    return triton is not None and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")


if triton is not None:

    @triton.jit
    def _surrogate_grad(v, alpha, SURROGATE: tl.constexpr):
        if SURROGATE == 0:
            sg = tl.where(tl.abs(v) < alpha / 2.0, 1.0 / alpha, 0.0)
        elif SURROGATE == 1:
            s = 1.0 / (1.0 + tl.exp(-alpha * v))
            sg = alpha * s * (1.0 - s)
        else:
            a = 1.5707963267948966 * alpha * v
            sg = alpha / 2.0 / (1.0 + a * a)
        return sg

    @triton.jit
    def _lif_forward_kernel(x_ptr, s0_ptr, scale_ptr, out_ptr, saved_ptr, sT_ptr, T, N, threshold, leak,
                            half_window, HAS_S0: tl.constexpr, HAS_SCALE: tl.constexpr, STRICT: tl.constexpr,
                            CODES: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        if HAS_S0:
            s = tl.load(s0_ptr + offs, mask=mask, other=0.0)
        else:
            s = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_SCALE:
            sc = tl.load(scale_ptr + offs, mask=mask, other=0.0)
        for t in range(T):
            idx = t * N + offs
            xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
            if HAS_SCALE:
                xt = sc * xt
            u = s + xt
            if STRICT:
                spike = u > threshold
            else:
                spike = u >= threshold
            o = spike.to(tl.float32)
            tl.store(out_ptr + idx, o, mask=mask)
            if CODES:
                window = (tl.abs(u - threshold) < half_window).to(tl.uint8)
                tl.store(saved_ptr + idx, spike.to(tl.uint8) + 2 * window, mask=mask)
            else:
                tl.store(saved_ptr + idx, u, mask=mask)
            s = (leak * u) * (1.0 - o)
        tl.store(sT_ptr + offs, s, mask=mask)

    @triton.jit
    def _lif_backward_kernel(go_ptr, gsT_ptr, saved_ptr, x_ptr, scale_ptr, gx_ptr, gs0_ptr, gscale_ptr, T, N,
                             threshold, leak, alpha, HAS_GST: tl.constexpr, HAS_SCALE: tl.constexpr,
                             SCALE_GRAD: tl.constexpr, STRICT: tl.constexpr, DETACH: tl.constexpr,
                             CODES: tl.constexpr, SURROGATE: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        if HAS_GST:
            gs = tl.load(gsT_ptr + offs, mask=mask, other=0.0)
        else:
            gs = tl.zeros([BLOCK], dtype=tl.float32)
        gscale = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_SCALE:
            sc = tl.load(scale_ptr + offs, mask=mask, other=0.0)
        for i in range(T):
            idx = (T - 1 - i) * N + offs
            go = tl.load(go_ptr + idx, mask=mask, other=0.0)
            g = gs * leak
            if CODES:
                c = tl.load(saved_ptr + idx, mask=mask, other=0)
                o = (c & 1).to(tl.float32)
                window = (c >> 1).to(tl.float32)
                gu = (g - g * o) + go * (window / alpha)
            else:
                u = tl.load(saved_ptr + idx, mask=mask, other=0.0)
                sg = _surrogate_grad(u - threshold, alpha, SURROGATE)
                if STRICT:
                    o = (u > threshold).to(tl.float32)
                else:
                    o = (u >= threshold).to(tl.float32)
                if DETACH:
                    b = go
                else:
                    b = go - g * u
                gu = (g - g * o) + b * sg
            if HAS_SCALE:
                if SCALE_GRAD:
                    gscale += gu * tl.load(x_ptr + idx, mask=mask, other=0.0)
                tl.store(gx_ptr + idx, gu * sc, mask=mask)
            else:
                tl.store(gx_ptr + idx, gu, mask=mask)
            gs = gu
        tl.store(gs0_ptr + offs, gs, mask=mask)
        if SCALE_GRAD:
            tl.store(gscale_ptr + offs, gscale, mask=mask)

    @triton.jit
    def _bpsa_forward_kernel(x_ptr, s0_ptr, out_ptr, saved_ptr, sT_ptr, T, N, threshold, decay,
                             HAS_S0: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        if HAS_S0:
            s = tl.load(s0_ptr + offs, mask=mask, other=0.0)
        else:
            s = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):
            idx = t * N + offs
            u = s + tl.load(x_ptr + idx, mask=mask, other=0.0)
            o = (u >= threshold).to(tl.float32)
            tl.store(out_ptr + idx, o, mask=mask)
            tl.store(saved_ptr + idx, u, mask=mask)
            s = (decay * u) * (1.0 - o)
        tl.store(sT_ptr + offs, s, mask=mask)

    @triton.jit
    def _bpsa_backward_kernel(go_ptr, gsT_ptr, saved_ptr, gx_ptr, gs0_ptr, T, N, threshold, decay, residual,
                              HAS_GST: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        if HAS_GST:
            gs = tl.load(gsT_ptr + offs, mask=mask, other=0.0)
        else:
            gs = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(T):
            idx = (T - 1 - i) * N + offs
            u = tl.load(saved_ptr + idx, mask=mask, other=1.0)
            spike = u >= threshold
            o = spike.to(tl.float32)
            inv_u = tl.where(spike, 1.0 / tl.where(spike, u, 1.0), 0.0)
            g = gs * decay
            gu = (g - g * o) + (tl.load(go_ptr + idx, mask=mask, other=0.0) + residual * g) * inv_u
            tl.store(gx_ptr + idx, gu, mask=mask)
            gs = gu
        tl.store(gs0_ptr + offs, gs, mask=mask)


def _grid(n: int):
    return (triton.cdiv(max(n, 1), BLOCK),)


def _step_numel(x: torch.Tensor) -> int:
    return x[0].numel() if x.shape[0] else 0


def _dummy(like: torch.Tensor) -> torch.Tensor:
    return torch.empty(1, dtype=torch.float32, device=like.device)


def lif_forward(x, s0, scale, threshold, leak, strict, save_codes, alpha):
    T, N = x.shape[0], _step_numel(x)
    out = torch.empty_like(x)
    saved = torch.empty(x.shape, dtype=torch.uint8 if save_codes else torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    _lif_forward_kernel[_grid(N)](
        x, _dummy(x) if s0 is None else s0, _dummy(x) if scale is None else scale, out, saved, sT, T, N,
        float(threshold), float(leak), float(alpha / 2), HAS_S0=s0 is not None, HAS_SCALE=scale is not None,
        STRICT=bool(strict), CODES=bool(save_codes), BLOCK=BLOCK, enable_fp_fusion=False)
    return out, saved, sT


def lif_backward(g_out, g_sT, saved, x, scale, threshold, leak, strict, detach_reset, surrogate, alpha,
                 need_scale_grad):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    scale_grad = bool(need_scale_grad and scale is not None)
    g_scale = torch.empty(N if scale_grad else 0, dtype=torch.float32, device=g_out.device)
    d = _dummy(g_out)
    _lif_backward_kernel[_grid(N)](
        g_out, d if g_sT is None else g_sT, saved, d if x is None else x, d if scale is None else scale, g_x, g_s0,
        g_scale if scale_grad else d, T, N, float(threshold), float(leak), float(alpha),
        HAS_GST=g_sT is not None, HAS_SCALE=scale is not None, SCALE_GRAD=scale_grad, STRICT=bool(strict),
        DETACH=bool(detach_reset), CODES=saved.dtype == torch.uint8, SURROGATE=int(surrogate), BLOCK=BLOCK)
    return g_x, g_s0, g_scale


def bpsa_forward(x, s0, threshold, decay):
    T, N = x.shape[0], _step_numel(x)
    out, saved = torch.empty_like(x), torch.empty(x.shape, dtype=torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    _bpsa_forward_kernel[_grid(N)](x, _dummy(x) if s0 is None else s0, out, saved, sT, T, N, float(threshold),
                                   float(decay), HAS_S0=s0 is not None, BLOCK=BLOCK, enable_fp_fusion=False)
    return out, saved, sT


def bpsa_backward(g_out, g_sT, saved, threshold, decay, residual):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    _bpsa_backward_kernel[_grid(N)](g_out, _dummy(g_out) if g_sT is None else g_sT, saved, g_x, g_s0, T, N,
                                    float(threshold), float(decay), float(residual), HAS_GST=g_sT is not None,
                                    BLOCK=BLOCK)
    return g_x, g_s0
