"""Integrate-and-fire (IF) and leaky integrate-and-fire (LIF) neurons with hard reset.

Recurrence (the ASF-BP / BPSA reference form, leak applied after the reset):
    u_t = leak * u_{t-1} * (1 - o_{t-1}) + x_t
    o_t = 1[u_t > Vth]   (strict)   or   1[u_t >= Vth]
The state carried between steps is the post-reset, post-leak potential leak * u_t * (1 - o_t).
IF is LIF with leak = 1.
"""
from __future__ import annotations

from snn_repro.neurons.base import Neuron
from snn_repro.neurons.fused import lif_sequence
from snn_repro.neurons.kernel_params import LIFKernelParams
from snn_repro.neurons.surrogate import SURROGATE_GRADS, spike


class LIF(Neuron):
    def __init__(
        self,
        threshold: float = 1.0,
        leak: float = 0.99,
        strict: bool = True,
        surrogate: str = "rectangular",
        alpha: float = 1.0,
        detach_reset: bool = False,
    ):
        super().__init__()
        if surrogate not in SURROGATE_GRADS:
            raise ValueError(f"unknown surrogate {surrogate!r}; known: {sorted(SURROGATE_GRADS)}")
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"leak must be in [0, 1], got {leak}")
        self.threshold, self.leak, self.strict = threshold, leak, strict
        self.surrogate, self.alpha, self.detach_reset = surrogate, alpha, detach_reset

    def step(self, x, state):
        u = state + x
        o = spike(u - self.threshold, self.surrogate, self.alpha, self.strict)
        keep = 1 - (o.detach() if self.detach_reset else o)
        return o, self.leak * u * keep

    def kernel_params(self) -> LIFKernelParams:
        return LIFKernelParams(float(self.threshold), float(self.leak), bool(self.strict), self.surrogate,
                               float(self.alpha), bool(self.detach_reset))

    def fused_sequence(self, x_seq, state=None):
        return lif_sequence(self, x_seq, state)

    def extra_repr(self) -> str:
        cmp = ">" if self.strict else ">="
        return f"Vth={self.threshold}, leak={self.leak}, spike: u {cmp} Vth, surrogate={self.surrogate}({self.alpha})"


class IF(LIF):
    def __init__(self, threshold: float = 1.0, strict: bool = True, surrogate: str = "rectangular",
                 alpha: float = 1.0, detach_reset: bool = False):
        super().__init__(threshold, 1.0, strict, surrogate, alpha, detach_reset)
