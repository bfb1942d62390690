"""Triton kernels of the fused neurons (CUDA): one forward and one backward per family, each looping over T inside.

Each program takes BLOCK neighbouring elements of one step and walks them through all T steps with the state in
registers; spikes, what the backward needs and the gradients are each written once. The wrappers have the
signatures of the CPU wrappers (kernels_cpu.py: the tensors, then the family's record of kernel_params.py), so the
autograd functions of fused.py call either. The forward kernels are compiled without fused multiply-add
(``enable_fp_fusion=False``), so that scale * x + s rounds as the step form's two operations do.

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

# elements of a step per program: 256 on a GPU; Triton's interpreter runs one program after another in Python, each
# on numpy arrays, so there a block of 4096 runs the same elementwise code in a sixteenth of the programs
BLOCK = 4096 if os.environ.get("TRITON_INTERPRET") == "1" else 256


def available() -> bool:
    return triton is not None and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")


if triton is not None:

    @triton.jit
    def _initial(ptr, offs, mask, GIVEN: tl.constexpr, BLOCK: tl.constexpr):
        """A state (or the gradient arriving at the last one) for this block: read from ``ptr``, or zeros."""
        if GIVEN:
            value = tl.load(ptr + offs, mask=mask, other=0.0)
        else:
            value = tl.zeros([BLOCK], dtype=tl.float32)
        return value

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
    def _fires(u, threshold, STRICT: tl.constexpr):
        if STRICT:
            spike = u > threshold
        else:
            spike = u >= threshold
        return spike

    @triton.jit
    def _through_reset(go, g, u, threshold, alpha, STRICT: tl.constexpr, DETACH: tl.constexpr,
                       SURROGATE: tl.constexpr):
        """dL/du of a hard reset o = H(u - Vth), s = u (1 - o) (times a leak already in g = dL/ds * leak):
        go sg + g (1 - o) - [not detached] g u sg."""
        sg = _surrogate_grad(u - threshold, alpha, SURROGATE)
        o = _fires(u, threshold, STRICT).to(tl.float32)
        if DETACH:
            b = go
        else:
            b = go - g * u
        return (g - g * o) + b * sg

    @triton.jit
    def _lif_forward_kernel(x_ptr, s0_ptr, scale_ptr, out_ptr, saved_ptr, sT_ptr, T, N, threshold, leak,
                            half_window, HAS_S0: tl.constexpr, HAS_SCALE: tl.constexpr, STRICT: tl.constexpr,
                            CODES: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        s = _initial(s0_ptr, offs, mask, HAS_S0, BLOCK)
        if HAS_SCALE:
            sc = tl.load(scale_ptr + offs, mask=mask, other=0.0)
        for t in range(T):
            idx = t * N + offs
            xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
            if HAS_SCALE:
                xt = sc * xt
            u = s + xt
            spike = _fires(u, threshold, STRICT)
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
                             SCALE_GRAD: tl.constexpr, ASSOC: tl.constexpr, STRICT: tl.constexpr,
                             DETACH: tl.constexpr, CODES: tl.constexpr, SURROGATE: tl.constexpr,
                             BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        gs = _initial(gsT_ptr, offs, mask, HAS_GST, BLOCK)
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
                gu = _through_reset(go, g, u, threshold, alpha, STRICT, DETACH, SURROGATE)
            if HAS_SCALE:
                if SCALE_GRAD:
                    gscale += gu * tl.load(x_ptr + idx, mask=mask, other=0.0)
                tl.store(gx_ptr + idx, gu * sc, mask=mask)
            elif ASSOC:  # AIA's associative gradient: dL/dx_t = x_t dL/du_t
                tl.store(gx_ptr + idx, gu * tl.load(x_ptr + idx, mask=mask, other=0.0), mask=mask)
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
        s = _initial(s0_ptr, offs, mask, HAS_S0, BLOCK)
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
        gs = _initial(gsT_ptr, offs, mask, HAS_GST, BLOCK)
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

    @triton.jit
    def _plif_forward_kernel(x_ptr, s0_ptr, k_ptr, out_ptr, saved_ptr, sT_ptr, T, N, threshold,
                             HAS_S0: tl.constexpr, DECAY_INPUT: tl.constexpr, STRICT: tl.constexpr,
                             BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        k = tl.load(k_ptr)  # 1 / tau, read on the device: no host synchronisation
        v = _initial(s0_ptr, offs, mask, HAS_S0, BLOCK)
        for t in range(T):
            idx = t * N + offs
            xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
            if DECAY_INPUT:
                h = v + k * (xt - v)
            else:
                h = (1.0 - k) * v + xt
            o = _fires(h, threshold, STRICT).to(tl.float32)
            tl.store(out_ptr + idx, o, mask=mask)
            tl.store(saved_ptr + idx, h, mask=mask)
            v = h * (1.0 - o)
        tl.store(sT_ptr + offs, v, mask=mask)

    @triton.jit
    def _plif_backward_kernel(go_ptr, gsT_ptr, saved_ptr, x_ptr, s0_ptr, k_ptr, gx_ptr, gs0_ptr, gk_ptr, T, N,
                              last_step, threshold, alpha, HAS_GST: tl.constexpr, HAS_S0: tl.constexpr,
                              DECAY_INPUT: tl.constexpr, STRICT: tl.constexpr, DETACH: tl.constexpr,
                              SURROGATE: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        k = tl.load(k_ptr)
        gv = _initial(gsT_ptr, offs, mask, HAS_GST, BLOCK)
        v0 = _initial(s0_ptr, offs, mask, HAS_S0, BLOCK)
        gk = tl.zeros([BLOCK], dtype=tl.float32)
        h = tl.load(saved_ptr + last_step * N + offs, mask=mask, other=0.0)  # last_step = max(T - 1, 0)
        for i in range(T):
            t = T - 1 - i
            idx = t * N + offs
            gh = _through_reset(tl.load(go_ptr + idx, mask=mask, other=0.0), gv, h, threshold, alpha, STRICT, DETACH,
                                SURROGATE)
            # the state entering step t, recomputed from the saved h_{t-1} (carried to the next iteration)
            first = (offs * 0 + t) == 0
            h_prev = tl.load(saved_ptr + tl.where(first, idx, idx - N), mask=mask, other=0.0)
            v_prev = tl.where(first, v0, tl.where(_fires(h_prev, threshold, STRICT), 0.0, h_prev))
            if DECAY_INPUT:
                gk += gh * (tl.load(x_ptr + idx, mask=mask, other=0.0) - v_prev)
                tl.store(gx_ptr + idx, gh * k, mask=mask)
            else:
                gk -= gh * v_prev
                tl.store(gx_ptr + idx, gh, mask=mask)
            gv = gh * (1.0 - k)
            h = h_prev
        tl.store(gs0_ptr + offs, gv, mask=mask)
        tl.store(gk_ptr + offs, gk, mask=mask)

    # MAP-SNN (see kernels_cpu.cpp for the recurrence); PATTERN 0 SSP, 1 linear MSP, 2 MSP with SFA
    @triton.jit
    def _map_parameters(v_ptr, q_ptr, lq_ptr, d_ptr, offs, mask, PATTERN: tl.constexpr):
        """The block's per-neuron Vth, q, log q and decay (q and log q only for SFA; elsewhere unused)."""
        v = tl.load(v_ptr + offs, mask=mask, other=1.0)
        d = tl.load(d_ptr + offs, mask=mask, other=0.0)
        if PATTERN == 2:
            q = tl.load(q_ptr + offs, mask=mask, other=2.0)
            lq = tl.load(lq_ptr + offs, mask=mask, other=1.0)
        else:
            q = v
            lq = v
        return v, q, lq, d

    @triton.jit
    def _swish_gate(x, beta):
        return 1.0 / (1.0 + tl.exp(-(beta * x)))

    @triton.jit
    def _map_spikes(m, v, q, lq, PATTERN: tl.constexpr):
        active = (m > 0.0).to(tl.float32)
        relu = tl.maximum(m, 0.0)
        if PATTERN == 2:
            s = tl.floor(tl.log(relu / v * (q - 1.0) + 1.0) / lq) * active
            qs = tl.exp(s * lq)  # q^s (the interpreter has no pow)
            reset = v * (qs - 1.0) / (q - 1.0)
        elif PATTERN == 1:
            s = tl.floor(relu / v) * active
            qs = s
            reset = v * s
        else:
            s = tl.minimum(tl.floor(relu / v), 1.0) * active
            qs = s
            reset = m * s
        return s, reset, qs

    @triton.jit
    def _map_forward_kernel(x_ptr, s0_ptr, v_ptr, q_ptr, lq_ptr, d_ptr, out_ptr, saved_ptr, sT_ptr, T, N, beta,
                            HAS_S0: tl.constexpr, PATTERN: tl.constexpr, SWISH: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        u = _initial(s0_ptr, offs, mask, HAS_S0, BLOCK)
        v, q, lq, d = _map_parameters(v_ptr, q_ptr, lq_ptr, d_ptr, offs, mask, PATTERN)
        for t in range(T):
            idx = t * N + offs
            xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
            if SWISH:
                xt = xt * _swish_gate(xt, beta)
            m = u + xt
            s, reset, qs = _map_spikes(m, v, q, lq, PATTERN)
            tl.store(out_ptr + idx, s, mask=mask)
            tl.store(saved_ptr + idx, m, mask=mask)
            u = (m - reset) * d
        tl.store(sT_ptr + offs, u, mask=mask)

    @triton.jit
    def _map_backward_kernel(go_ptr, guT_ptr, saved_ptr, x_ptr, v_ptr, q_ptr, lq_ptr, d_ptr, gx_ptr, gu0_ptr, gv_ptr,
                             gq_ptr, gd_ptr, T, N, beta, HAS_GST: tl.constexpr, PATTERN: tl.constexpr,
                             SWISH: tl.constexpr, NEED_VQ: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        gu = _initial(guT_ptr, offs, mask, HAS_GST, BLOCK)
        v, q, lq, d = _map_parameters(v_ptr, q_ptr, lq_ptr, d_ptr, offs, mask, PATTERN)
        gv = tl.zeros([BLOCK], dtype=tl.float32)
        gq = tl.zeros([BLOCK], dtype=tl.float32)
        gd = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(T):
            idx = (T - 1 - i) * N + offs
            m = tl.load(saved_ptr + idx, mask=mask, other=0.0)
            go = tl.load(go_ptr + idx, mask=mask, other=0.0)
            s, reset, qs = _map_spikes(m, v, q, lq, PATTERN)
            active = m > 0.0
            relu = tl.maximum(m, 0.0)
            g_reset = -(gu * d)
            gd += gu * (m - reset)
            gm = gu * d
            if PATTERN == 2:
                qm1 = q - 1.0
                y = relu / v * qm1 + 1.0
                inv = 1.0 / (y * lq)
                gn = tl.where(active, go + g_reset * (v * qs * lq / qm1), 0.0)
                gm += gn * (inv * qm1 / v)
                if NEED_VQ:
                    gv += gn * (-inv * qm1 * relu / (v * v)) + g_reset * ((qs - 1.0) / qm1)
                    gq += gn * (inv * (relu / v) - tl.log(y) / (lq * lq * q)) + g_reset * (
                        v * (s * qs / q * qm1 - (qs - 1.0)) / (qm1 * qm1))
            elif PATTERN == 1:
                gn = tl.where(active, go + g_reset * v, 0.0)
                gm += gn / v
                if NEED_VQ:
                    gv += gn * (-relu / (v * v)) + g_reset * s
            else:
                gn = tl.where(active, go + g_reset * m, 0.0)
                gm += gn / v + g_reset * s
                if NEED_VQ:
                    gv += gn * (-relu / (v * v))
            if SWISH:
                xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
                sig = _swish_gate(xt, beta)
                tl.store(gx_ptr + idx, gm * (sig + xt * beta * sig * (1.0 - sig)), mask=mask)
            else:
                tl.store(gx_ptr + idx, gm, mask=mask)
            gu = gm
        tl.store(gu0_ptr + offs, gu, mask=mask)
        tl.store(gv_ptr + offs, gv, mask=mask)
        tl.store(gq_ptr + offs, gq, mask=mask)
        tl.store(gd_ptr + offs, gd, mask=mask)


class KernelFailure(RuntimeError):
    """A Triton kernel that did not compile or launch on this GPU, named with the way around it."""


def _device(t: torch.Tensor) -> str:
    if t.is_cuda:
        major, minor = torch.cuda.get_device_capability(t.device)
        return f"{torch.cuda.get_device_name(t.device)} (sm_{major}{minor})"
    return "Triton's interpreter (CPU)"


def _launch(kernel, n: int, *args, **kwargs) -> None:
    """``kernel`` over ``n`` elements of a step. A failure to compile or launch it stops the run with one line:
    which kernel, which GPU, and the environment variable that runs the Python loop instead (no silent fallback:
    the two paths differ in speed and memory, and a run should not change path unnoticed)."""
    try:
        kernel[(triton.cdiv(max(n, 1), BLOCK),)](*args, **kwargs)
    except Exception as err:  # noqa: BLE001  whatever Triton raised, it is named in the line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise KernelFailure(f"the Triton kernel {kernel.__name__} failed on {_device(args[0])} "
                            f"({type(err).__name__}: {first}); set SNN_REPRO_NEURON_KERNELS=python to run the "
                            f"neurons' Python loop instead") from None


def _step_numel(x: torch.Tensor) -> int:
    return x[0].numel() if x.shape[0] else 0


def _dummy(like: torch.Tensor) -> torch.Tensor:
    return torch.empty(1, dtype=torch.float32, device=like.device)


# The wrappers: the signatures of kernels_cpu.py's (the tensors, then the family's record of kernel_params.py ``p``);
# each is where the Triton path reads a record, passing the kernel's scalars and flags.
def lif_forward(x, s0, scale, p):
    T, N = x.shape[0], _step_numel(x)
    out = torch.empty_like(x)
    saved = torch.empty(x.shape, dtype=torch.uint8 if p.saves_codes else torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    _launch(_lif_forward_kernel, N,
            x, _dummy(x) if s0 is None else s0, _dummy(x) if scale is None else scale, out, saved, sT, T, N,
            float(p.threshold), float(p.leak), float(p.alpha / 2), HAS_S0=s0 is not None, HAS_SCALE=scale is not None,
            STRICT=bool(p.strict), CODES=bool(p.saves_codes), BLOCK=BLOCK, enable_fp_fusion=False)
    return out, saved, sT


def lif_backward(g_out, g_sT, saved, x, scale, p, need_scale_grad):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    scale_grad = bool(need_scale_grad and scale is not None)
    g_scale = torch.empty(N if scale_grad else 0, dtype=torch.float32, device=g_out.device)
    d = _dummy(g_out)
    _launch(_lif_backward_kernel, N,
            g_out, d if g_sT is None else g_sT, saved, d if x is None else x, d if scale is None else scale, g_x, g_s0,
            g_scale if scale_grad else d, T, N, float(p.threshold), float(p.leak), float(p.alpha),
            HAS_GST=g_sT is not None, HAS_SCALE=scale is not None, SCALE_GRAD=scale_grad, ASSOC=bool(p.associative),
            STRICT=bool(p.strict), DETACH=bool(p.detach_reset), CODES=saved.dtype == torch.uint8,
            SURROGATE=p.surrogate_code, BLOCK=BLOCK)
    return g_x, g_s0, g_scale


def bpsa_forward(x, s0, p):
    T, N = x.shape[0], _step_numel(x)
    out, saved = torch.empty_like(x), torch.empty(x.shape, dtype=torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    _launch(_bpsa_forward_kernel, N, x, _dummy(x) if s0 is None else s0, out, saved, sT, T, N, float(p.threshold),
            float(p.decay), HAS_S0=s0 is not None, BLOCK=BLOCK, enable_fp_fusion=False)
    return out, saved, sT


def bpsa_backward(g_out, g_sT, saved, p):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    _launch(_bpsa_backward_kernel, N, g_out, _dummy(g_out) if g_sT is None else g_sT, saved, g_x, g_s0, T, N,
            float(p.threshold), float(p.decay), float(p.residual), HAS_GST=g_sT is not None, BLOCK=BLOCK)
    return g_x, g_s0


def plif_forward(x, s0, k, p):
    T, N = x.shape[0], _step_numel(x)
    out, saved = torch.empty_like(x), torch.empty(x.shape, dtype=torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    _launch(_plif_forward_kernel, N, x, _dummy(x) if s0 is None else s0, k, out, saved, sT, T, N,
            float(p.threshold), HAS_S0=s0 is not None, DECAY_INPUT=bool(p.decay_input), STRICT=bool(p.strict),
            BLOCK=BLOCK, enable_fp_fusion=False)
    return out, saved, sT


def plif_backward(g_out, g_sT, saved, x, s0, k, p):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    g_k = torch.empty(N, dtype=torch.float32, device=g_out.device)
    d = _dummy(g_out)
    _launch(_plif_backward_kernel, N,
            g_out, d if g_sT is None else g_sT, saved, x if p.decay_input else d, d if s0 is None else s0, k, g_x,
            g_s0, g_k, T, N, max(T - 1, 0), float(p.threshold), float(p.alpha), HAS_GST=g_sT is not None,
            HAS_S0=s0 is not None, DECAY_INPUT=bool(p.decay_input), STRICT=bool(p.strict),
            DETACH=bool(p.detach_reset), SURROGATE=p.surrogate_code, BLOCK=BLOCK)
    return g_x, g_s0, g_k


def map_forward(x, s0, v_th, q, log_q, decay, p):
    T, N = x.shape[0], _step_numel(x)
    out, saved = torch.empty_like(x), torch.empty(x.shape, dtype=torch.float32, device=x.device)
    sT = torch.empty(x.shape[1:], dtype=torch.float32, device=x.device)
    d = _dummy(x)
    _launch(_map_forward_kernel, N, x, d if s0 is None else s0, v_th, d if q is None else q,
            d if log_q is None else log_q, decay, out, saved, sT, T, N, float(p.filter_beta),
            HAS_S0=s0 is not None, PATTERN=p.pattern_code, SWISH=bool(p.swish), BLOCK=BLOCK,
            enable_fp_fusion=False)
    return out, saved, sT


def map_backward(g_out, g_sT, saved, x, v_th, q, log_q, decay, p, need_vq):
    T, N = g_out.shape[0], _step_numel(g_out)
    g_x = torch.empty_like(g_out)
    g_s0 = torch.empty(g_out.shape[1:], dtype=torch.float32, device=g_out.device)
    g_v, g_q, g_d = (torch.empty(N, dtype=torch.float32, device=g_out.device) for _ in range(3))
    d = _dummy(g_out)
    _launch(_map_backward_kernel, N,
            g_out, d if g_sT is None else g_sT, saved, d if x is None else x, v_th, d if q is None else q,
            d if log_q is None else log_q, decay, g_x, g_s0, g_v, g_q, g_d, T, N, float(p.filter_beta),
            HAS_GST=g_sT is not None, PATTERN=p.pattern_code, SWISH=bool(p.swish), NEED_VQ=bool(need_vq),
            BLOCK=BLOCK)
    return g_x, g_s0, g_v, g_q, g_d
