"""MAP-SNN neurons: single-spike pattern (SSP) and multiple-spike pattern (MSP), linear or with spike-frequency
adaptation (SFA), after Yu et al., "MAP-SNN".

One step, with m the potential after integration (state u from the previous step, input current I):
    m = u + Filter(I)                       Filter: identity, or Swish(beta) (paper's negative masking filter)
    n* = relu(m) / Vth                      linear MSP and SSP
    n* = log_q(relu(m) / Vth * (q - 1) + 1) SFA: the k-th spike of a step costs Vth * q^(k-1)
    s = floor(n*) where m > 0               MSP: s spikes this step (an integer, may exceed 1)
    s = min(floor(n*), 1)                   SSP: at most one spike, i.e. 1[m >= Vth]
    reset = Vth * s                         linear
          = Vth * (q^s - 1) / (q - 1)       SFA (the sum of the geometric series of thresholds)
          = m * s                           SSP: hard reset to zero (supplement Eq. 5)
    u <- (m - reset) * clamp(decay, 0, 1)   decay applied after the reset, per neuron
The decay's clamp: ``decay_clamp: hardtanh`` has zero gradient at exactly 0 and 1 and inside them 1, as the
reference code's relu6(6 d) / 6 (the same gradient, without its rounding of the value); ``clamp`` (the class
default; the configs choose) is torch.clamp, whose gradient is 1 at the bounds too.
Gradient: straight-through from s to n* (ds/dn* = 1 where m > 0, also below threshold); the reset is not
detached, so the gradient also flows through Vth * (q^s - 1) / (q - 1).

The published code learns only the decay (Vth = 2 and q = 1.2 are constants); the paper also lists Vth and q as
learnable: ``learn_threshold`` / ``learn_q`` switch that on (both default to the code).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from snn_repro.neurons.base import Neuron
from snn_repro.neurons.fused_map import map_sequence
from snn_repro.neurons.kernel_params import PATTERN_CODES, MAPKernelParams

PATTERNS = tuple(PATTERN_CODES)
DECAY_CLAMPS = ("hardtanh", "clamp")
FILTERS = ("none", "swish")
# keep learned q above 1 and Vth above 0: log_q and the division by Vth break down there
_Q_MIN, _VTH_MIN = 1.0 + 1e-3, 1e-3


class _StraightThroughFloor(torch.autograd.Function):
    """floor(n) where m > 0 (else 0), at most ``cap`` spikes; backward passes the gradient to n where m > 0."""

    @staticmethod
    def forward(ctx, n, m, cap):
        active = m > 0
        ctx.save_for_backward(active)
        s = torch.floor(n)
        if cap is not None:
            s = s.clamp(max=cap)
        return s * active.to(n.dtype)

    @staticmethod
    def backward(ctx, grad_s):
        (active,) = ctx.saved_tensors
        return grad_s * active.to(grad_s.dtype), None, None


class MAPNeuron(Neuron):
    """A MAP-SNN LIF neuron; ``pattern`` picks SSP, linear MSP or MSP with SFA.

    ``size`` (an int or a shape) gives every neuron its own decay (and Vth, q when learned); ``None`` shares one
    value per layer. Architectures pass it per layer, e.g. ``{op: neuron, size: 400}``.
    """

    def __init__(
        self,
        pattern: str = "sfa",
        size: int | Sequence[int] | None = None,
        threshold: float = 2.0,
        q: float = 1.2,
        decay: float = 0.2,
        learn_threshold: bool = False,
        learn_q: bool = False,
        learn_decay: bool = True,
        input_filter: str = "none",
        filter_beta: float = 10.0,
        decay_clamp: str = "clamp",
    ):
        super().__init__()
        if decay_clamp not in DECAY_CLAMPS:
            raise ValueError(f"unknown decay_clamp {decay_clamp!r}; known: {', '.join(DECAY_CLAMPS)}")
        self.decay_clamp = decay_clamp
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}")
        if input_filter not in FILTERS:
            raise ValueError(f"unknown input_filter {input_filter!r}; known: {', '.join(FILTERS)}")
        if pattern == "sfa" and q <= 1.0:
            raise ValueError(f"SFA needs q > 1 (q = 1 is the linear pattern), got {q}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if size is None:
            shape: tuple[int, ...] = ()
        else:
            shape = (int(size),) if isinstance(size, (int, float)) else tuple(int(s) for s in size)
        self.pattern, self.size = pattern, shape
        self.input_filter, self.filter_beta = input_filter, filter_beta
        self.nominal_threshold = float(threshold)
        self._add("v_th", torch.full(shape, float(threshold)), learn_threshold)
        self._add("q", torch.full(shape, float(q)), learn_q and pattern == "sfa")
        self._add("decay", torch.full(shape, float(decay)), learn_decay)

    def _add(self, name: str, value: torch.Tensor, learn: bool) -> None:
        if learn:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def binary_spikes(self) -> bool:
        """SSP emits 0 or 1 a step; linear MSP and SFA emit counts that may exceed 1."""
        return self.pattern == "ssp"

    @property
    def threshold(self) -> float:
        """The initial threshold (readouts that divide by Vth use it; the learned one is ``v_th``)."""
        return self.nominal_threshold

    def effective_decay(self) -> torch.Tensor:
        if self.decay_clamp == "hardtanh":
            return F.hardtanh(self.decay, 0.0, 1.0)
        return self.decay.clamp(0.0, 1.0)

    def clamped_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Vth, q and the decay as the recurrence uses them (kept away from the values where it breaks down)."""
        return self.v_th.clamp(min=_VTH_MIN), self.q.clamp(min=_Q_MIN), self.effective_decay()

    def spikes_and_reset(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spike count s and the potential it consumes, for the integrated potential ``m``."""
        v_th = self.v_th.clamp(min=_VTH_MIN)
        if self.pattern == "sfa":
            q = self.q.clamp(min=_Q_MIN)
            n = torch.log(F.relu(m) / v_th * (q - 1) + 1) / torch.log(q)
            s = _StraightThroughFloor.apply(n, m, None)
            return s, v_th * (q ** s - 1) / (q - 1)
        n = F.relu(m) / v_th
        if self.pattern == "linear":
            s = _StraightThroughFloor.apply(n, m, None)
            return s, v_th * s
        s = _StraightThroughFloor.apply(n, m, 1.0)
        return s, m * s

    def step(self, x, state):
        if self.input_filter == "swish":
            x = x * torch.sigmoid(self.filter_beta * x)
        m = state + x
        s, reset = self.spikes_and_reset(m)
        return s, (m - reset) * self.effective_decay()

    def kernel_params(self) -> MAPKernelParams:
        return MAPKernelParams(self.pattern, self.input_filter == "swish", float(self.filter_beta))

    def fused_sequence(self, x_seq, state=None):
        return map_sequence(self, x_seq, state)

    def extra_repr(self) -> str:
        learned = [n for n, _ in self.named_parameters(recurse=False)]
        return (f"pattern={self.pattern}, size={self.size}, Vth={self.nominal_threshold}, "
                f"q={float(self.q.flatten()[0]):g}, "
                f"filter={self.input_filter}, learned={learned}")
