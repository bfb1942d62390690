"""Heaviside spike functions with surrogate gradients.

Forward: o = 1[v > 0] (strict) or 1[v >= 0]; backward: the derivative of a smooth stand-in, as in
spikingjelly's ``surrogate`` module. ``v`` is u - Vth.
"""
from __future__ import annotations

import math

import torch


def rectangular_grad(v: torch.Tensor, alpha: float) -> torch.Tensor:
    # box of width alpha and height 1/alpha, centred on the threshold
    return (v.abs() < alpha / 2).to(v.dtype) / alpha


def sigmoid_grad(v: torch.Tensor, alpha: float) -> torch.Tensor:
    s = torch.sigmoid(alpha * v)
    return alpha * s * (1 - s)


def atan_grad(v: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / 2 / (1 + (math.pi / 2 * alpha * v) ** 2)


SURROGATE_GRADS = {"rectangular": rectangular_grad, "sigmoid": sigmoid_grad, "atan": atan_grad}
# the compiled kernels' numbering of the surrogates (kernels_cpu.cpp, kernels_triton.py: `SURROGATE == 0` ...)
SURROGATE_CODES = {"rectangular": 0, "sigmoid": 1, "atan": 2}


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, name, alpha, strict):
        ctx.save_for_backward(v)
        ctx.name, ctx.alpha = name, alpha
        return (v > 0).to(v.dtype) if strict else (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (v,) = ctx.saved_tensors
        return grad_out * SURROGATE_GRADS[ctx.name](v, ctx.alpha), None, None, None


def spike(v: torch.Tensor, surrogate: str = "rectangular", alpha: float = 1.0, strict: bool = True) -> torch.Tensor:
    """Heaviside of ``v`` with the named surrogate gradient."""
    if surrogate not in SURROGATE_GRADS:
        raise ValueError(f"unknown surrogate {surrogate!r}; known: {sorted(SURROGATE_GRADS)}")
    return _SpikeFn.apply(v, surrogate, alpha, strict)
