"""Adaptive internal association (AIA) neurons (Shen et al.), plain and with the intermediate cache beta.

Both are the LIF recurrence of the paper's eq. 2-3 with an association term f on the dendritic input x:

    u_t = lambda * u_{t-1} * (1 - o_{t-1}) + f(x_t),     x_t = sum_j w_ij o_j,t
    o_t = H(u_t - Vth)                                   (surrogate gradient as the LIF neuron)

AIA (eq. 5-7): the associative gradient f'(x) = x, i.e. dL/dx_t = x_t * dL/du_t. With x_t = sum_k w_ik o_k,t and
o in {0, 1} the weight gradient is eq. 7:
    dL/dw_ij = sum_t o_j,t * sum_k o_k,t * w_ik * dW^LIF_ik,t,      dW^LIF_ik,t = dL/du_i,t * o_k,t.
The paper states only f'(x); the forward f is a choice (``forward_f``):
    identity     f(x) = x in the forward (the network computes what the LIF network computes; no parameters at
                 inference), with the associative gradient x * dL/du in the backward (default);
    half_square  f(x) = x^2 / 2, the antiderivative of f'(x) = x, differentiated by autograd.

Cached AIA (eq. 8-9): f(x) = beta * x with a learnable cache beta (one per output channel, or one per layer):
    dL/dw_ij = sum_t o_j,t * beta_i * dW^LIF_ij,t                       (eq. 8)
    dL/dbeta_i = sum_t sum_k o_k,t * w_ik * dW^LIF_ik,t = sum_t x_i,t dL/du_i,t   (eq. 9)
which is what autograd gives for beta * x. ``merge_aia_cache(net)`` folds beta into the preceding conv / linear /
batch-norm layer and puts an ordinary LIF neuron in its place, so inference has no extra parameters.
Defaults follow the paper's experiments: Vth 1, lambda 0.5.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from snn_repro.neurons.fused import lif_sequence
from snn_repro.neurons.lif import LIF

FORWARD_FORMS = ("identity", "half_square")


class _AssociativeGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by the input itself (f'(x) = x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad_u):
        (x,) = ctx.saved_tensors
        return grad_u * x


def associate(x: torch.Tensor, forward_f: str = "identity") -> torch.Tensor:
    if forward_f == "identity":
        return _AssociativeGrad.apply(x)
    if forward_f == "half_square":
        return 0.5 * x * x
    raise ValueError(f"unknown AIA forward form {forward_f!r}; known: {', '.join(FORWARD_FORMS)}")


class AIA(LIF):
    def __init__(self, threshold: float = 1.0, leak: float = 0.5, strict: bool = True,
                 surrogate: str = "rectangular", alpha: float = 1.0, detach_reset: bool = False,
                 forward_f: str = "identity"):
        super().__init__(threshold, leak, strict, surrogate, alpha, detach_reset)
        if forward_f not in FORWARD_FORMS:
            raise ValueError(f"unknown AIA forward form {forward_f!r}; known: {', '.join(FORWARD_FORMS)}")
        self.forward_f = forward_f

    def step(self, x, state):
        return super().step(associate(x, self.forward_f), state)

    def kernel_params(self):
        # f(x) = x: the associative gradient inside the fused LIF, no copy of x
        return replace(super().kernel_params(), associative=self.forward_f == "identity")

    def fused_sequence(self, x_seq, state=None):
        if self.forward_f != "identity":
            # f acts on each step's input alone: once on the whole sequence (its own autograd), then the fused LIF
            x_seq = associate(x_seq, self.forward_f)
        return lif_sequence(self, x_seq, state)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", f'(x)=x, forward f={self.forward_f}"


class CachedAIA(LIF):
    """AIA with the intermediate cache: f(x) = beta * x. ``beta`` is created by ``build(shape)`` (the network
    builder calls it with the per-step input shape, (C, H, W) or (features,))."""

    def __init__(self, threshold: float = 1.0, leak: float = 0.5, strict: bool = True,
                 surrogate: str = "rectangular", alpha: float = 1.0, detach_reset: bool = False,
                 beta_per: str = "channel", beta_init: float = 1.0):
        super().__init__(threshold, leak, strict, surrogate, alpha, detach_reset)
        if beta_per not in ("channel", "layer"):
            raise ValueError(f"beta_per must be 'channel' or 'layer', got {beta_per!r}")
        self.beta_per, self.beta_init = beta_per, beta_init
        self.beta: nn.Parameter | None = None

    def build(self, shape) -> None:
        n = int(shape[0]) if self.beta_per == "channel" else 1
        self.beta = nn.Parameter(torch.full((n,), float(self.beta_init)))
        self._trailing = len(shape) - 1  # spatial dims after the channel dim

    def _scale(self, x):
        if self.beta is None:  # created lazily it would miss the optimizer: the builder must call build()
            raise RuntimeError("CachedAIA.build(shape) must be called before the first step")
        return self.beta.reshape(-1, *([1] * self._trailing))

    def step(self, x, state):
        return super().step(self._scale(x) * x, state)

    def fused_sequence(self, x_seq, state=None):
        # beta scales each step inside the fused LIF function: no scaled copy of the sequence, no full-size
        # temporaries in the backward for dL/dbeta
        return lif_sequence(self, x_seq, state, scale=self._scale(x_seq))

    def extra_repr(self) -> str:
        n = None if self.beta is None else self.beta.numel()
        return super().extra_repr() + f", f(x)=beta*x, beta per {self.beta_per} ({n})"


# --- folding the cache into the weights for inference -------------------------------------------------------------
def _fold_into(module: nn.Module, beta: torch.Tensor) -> None:
    from torch.nn.utils import parametrize

    from snn_repro.ops.apbs import remove_weight_parametrisation

    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        if parametrize.is_parametrized(module, "weight"):  # e.g. APBS: merge it first, then scale the plain weight
            remove_weight_parametrisation(module)
        w = module.weight
        w.data.mul_(beta.reshape(-1, *([1] * (w.dim() - 1))).expand(w.shape[0], *([1] * (w.dim() - 1))))
        if module.bias is not None:
            module.bias.data.mul_(beta.expand(module.bias.shape[0]))
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        if not module.affine:
            raise ValueError("cannot fold the AIA cache into a batch norm without affine parameters")
        module.weight.data.mul_(beta.expand(module.weight.shape[0]))
        module.bias.data.mul_(beta.expand(module.bias.shape[0]))
    else:
        raise TypeError(f"cannot fold the AIA cache into {type(module).__name__}")


def merge_aia_cache(net, strict: bool = True) -> nn.Module:
    """Fold every ``CachedAIA`` neuron's beta of a ``SpikingNetwork`` into the layer feeding it and replace the
    neuron with an equivalent LIF; in place, returns ``net``. Between the two, only ops that commute with a
    positive per-channel scale may sit (average pooling, shared dropout; max pooling when every beta > 0).
    Cached neurons nested inside an op (a residual block) are not folded: an error, unless ``strict`` is False."""
    from snn_repro.layers import SharedDropout, TimeFolded

    for i, layer in enumerate(net.layers):
        if not isinstance(layer, CachedAIA):
            continue
        beta = layer.beta.detach()
        j = i - 1
        while j >= 0:
            m = net.layers[j]
            inner = m.module if isinstance(m, TimeFolded) else m
            if isinstance(inner, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
                _fold_into(inner, beta)
                break
            passes = isinstance(inner, (nn.AvgPool2d, nn.AvgPool1d, nn.Identity, SharedDropout)) or (
                isinstance(inner, (nn.MaxPool2d, nn.MaxPool1d)) and bool((beta > 0).all()))
            if not passes:
                raise ValueError(f"layer {net.names[i]}: cannot fold the AIA cache through {type(inner).__name__}")
            j -= 1
        else:
            raise ValueError(f"layer {net.names[i]}: no conv, linear or batch norm before it to fold beta into")
        lif = LIF(layer.threshold, layer.leak, layer.strict, layer.surrogate, layer.alpha, layer.detach_reset)
        net.layers[i] = lif.to(beta.device)
    if strict and any(isinstance(m, CachedAIA) for m in net.modules()):
        raise ValueError("cached AIA neurons inside a residual block cannot be folded into the weights")
    return net
